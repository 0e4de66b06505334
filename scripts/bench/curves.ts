/**
 * `npm run bench -- --curves`: how this server's costs grow, on one instance (in-process hub)
 * and on two through Redis.
 *
 * - **With sessions** (1k, 5k, 10k; capped at the sockets one process may open): sessions are
 *   connected (two clients each, in the capacity ramp's child processes) and left idle for a
 *   moment; then the used heap after a full collection (the probe, loop-probe.mjs) gives
 *   **heap per idle session** (growth over the empty server, per session, per instance); a
 *   window in which the sessions edit (0.1 updates per second each, 100 per second at least)
 *   gives **CPU per update** (the instances' CPU in the window over the updates sent, the
 *   sessions' idle upkeep included); then a few complete forms are signed one at a time among
 *   them: **finalization time** (signatures sent → `finalized`), the median.
 * - **With document size** (a sketch of 10 KB, 100 KB, 1 MB): one session whose form is
 *   complete and whose sketch is grown to the size: its **heap** (growth of the instances'
 *   used heap with it), **CPU per update** while it receives a point per 20 ms, then its
 *   **finalization time**.
 *
 * CPU time and heap hold on a shared machine where latencies do not; finalization time is a
 * latency and is printed with the load average.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  layoutChart,
  renderChart,
  type AxisFormat,
  type ChartSpec,
  type PanelSpec,
} from './chart.js';
import { writeGeneratedBlock } from './report.js';
import { median } from './rounds.js';
import { createSessions, fdLimit, Worker } from './capacity.js';
import type { WorkerReply } from './capacity-worker.js';
import { grow } from './bigdoc.js';
import { prepare, signPrepared, type Prepared } from './finalize.js';
import { timedFanout } from './fanout.js';
import type { Progress } from './progress.js';
import { startTarget, TARGET_LABELS, type Target, type TargetId } from './targets.js';
import { waitForConverged, waitForServerHash } from '../../client/flow.js';
import { sleep } from '../../client/device.js';

export type CurveSetup = Extract<TargetId, 'ours-embedded' | 'ours-redis'>;

export interface CurvePoint {
  /** Sessions, or the document's encoded size in bytes. */
  x: number;
  cpuMsPerUpdate: number;
  heapBytesPerSession: number;
  finalizeMs: number;
}

export interface CurveSeries {
  setup: CurveSetup;
  label: string;
  bySessions: CurvePoint[];
  bySize: CurvePoint[];
  error?: string;
}

export interface CurvesConfig {
  setups: CurveSetup[];
  sessions: number[];
  documentBytes: number[];
  /** Idle pause once sessions are connected, before the heap is read. */
  settleMs: number;
  windowMs: number;
  /** Forms signed at each session count (their median is the figure). */
  finalizations: number;
  /** Updates sent to the large document (at 50 per second). */
  sizeUpdates: number;
}

export interface CurvesReport {
  date: string;
  config: CurvesConfig;
  series: CurveSeries[];
  loadAverage: { before: number; after: number };
  durationSeconds: number;
}

export function curvesConfig(quick: boolean): CurvesConfig {
  return quick
    ? {
        setups: ['ours-embedded', 'ours-redis'],
        sessions: [20, 60, 120],
        documentBytes: [10_000, 100_000, 300_000],
        settleMs: 500,
        windowMs: 1_000,
        finalizations: 1,
        sizeUpdates: 100,
      }
    : {
        setups: ['ours-embedded', 'ours-redis'],
        sessions: [1_000, 5_000, 10_000],
        documentBytes: [10_000, 100_000, 1_000_000],
        settleMs: 5_000,
        windowMs: 5_000,
        finalizations: 5,
        sizeUpdates: 300,
      };
}

const sum = (xs: number[]) => xs.reduce((s, x) => s + x, 0);

/** CPU seconds of every instance together while `fn` runs, and what `fn` returned. */
async function cpuOf<T>(target: Target, fn: () => Promise<T>): Promise<[number, T]> {
  const before = sum(target.cpuSeconds());
  const value = await fn();
  return [sum(target.cpuSeconds()) - before, value];
}

/**
 * One complete constat through a fresh server, so that what its first session loads once
 * (code paths, caches, pools) is not counted as the cost of the sessions measured after it.
 */
async function warmUp(target: Target): Promise<void> {
  const p = await prepare(target, -1);
  try {
    await signPrepared(p);
  } finally {
    p.a.close();
    p.b.close();
  }
}

/** Growth of each instance's used heap since `base`, averaged over the instances. */
async function heapGrowth(target: Target, base: number[]): Promise<number> {
  const now = await target.heapBytes();
  return sum(now.map((h, i) => h - base[i]!)) / now.length;
}

