/**
 * CPU profiles of a server process over one phase of a benchmark, through the V8 inspector
 * (the process runs with `--inspect=127.0.0.1:0`): `Profiler.start` when the phase starts,
 * `Profiler.stop` when it ends, the profile written as a `.cpuprofile` file (Chrome DevTools
 * opens it; scripts/bench/profile.ts summarises it).
 */
import { writeFile } from 'node:fs/promises';
import WebSocket from 'ws';

/** The inspector's websocket URL, from the "Debugger listening on ws://…" line. */
export function inspectorUrl(output: string): string | undefined {
  return /Debugger listening on (ws:\/\/127\.0\.0\.1:\d+\/[\w-]+)/.exec(output)?.[1];
}

export interface Profiling {
  /** Stops the profiler and writes the profile to `file`. */
  stop(file: string): Promise<void>;
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
  return {
    async stop(file) {
      const result = (await call('Profiler.stop')) as { profile: unknown };
      await writeFile(file, JSON.stringify(result.profile));
      ws.close();
    },
  };
}
