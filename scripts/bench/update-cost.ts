/**
 * `npm run bench -- --update-cost [--quick] [--only a,b]`: server CPU per accepted update and
 * per awareness renewal, this server beside the reference. Times mean little on a shared
 * machine; CPU time per operation holds (it grows somewhat under load, for every setup alike,
 * so the ratio is what to read).
 *
 * One session, two light clients (A and B, on different instances for `ours-redis`). A sends
 * one small update (a new sketch entry, as in the fan-out measurement) and waits until B has
 * applied it before sending the next: one update in flight, so no batching of socket writes
 * or Redis replies flatters the figure. The CPU of every instance is read before and after by
 * the probe preloaded in each (loop-probe.mjs), less what the same instances burn idle over as
 * long (timers): the main threads' (the event loops, what the number of sessions an instance
 * holds is bound by) and the whole processes' (V8's GC and compiler threads and worker
 * threads too; noisier, since an idle worker's CPU comes in bursts). Then the same for
 * awareness renewals: A renews its state, B receives it. Each figure is the median of
 * `blocks` blocks, with their spread.
 */
import { mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureElements, sketchElements } from './fanout.js';
import { LightClient } from './light-client.js';
import { startProfiling } from './inspector.js';
import {
  formatAllocations,
  formatProfile,
  summariseAllocations,
  summariseProfile,
} from './profile.js';
import {
  redisCpuSeconds,
  startTarget,
  TARGET_LABELS,
  type Target,
  type TargetId,
} from './targets.js';

export const UPDATE_COST_TARGETS: readonly TargetId[] = [
  'ours-embedded',
  'ours-redis',
  'reference',
];

export interface UpdateCostConfig {
  /** Operations per block. */
  updates: number;
  awareness: number;
  blocks: number;
  /** Operations before the first block (JIT warm-up), not counted. */
  warmup: number;
}

export interface Figure {
  median: number;
  min: number;
  max: number;
}

/** Server CPU per operation, µs summed over the instances: main threads, whole processes. */
export interface Cost {
  mainThread: Figure;
  process: Figure;
}

export interface UpdateCostResult {
  id: TargetId;
  label: string;
  update: Cost;
  awareness: Cost;
  /** Redis server CPU per update (µs), when the setup relays through Redis. */
  redisUpdateMicros?: Figure;
  /** CPU the instances use doing nothing (µs per second), subtracted from the blocks. */
  idleMicrosPerSecond: { mainThread: number; process: number };
  loadAverage: { before: number; after: number };
  error?: string;
}

export function updateCostConfig(quick: boolean): UpdateCostConfig {
  return quick
    ? { updates: 200, awareness: 200, blocks: 2, warmup: 500 }
    : { updates: 1_000, awareness: 1_000, blocks: 5, warmup: 3_000 };
}

const WARMUP_BATCH = 20;
// The measurement sends faster than a phone does; the per-connection rate limit must not be
// what it measures.
// Nor may B, which only listens, be cut off as idle on a slow (busy) run.
const UNLIMITED = {
  MAX_MESSAGES_PER_SECOND: '100000',
  MAX_MESSAGE_BURST: '100000',
  IDLE_TIMEOUT_MS: '3600000',
};

function figure(samples: number[]): Figure {
  const sorted = [...samples].sort((a, b) => a - b);
  return {
    median: sorted[Math.floor(sorted.length / 2)]!,
    min: sorted[0]!,
    max: sorted[sorted.length - 1]!,
  };
}

/**
 * Sends `count` operations from A, `batch` at a time, each batch after B received the last
 * of the previous one (`arrived` is given how many B must receive and what to call then).
 */
async function closedLoop(
  count: number,
  batch: number,
  send: () => void,
  arrived: (expected: number, resolve: () => void) => void,
): Promise<void> {
  for (let sent = 0; sent < count; sent += batch) {
    const n = Math.min(batch, count - sent);
    const done = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('an operation did not arrive')), 10_000);
      arrived(n, () => {
        clearTimeout(timer);
        resolve();
      });
    });
    for (let i = 0; i < n; i++) send();
    await done;
  }
}

interface Sample {
  mainThread: number;
  process: number;
}

