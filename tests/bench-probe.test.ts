/**
 * The probe every benchmarked server runs with (scripts/bench/loop-probe.mjs): a process that
 * blocks its event loop and collects garbage is seen doing so, the window resets on each
 * read, the heap is read after a full collection; and the harness's helpers around it
 * (worst of several instances, heap snapshots compared by kind).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  PROBE_NODE_ARGS,
  probePort,
  readHeaps,
  readLoops,
  worstLoop,
  type LoopReading,
} from '../scripts/bench/probe.js';
import { heapDiff } from '../scripts/bench/heap-diff.js';
import { waitFor } from '../client/device.js';

// On each line of stdin: block the loop for 80 ms of CPU time (at least as long on the clock),
// collect, and say so once the collector's entry had time to reach the observer.
const CHILD = `
process.stdin.on('data', () => {
  const start = process.cpuUsage();
  const spent = () => { const u = process.cpuUsage(start); return (u.user + u.system) / 1000; };
  while (spent() < 80);
  globalThis.gc();
  setTimeout(() => process.stdout.write('blocked\\n'), 100);
});
`;

interface Ctx {
  child?: ChildProcess;
  port?: number;
  out: string;
}

const test = suite<Ctx>('bench probe', { out: '' });

test.before(async (ctx) => {
  const child = spawn(process.execPath, [...PROBE_NODE_ARGS, '-e', CHILD], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  ctx.child = child;
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  child.stdout!.on('data', (d: Buffer) => (ctx.out += d.toString()));
  await waitFor(() => probePort(err) !== undefined, 30_000, 'the probe printed no port');
  ctx.port = probePort(err)!;
});

test.after((ctx) => {
  ctx.child?.kill('SIGKILL');
});

test('a blocked event loop and a full collection show in the window, which then resets', async (ctx) => {
  await readLoops([ctx.port!]); // opens the window
  ctx.child!.stdin!.write('go\n');
  await waitFor(() => ctx.out.includes('blocked'), 30_000, 'the child did not block');
  const [reading] = await readLoops([ctx.port!]);
  assert.ok(reading!.maxMs >= 40, `an 80 ms block seen as ${reading!.maxMs} ms`);
  assert.ok(reading!.p99Ms <= reading!.maxMs && reading!.p50Ms <= reading!.p99Ms);
  assert.ok(reading!.gc.majorCount >= 1, `major collections: ${reading!.gc.majorCount}`);
  assert.ok(reading!.gc.totalMs > 0 && reading!.gc.maxMs <= reading!.gc.totalMs);
  assert.ok(reading!.windowMs >= 80);
  assert.ok(reading!.cpuMs >= 80, `CPU time ${reading!.cpuMs} ms`);
  // The next window starts without that collection.
  const [next] = await readLoops([ctx.port!]);
  assert.is(next!.gc.majorCount, 0);
});

test('the heap is read after a full collection', async (ctx) => {
  const [bytes] = await readHeaps([ctx.port!]);
  assert.ok(bytes! > 1_000_000 && bytes! < 1_000_000_000, `used heap ${bytes}`);
});

const reading = (p99Ms: number, gcMs: number, cpuMs = 100): LoopReading => ({
  windowMs: 1_000,
  p50Ms: p99Ms / 10,
  p99Ms,
  maxMs: p99Ms * 2,
  gc: { count: 2, totalMs: gcMs, maxMs: gcMs / 2, majorCount: 1, majorMs: gcMs / 4 },
  cpuMs,
});

test('worstLoop: the worst instance for delays, the sum for collections and CPU', () => {
  const w = worstLoop([reading(10, 8, 50), reading(30, 4, 70)])!;
  assert.is(w.cpuMs, 120);
  assert.is(w.p99Ms, 30);
  assert.is(w.maxMs, 60);
  assert.is(w.gc.totalMs, 12);
  assert.is(w.gc.count, 4);
  assert.is(w.gc.maxMs, 4);
  assert.is(worstLoop([]), undefined);
});

test('heapDiff: growth per session by object kind, largest first', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'constat-heap-'));
  try {
    // The snapshot format's node rows: type, name, id, self_size, edge_count.
    const snapshot = (nodes: number[][]) =>
      JSON.stringify({
        snapshot: {
          meta: {
            node_fields: ['type', 'name', 'id', 'self_size', 'edge_count'],
            node_types: [['hidden', 'array', 'string', 'object', 'closure']],
          },
        },
        nodes: nodes.flat(),
        strings: ['', 'LiveSession', 'Map', 'hello'],
      });
    const a = path.join(dir, 'a.heapsnapshot');
    const b = path.join(dir, 'b.heapsnapshot');
    await writeFile(a, snapshot([[3, 1, 1, 100, 0]]));
    await writeFile(
      b,
      snapshot([
        [3, 1, 1, 100, 0],
        [3, 1, 2, 100, 0],
        [3, 1, 3, 100, 0],
        [1, 0, 4, 500, 0],
        [3, 2, 5, 40, 0],
        [2, 3, 6, 20, 0],
      ]),
    );
    const rows = heapDiff(a, b, 2);
    assert.equal(rows[0], { kind: '(array)', bytes: 250, count: 0.5 });
    assert.equal(rows[1], { kind: 'LiveSession', bytes: 100, count: 1 });
    assert.ok(rows.some((r) => r.kind === '(string)' && r.bytes === 10));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test.run();
