/**
 * The harness side of loop-probe.mjs: the node flags that preload it into a server process,
 * its port from the process's output, and its readings.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const PROBE = path.join(path.dirname(fileURLToPath(import.meta.url)), 'loop-probe.mjs');

/** Node flags for every server the benchmark starts (before the script or `--import tsx`). */
export const PROBE_NODE_ARGS: readonly string[] = ['--expose-gc', '--import', PROBE];

/**
 * Event-loop delay, GC pauses and CPU time of one process over one window (loop-probe.mjs
 * `/loop`).
 */
export interface LoopReading {
  windowMs: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  gc: { count: number; totalMs: number; maxMs: number; majorCount: number; majorMs: number };
  /** CPU time of the process (every thread), ms. */
  cpuMs: number;
}

/** The probe's port from the "bench-probe port <port>" line. */
export function probePort(output: string): number | undefined {
  const match = /bench-probe port (\d+)/.exec(output);
  return match ? Number(match[1]) : undefined;
}

async function get<T>(port: number, what: string): Promise<T> {
  const res = await fetch(`http://127.0.0.1:${port}/${what}`);
  if (!res.ok) throw new Error(`bench probe ${what}: HTTP ${res.status}`);
  return (await res.json()) as T;
}

/** Reads (and resets) each process's window; call once to open a window. */
export function readLoops(ports: number[]): Promise<LoopReading[]> {
  return Promise.all(ports.map((p) => get<LoopReading>(p, 'loop')));
}

/** CPU time of one process so far, in µs: all its threads, and its main thread alone. */
export interface CpuReading {
  process: number;
  mainThread: number;
}

/** Each process's CPU time so far (loop-probe.mjs `/cpu`). */
export function readCpus(ports: number[]): Promise<CpuReading[]> {
  return Promise.all(ports.map((p) => get<CpuReading>(p, 'cpu')));
}

/** Each process's used V8 heap in bytes, after a full collection. */
export async function readHeaps(ports: number[]): Promise<number[]> {
  const heaps = await Promise.all(ports.map((p) => get<{ usedBytes: number }>(p, 'heap')));
  return heaps.map((h) => h.usedBytes);
}

/** The worst of several processes' readings (delay) and their sum (GC, CPU), for one line. */
export function worstLoop(readings: LoopReading[]): LoopReading | undefined {
  if (readings.length === 0) return undefined;
  return {
    windowMs: Math.max(...readings.map((r) => r.windowMs)),
    p50Ms: Math.max(...readings.map((r) => r.p50Ms)),
    p99Ms: Math.max(...readings.map((r) => r.p99Ms)),
    maxMs: Math.max(...readings.map((r) => r.maxMs)),
    gc: {
      count: readings.reduce((s, r) => s + r.gc.count, 0),
      totalMs: readings.reduce((s, r) => s + r.gc.totalMs, 0),
      maxMs: Math.max(...readings.map((r) => r.gc.maxMs)),
      majorCount: readings.reduce((s, r) => s + r.gc.majorCount, 0),
      majorMs: readings.reduce((s, r) => s + r.gc.majorMs, 0),
    },
    cpuMs: readings.reduce((s, r) => s + r.cpuMs, 0),
  };
}