/** The instances' CPU so far (µs), summed. */
async function cpuNow(target: Target): Promise<Sample> {
  const readings = await target.cpuMicros();
  return {
    mainThread: readings.reduce((s, r) => s + r.mainThread, 0),
    process: readings.reduce((s, r) => s + r.process, 0),
  };
}

/** The instances' CPU over `run` (µs), less `idle` (µs per ms) over as long; Redis's too. */
async function block(
  target: Target,
  idle: Sample,
  run: () => Promise<void>,
): Promise<Sample & { redis: number }> {
  const redisBefore = target.usesRedis ? await redisCpuSeconds() : NaN;
  const before = await cpuNow(target);
  const started = performance.now();
  await run();
  const elapsed = performance.now() - started;
  const after = await cpuNow(target);
  const redisAfter = target.usesRedis ? await redisCpuSeconds() : NaN;
  const used = (k: keyof Sample) => Math.max(0, after[k] - before[k] - idle[k] * elapsed);
  return {
    mainThread: used('mainThread'),
    process: used('process'),
    redis: (redisAfter - redisBefore) * 1e6,
  };
}

const PROFILES = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '../../.cache/bench-profiles',
);

/** Runs `fn` with this server's instances CPU-profiled (`profile`), summaries to `log`. */
async function profiled(
  target: Target,
  name: string,
  log: ((line: string) => void) | undefined,
  fn: () => Promise<void>,
): Promise<void> {
  const urls = log ? target.inspectorUrls() : [];
  if (urls.length === 0) return fn();
  await mkdir(PROFILES, { recursive: true });
  const sessions = await Promise.all(urls.map((u) => startProfiling(u)));
  try {
    await fn();
  } finally {
    for (const [i, s] of sessions.entries()) {
      const file = path.join(PROFILES, `update-cost-${target.id}-${name}-${i + 1}.cpuprofile`);
      const heapFile = file.replace(/\.cpuprofile$/, '.heapprofile');
      await s.stop(file, heapFile);
      log!(formatProfile(summariseProfile(file, 25)));
      log!(formatAllocations(summariseAllocations(heapFile, 15)));
    }
  }
}

async function measureOne(
  id: TargetId,
  cfg: UpdateCostConfig,
  log: ((line: string) => void) | undefined,
): Promise<UpdateCostResult> {
  const loadBefore = os.loadavg()[0]!;
  const target = await startTarget(
    id,
    id === 'reference' ? {} : { env: UNLIMITED, inspect: log !== undefined },
  );
  try {
    const session = await target.newSession('update-cost');
    const client = (url: string) =>
      new LightClient({ url, room: session.room, wire: target.wire, awareness: false });
    const a = client(session.urlA);
    const b = client(session.urlB);
    try {
      await Promise.all([a.whenSynced(), b.whenSynced()]);
      await ensureElements(a, b);
      const elements = sketchElements(a.doc)!;
      let key = ''; // the last update sent: B has the others once it has this one
      let awaited = 0; // awareness messages B has yet to receive
      let pending: (() => void) | undefined;
      const arrived = () => {
        pending?.();
        pending = undefined;
      };
      b.onRemoteUpdate = () => {
        if (sketchElements(b.doc)?.has(key)) arrived();
      };
      b.onAwareness = () => {
        if (--awaited <= 0) arrived();
      };
      let seq = 0;
      const updates = (n: number, batch = 1) =>
        closedLoop(
          n,
          batch,
          () => {
            seq++;
            key = `c-${seq}`;
            elements.set(key, [seq % 100, (seq * 7) % 100]);
          },
          (_, resolve) => (pending = resolve),
        );
      const renewals = (n: number, batch = 1) =>
        closedLoop(
          n,
          batch,
          () => a.sendAwareness(),
          (expected, resolve) => {
            awaited = expected;
            pending = resolve;
          },
        );
      // Warmed up in batches (quicker): the JIT has optimised the path before it is measured.
      await updates(cfg.warmup, WARMUP_BATCH);
      await renewals(cfg.warmup, WARMUP_BATCH);
      // What the instances burn doing nothing (timers, sweeps), per ms.
      const idleFrom = await cpuNow(target);
      const idleStarted = performance.now();
      await new Promise((r) => setTimeout(r, 2_000));
      const idleTo = await cpuNow(target);
      const idleMs = performance.now() - idleStarted;
      const idle: Sample = {
        mainThread: (idleTo.mainThread - idleFrom.mainThread) / idleMs,
        process: (idleTo.process - idleFrom.process) / idleMs,
      };
      const u: Array<Sample & { redis: number }> = [];
      const r: Sample[] = [];
      for (let i = 0; i < cfg.blocks; i++) {
        u.push(await block(target, idle, () => updates(cfg.updates)));
        r.push(await block(target, idle, () => renewals(cfg.awareness)));
      }
      const cost = (samples: Sample[], n: number): Cost => ({
        mainThread: figure(samples.map((x) => x.mainThread / n)),
        process: figure(samples.map((x) => x.process / n)),
      });
      // Profiled apart from the blocks: the profiler's own cost stays out of the figures.
      await profiled(target, 'updates', log, () => updates(cfg.updates));
      await profiled(target, 'awareness', log, () => renewals(cfg.awareness));
      if (a.closed || b.closed)
        throw new Error(`a client was closed: ${JSON.stringify(a.closed ?? b.closed)}`);
      return {
        id,
        label: TARGET_LABELS[id],
        update: cost(u, cfg.updates),
        awareness: cost(r, cfg.awareness),
        ...(target.usesRedis
          ? { redisUpdateMicros: figure(u.map((x) => x.redis / cfg.updates)) }
          : {}),
        idleMicrosPerSecond: { mainThread: idle.mainThread * 1000, process: idle.process * 1000 },
        loadAverage: { before: loadBefore, after: os.loadavg()[0]! },
      };
    } finally {
      a.close();
      b.close();
    }
  } finally {
    await target.stop();
  }
}

