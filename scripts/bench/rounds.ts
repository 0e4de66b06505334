/**
 * Several rounds of the same measurements, one figure: on a machine shared with other work a
 * single run can catch someone else's burst, so every setup runs in each round (interleaved:
 * A, B, C, A, B, C…) and each figure is the median of its rounds, reported with its spread.
 * Also: waiting for a quiet machine before a round, and the commit measured.
 */
import { execFileSync } from 'node:child_process';
import os from 'node:os';

export interface Spread {
  median: number;
  min: number;
  max: number;
  /** Rounds that produced the figure. */
  n: number;
}

export function median(xs: number[]): number {
  const sorted = xs.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Median, min and max of the rounds that produced a number; undefined when none did. */
export function spreadOf(values: Array<number | undefined>): Spread | undefined {
  const xs = values.filter((v): v is number => v !== undefined && !Number.isNaN(v));
  if (xs.length === 0) return undefined;
  return { median: median(xs), min: Math.min(...xs), max: Math.max(...xs), n: xs.length };
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** The most frequent value (the first on a tie). */
function mode<T>(values: T[]): T {
  const counts = new Map<T, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  let best = values[0] as T;
  let bestCount = 0;
  for (const [v, c] of counts) {
    if (c > bestCount) [best, bestCount] = [v, c];
  }
  return best;
}

/**
 * The rounds of one result folded into one of the same shape: every number is the median of
 * the rounds that have it (an array element of the rounds that reached it, as capacity steps
 * a round stopped before), every other value the most frequent one.
 */
export function deepMedian<T>(values: T[]): T {
  const present = values.filter((v) => v !== undefined);
  if (present.length === 0) return undefined as T;
  const first = present[0];
  if (typeof first === 'number') return median(present as number[]) as T;
  if (Array.isArray(first)) {
    const arrays = present as unknown[][];
    const length = Math.max(...arrays.map((a) => a.length));
    return Array.from({ length }, (_, i) =>
      deepMedian(arrays.filter((a) => i < a.length).map((a) => a[i])),
    ) as T;
  }
  if (isRecord(first)) {
    const records = present as Record<string, unknown>[];
    const keys = [...new Set(records.flatMap((r) => Object.keys(r)))];
    return Object.fromEntries(keys.map((k) => [k, deepMedian(records.map((r) => r[k]))])) as T;
  }
  return mode(present);
}

export interface LoadGate {
  /** 1-minute load average when the round started. */
  loadBefore: number;
  /** Seconds spent waiting for the load to drop. */
  waitedSeconds: number;
  /** The load was still above the threshold when the round started: its figures are suspect. */
  busy: boolean;
}

/**
 * Waits (up to `maxWaitMs`, polling every 5 s) until the 1-minute load average is at most
 * `maxLoad`; the round starts anyway after that, flagged busy.
 */
export async function waitForQuiet(maxLoad: number, maxWaitMs: number): Promise<LoadGate> {
  const started = performance.now();
  let load = os.loadavg()[0]!;
  while (load > maxLoad && performance.now() - started < maxWaitMs) {
    await new Promise((r) => setTimeout(r, Math.min(5_000, maxWaitMs)));
    load = os.loadavg()[0]!;
  }
  return {
    loadBefore: load,
    waitedSeconds: (performance.now() - started) / 1000,
    busy: load > maxLoad,
  };
}

/** The commit measured, with `+dirty` when the work tree has changes; `unknown` without git. */
export function commitHash(cwd: string): string {
  try {
    const git = (...args: string[]) =>
      execFileSync('git', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const hash = git('rev-parse', '--short=10', 'HEAD').trim();
    return git('status', '--porcelain', '--untracked-files=no').trim() ? `${hash}+dirty` : hash;
  } catch {
    return 'unknown';
  }
}