async function bySessions(
  target: Target,
  cfg: CurvesConfig,
  progress: Progress,
): Promise<CurvePoint[]> {
  // Two sockets per session on one instance; leave room for the server's own files.
  const bound = Math.floor((fdLimit() - 500) / (target.instances.length > 1 ? 1 : 2));
  const counts = cfg.sessions.map((n) => Math.min(n, bound));
  const workers = Array.from(
    { length: Math.max(1, Math.ceil((Math.max(...counts) * 2) / 7_000)) },
    () => new Worker(),
  );
  const points: CurvePoint[] = [];
  try {
    const base = await target.heapBytes();
    let have = 0;
    for (const n of counts) {
      if (n <= have) continue;
      const created = await createSessions(target, have, n, 'curve');
      const added = await Promise.all(
        workers.map((w, k) =>
          w.send<Extract<WorkerReply, { connected: number }>>({
            cmd: 'add',
            wire: target.wire,
            sessions: created.filter((_, i) => i % workers.length === k),
          }),
        ),
      );
      const failed = sum(added.map((a) => a.failed));
      if (failed > 0) throw new Error(`${failed} of ${n - have} sessions failed to connect`);
      have = n;
      await sleep(cfg.settleMs);
      const heapBytesPerSession = (await heapGrowth(target, base)) / n;
      const [cpu, measured] = await cpuOf(target, () =>
        Promise.all(
          workers.map((w) =>
            w.send<Extract<WorkerReply, { samples: number[] }>>({
              cmd: 'measure',
              durationMs: cfg.windowMs,
              ratePerSession: 0.1,
              minRate: 100 / workers.length,
            }),
          ),
        ),
      );
      const updates = sum(measured.map((m) => m.samples.length + m.lost));
      const times: number[] = [];
      for (let i = 0; i < cfg.finalizations; i++) {
        const p = await prepare(target, n * 100 + i);
        try {
          const started = performance.now();
          await signPrepared(p);
          times.push(performance.now() - started);
        } finally {
          p.a.close();
          p.b.close();
        }
      }
      points.push({
        x: n,
        cpuMsPerUpdate: (cpu * 1000) / Math.max(1, updates),
        heapBytesPerSession,
        finalizeMs: median(times),
      });
      progress.tick();
    }
    return points;
  } finally {
    await Promise.all(workers.map((w) => w.close()));
  }
}

async function bySize(
  target: Target,
  cfg: CurvesConfig,
  progress: Progress,
): Promise<CurvePoint[]> {
  const points: CurvePoint[] = [];
  for (const [k, bytes] of cfg.documentBytes.entries()) {
    const base = await target.heapBytes();
    let size = 0;
    let p: Prepared | undefined;
    try {
      p = await prepare(target, 1_000_000 + k, async (a, b) => {
        await waitForConverged(a, b); // B's sketch is in A's copy before A grows it
        size = await grow(a, b, bytes);
      });
      await sleep(cfg.settleMs);
      const heapBytesPerSession = await heapGrowth(target, base);
      const [cpu] = await cpuOf(target, () =>
        timedFanout(p!.a, p!.b, {
          updates: cfg.sizeUpdates,
          ratePerSecond: 50,
          progress: { tick() {}, stop() {} },
        }),
      );
      // The edits changed the content: both agree on it again, and so does the server.
      p.hash = await waitForConverged(p.a, p.b);
      const parties = p.session.parties!;
      await waitForServerHash(parties.httpA, parties.tokenA, p.session.room, p.hash, 60_000);
      const started = performance.now();
      await signPrepared(p);
      points.push({
        x: size,
        cpuMsPerUpdate: (cpu * 1000) / cfg.sizeUpdates,
        heapBytesPerSession,
        finalizeMs: performance.now() - started,
      });
    } finally {
      p?.a.close();
      p?.b.close();
    }
    progress.tick();
  }
  return points;
}

export async function measureCurves(
  cfg: CurvesConfig,
  bar: (label: string, total: number) => Progress,
  log: (line: string) => void,
): Promise<CurvesReport> {
  const started = performance.now();
  const loadBefore = os.loadavg()[0]!;
  const series: CurveSeries[] = [];
  for (const setup of cfg.setups) {
    const s: CurveSeries = { setup, label: TARGET_LABELS[setup], bySessions: [], bySize: [] };
    series.push(s);
    const progress = bar(`cost curves ${setup}`, cfg.sessions.length + cfg.documentBytes.length);
    let target: Target | undefined;
    try {
      target = await startTarget(setup);
      await warmUp(target);
      s.bySessions = await bySessions(target, cfg, progress);
      await target.stop();
      // A fresh server for the sizes: the sessions above would weigh in its heap.
      target = await startTarget(setup);
      await warmUp(target);
      s.bySize = await bySize(target, cfg, progress);
    } catch (err) {
      s.error = (err as Error).message.split('\n')[0]!;
      log(`${setup}: ${(err as Error).stack ?? s.error}`);
    } finally {
      progress.stop();
      await target?.stop();
    }
  }
  return {
    date: new Date().toISOString(),
    config: cfg,
    series,
    loadAverage: { before: loadBefore, after: os.loadavg()[0]! },
    durationSeconds: (performance.now() - started) / 1000,
  };
}

const kb = (bytes: number) =>
  bytes >= 1e6 ? `${(bytes / 1e6).toFixed(1)} MB` : `${Math.round(bytes / 1e3)} KB`;

