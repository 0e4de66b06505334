/**
 * CPU and allocation profiles of a server process over one phase of a benchmark, through the
 * V8 inspector (the process runs with `--inspect=127.0.0.1:0`): `Profiler.start` and
 * `HeapProfiler.startSampling` when the phase starts, both stopped when it ends, written as
 * `.cpuprofile` and `.heapprofile` files (Chrome DevTools opens them;
 * scripts/bench/profile.ts summarises them). The allocation sample counts objects the
 * collector already freed too: what the young generation has to sweep is the point.
 */
import { writeFile } from 'node:fs/promises';
import WebSocket from 'ws';

/** The inspector's websocket URL, from the "Debugger listening on ws://…" line. */
export function inspectorUrl(output: string): string | undefined {
  return /Debugger listening on (ws:\/\/127\.0\.0\.1:\d+\/[\w-]+)/.exec(output)?.[1];
}

export interface Profiling {
  /** Stops the profilers and writes the CPU profile to `file`, allocations to `heapFile`. */
  stop(file: string, heapFile: string): Promise<void>;
}

export async function startProfiling(url: string): Promise<Profiling> {
  const ws = new WebSocket(url);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  let nextId = 1;
  const waiting = new Map<number, (result: unknown) => void>();
  ws.on('message', (data: Buffer) => {
    const message = JSON.parse(data.toString()) as { id?: number; result?: unknown };
    if (message.id !== undefined) {
      waiting.get(message.id)?.(message.result);
      waiting.delete(message.id);
    }
  });
  const call = (method: string, params: Record<string, unknown> = {}) =>
    new Promise<unknown>((resolve) => {
      const id = nextId++;
      waiting.set(id, resolve);
      ws.send(JSON.stringify({ id, method, params }));
    });
  await call('Profiler.enable');
  await call('Profiler.setSamplingInterval', { interval: 500 });
  await call('Profiler.start');
  await call('HeapProfiler.enable');
  await call('HeapProfiler.startSampling', {
    samplingInterval: 64 * 1024,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  });
  return {
    async stop(file, heapFile) {
      const result = (await call('Profiler.stop')) as { profile: unknown };
      await writeFile(file, JSON.stringify(result.profile));
      const heap = (await call('HeapProfiler.stopSampling')) as { profile: unknown };
      await writeFile(heapFile, JSON.stringify(heap.profile));
      ws.close();
    },
  };
}