export async function measureUpdateCosts(opts: {
  quick: boolean;
  only?: readonly string[];
  /** CPU-profile this server's instances over one more block of each; summaries go here. */
  profile?: (line: string) => void;
}): Promise<UpdateCostResult[]> {
  const cfg = updateCostConfig(opts.quick);
  const ids = UPDATE_COST_TARGETS.filter((id) => !opts.only || opts.only.includes(id));
  const results: UpdateCostResult[] = [];
  for (const id of ids) {
    try {
      results.push(await measureOne(id, cfg, opts.profile));
    } catch (err) {
      const none = { median: NaN, min: NaN, max: NaN };
      results.push({
        id,
        label: TARGET_LABELS[id],
        update: { mainThread: none, process: none },
        awareness: { mainThread: none, process: none },
        idleMicrosPerSecond: { mainThread: NaN, process: NaN },
        loadAverage: { before: NaN, after: os.loadavg()[0]! },
        error: (err as Error).message.split('\n')[0]!,
      });
    }
  }
  return results;
}

export function formatUpdateCosts(results: UpdateCostResult[], quick: boolean): string {
  const cfg = updateCostConfig(quick);
  const ref = results.find((r) => r.id === 'reference' && !r.error);
  const fmt = (f: Figure, r: Figure | undefined) =>
    `${f.median.toFixed(0)} µs (${f.min.toFixed(0)}–${f.max.toFixed(0)})` +
    (r && r.median > 0 ? ` ${(f.median / r.median).toFixed(2)}×` : '');
  const lines = [
    `Server CPU per operation, all instances, idle CPU subtracted; median (min–max) of ${cfg.blocks} blocks of ` +
      `${cfg.updates} updates / ${cfg.awareness} awareness renewals, one in flight; × the reference:`,
  ];
  for (const r of results) {
    const load = `load ${r.loadAverage.before.toFixed(2)} → ${r.loadAverage.after.toFixed(2)}`;
    lines.push(`  ${r.label} (${load}):`);
    if (r.error) {
      lines.push(`    failed: ${r.error}`);
      continue;
    }
    for (const k of ['mainThread', 'process'] as const) {
      const name = k === 'mainThread' ? 'main thread' : 'process    ';
      lines.push(
        `    ${name}  update ${fmt(r.update[k], ref?.update[k])}, ` +
          `awareness ${fmt(r.awareness[k], ref?.awareness[k])}, ` +
          `idle ${(r.idleMicrosPerSecond[k] / 1000).toFixed(1)} ms/s`,
      );
    }
    if (r.redisUpdateMicros)
      lines.push(`    Redis server per update ${fmt(r.redisUpdateMicros, undefined)}`);
  }
  return lines.join('\n') + '\n';
}