export function formatCurves(r: CurvesReport): string {
  const lines = [
    '',
    `cost curves — load average ${r.loadAverage.before.toFixed(2)} before, ${r.loadAverage.after.toFixed(2)} after, ${r.durationSeconds.toFixed(0)} s`,
  ];
  const row = (x: string, p: CurvePoint) =>
    `  ${x.padStart(10)}  ${p.cpuMsPerUpdate.toFixed(3).padStart(14)}  ${(p.heapBytesPerSession / 1024).toFixed(1).padStart(16)}  ${Math.round(p.finalizeMs).toString().padStart(14)}`;
  const header = (x: string) =>
    `  ${x.padStart(10)}  ${'CPU/update ms'.padStart(14)}  ${'heap/session KiB'.padStart(16)}  ${'finalize ms'.padStart(14)}`;
  for (const s of r.series) {
    lines.push('', `${s.label}${s.error ? ` — error: ${s.error}` : ''}`, header('sessions'));
    for (const p of s.bySessions) lines.push(row(p.x.toLocaleString('en'), p));
    lines.push(header('document'));
    for (const p of s.bySize) lines.push(row(kb(p.x), p));
  }
  return lines.join('\n') + '\n';
}

/** The six panels: each figure against sessions, then against document size. */
export function curvesChart(r: CurvesReport): ChartSpec {
  const figures: Array<{
    key: keyof Omit<CurvePoint, 'x'>;
    title: string;
    yLabel: string;
    yFormat: AxisFormat;
    scale: number;
  }> = [
    {
      key: 'cpuMsPerUpdate',
      title: 'CPU per update',
      yLabel: 'ms of CPU',
      yFormat: 'ms',
      scale: 1,
    },
    {
      key: 'heapBytesPerSession',
      title: 'Heap per session',
      yLabel: 'KiB',
      yFormat: 'kib',
      scale: 1 / 1024,
    },
    { key: 'finalizeMs', title: 'Finalization', yLabel: 'ms', yFormat: 'ms', scale: 1 },
  ];
  const panels: PanelSpec[] = [];
  for (const axis of ['bySessions', 'bySize'] as const) {
    for (const f of figures) {
      panels.push({
        title: `${f.title}${axis === 'bySessions' ? ' (idle sessions around)' : ' (sketch size)'}`,
        xLabel: axis === 'bySessions' ? 'sessions' : 'document (encoded)',
        xFormat: axis === 'bySessions' ? 'count' : 'bytes',
        yLabel: f.yLabel,
        yFormat: f.yFormat,
        series: r.series.map((s) => ({
          name: s.label,
          points: s[axis].map((p): [number, number] => [p.x, p[f.key] * f.scale]),
        })),
      });
    }
  }
  return {
    title: 'Constat cost curves',
    subtitle: `${r.date.slice(0, 10)}, ${os.cpus().length} cores, load average ${r.loadAverage.before.toFixed(1)}–${r.loadAverage.after.toFixed(1)} (npm run bench -- --curves${r.config.sessions[0]! < 1_000 ? ' --quick' : ''})`,
    panels,
    columns: 3,
    panelWidth: 400,
    panelHeight: 280,
  };
}

export const CURVES_BEGIN =
  '<!-- curves:begin (generated by `npm run bench -- --curves --write`) -->';
export const CURVES_END = '<!-- curves:end -->';

function markdownCurves(r: CurvesReport, image: string): string {
  const lines = [
    `Measured ${r.date.slice(0, 16).replace('T', ' ')} UTC, load average ${r.loadAverage.before.toFixed(2)} before and ${r.loadAverage.after.toFixed(2)} after, ${r.durationSeconds.toFixed(0)} s, \`npm run bench -- --curves${r.config.sessions[0]! < 1_000 ? ' --quick' : ''} --write\`.`,
    '',
    `![Cost curves](${image})`,
    '',
    '| setup | x | CPU per update (ms) | heap per session (KiB) | finalization (ms) |',
    '| --- | --- | --- | --- | --- |',
  ];
  for (const s of r.series) {
    if (s.error) lines.push(`| ${s.label} | error: ${s.error} | | | |`);
    const row = (x: string, p: CurvePoint) =>
      `| ${s.label} | ${x} | ${p.cpuMsPerUpdate.toFixed(3)} | ${(p.heapBytesPerSession / 1024).toFixed(1)} | ${Math.round(p.finalizeMs)} |`;
    for (const p of s.bySessions) lines.push(row(`${p.x.toLocaleString('en')} sessions`, p));
    for (const p of s.bySize) lines.push(row(`${kb(p.x)} document`, p));
  }
  return lines.join('\n');
}

/** Writes the chart's PNG and the table with its link into the benchmarks document. */
export async function writeCurves(r: CurvesReport, doc: string, png: string): Promise<void> {
  await mkdir(path.dirname(png), { recursive: true });
  await writeFile(png, await renderChart(layoutChart(curvesChart(r))));
  const image = path.relative(path.dirname(doc), png).split(path.sep).join('/');
  await writeGeneratedBlock(doc, CURVES_BEGIN, CURVES_END, markdownCurves(r, image));
}
