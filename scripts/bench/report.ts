import type { AiBenchResult } from './ai.js';
import type { VideoBenchResult } from './video.js';
import type { OcrBenchResult } from './ocr.js';
/**
 * The benchmark's results: the figures of each setup and their ratio to the reference server,
 * the targets met or missed, as text for the terminal and as the generated part of
 * docs/benchmarks.md (between its `bench:begin` and `bench:end` markers; the rest of that
 * file is prose kept by hand).
 */
import type { ReportsResult } from './reports.js';
import { readFile, writeFile } from 'node:fs/promises';
import { formatMedia, type MediaBenchResult } from './media.js';
import * as prettier from 'prettier';
import type { BigDocConfig, BigDocMeasurement, BigDocResult } from './bigdoc.js';
import type { CapacityResult } from './capacity.js';
import type { FanoutResult } from './fanout.js';
import type { FinalizeResult } from './finalize.js';
import {
  formatAllocations,
  stretchLines,
  type AllocationSummary,
  type ProfileSummary,
} from './profile.js';
import type { TargetId } from './targets.js';
import { worstLoop, type LoopReading } from './probe.js';
import { deepMedian, spreadOf, type LoadGate, type Spread } from './rounds.js';

export interface TargetResult {
  id: TargetId;
  label: string;
  fanout?: FanoutResult;
  bigdoc?: BigDocResult;
  capacity?: CapacityResult;
  finalize?: FinalizeResult;
  /** Baseline RSS of each instance (KiB) before any session. */
  idleRssKiB?: number[];
  profiles?: Array<{ phase: string; summary: ProfileSummary; allocations?: AllocationSummary }>;
  /** Event-loop delay and GC pauses of each instance over a phase (fan-out, finalizations). */
  loop?: Record<string, LoopReading[]>;
  /** The rounds this result folds: when each started, at what load, and how it ended. */
  rounds?: Array<{ round: number; error?: string } & LoadGate>;
  /** Headline figures across rounds (median, min, max), and their ratio to the reference
   * measured in the same round. */
  spread?: Record<string, Spread>;
  ratioSpread?: Record<string, Spread>;
  error?: string;
}

/** The figures whose spread across rounds is reported, and how to read them from a round. */
const HEADLINES: Record<string, (t: TargetResult) => number | undefined> = {
  'fan-out p50 (ms)': (t) => t.fanout?.latencyMs.p50,
  'fan-out p99 (ms)': (t) => t.fanout?.latencyMs.p99,
  'event-loop p99 during fan-out (ms)': (t) => worstLoop(t.loop?.['fan-out'] ?? [])?.p99Ms,
  'sessions per instance': (t) => t.capacity?.sessions,
  'RSS per idle session (KiB)': (t) => t.capacity?.rssPerSessionKiB,
  'heap per idle session (KiB)': (t) =>
    t.capacity?.heapPerSessionBytes !== undefined
      ? t.capacity.heapPerSessionBytes / 1024
      : undefined,
  'finalizations committed/s': (t) => t.finalize?.committedPerSecond,
  'finalizations on Kafka/s': (t) => t.finalize?.kafkaPerSecond,
  'server CPU per constat (ms)': (t) => t.finalize?.serverCpuMsPerConstat,
  'large doc: neighbour p99 (ms)': (t) => t.bigdoc?.neighbour.latencyMs.p99,
  'large doc: worst own p99 (ms)': (t) =>
    t.bigdoc ? Math.max(...t.bigdoc.own.map((m) => m.latencyMs.p99)) : undefined,
};

/**
 * One setup's rounds as one result: each figure the median of the rounds that produced it
 * (rounds that failed are left out), the headline figures' spread, and their ratio to the
 * reference of the same round (`reference`: the reference's rounds, in the same order).
 */
export function combineRounds(rounds: TargetResult[], reference?: TargetResult[]): TargetResult {
  const ok = rounds.filter((r) => !r.error);
  const first = rounds[0]!;
  const meta = {
    id: first.id,
    label: first.label,
    rounds: rounds.flatMap((r) => r.rounds ?? []),
    ...(rounds.some((r) => r.profiles)
      ? { profiles: rounds.flatMap((r) => r.profiles ?? []) }
      : {}),
  };
  if (ok.length === 0) return { ...meta, error: first.error! };
  const { profiles: _p, rounds: _r, error: _e, ...figures } = deepMedian(ok);
  const spread: Record<string, Spread> = {};
  const ratioSpread: Record<string, Spread> = {};
  for (const [name, read] of Object.entries(HEADLINES)) {
    const s = spreadOf(ok.map(read));
    if (s) spread[name] = s;
    if (!reference || first.id === 'reference') continue;
    const q = spreadOf(
      rounds.map((r, i) => {
        const ref = reference[i];
        const v = r.error ? undefined : read(r);
        const w = ref && !ref.error ? read(ref) : undefined;
        return v !== undefined && w !== undefined && w > 0 ? v / w : undefined;
      }),
    );
    if (q) ratioSpread[name] = q;
  }
  return { ...figures, ...meta, spread, ratioSpread };
}

export interface Verdict {
  target: string;
  /** undefined: not measured. */
  met: boolean | undefined;
  detail: string;
}

export interface BenchReport {
  date: string;
  mode: 'quick' | 'full' | 'large documents' | 'finalizations' | 'capacity' | 'video';
  machine: {
    cpu: string;
    cores: number;
    memoryGiB: number;
    node: string;
    os: string;
    fdLimit: number;
  };
  /** The AI service (fraud, cost) fed finalized events on Kafka (scripts/bench/ai.ts). */
  ai?: (AiBenchResult & { loadAverage: number }) | { error: string };
  /** The AI service's reconstruction video (scripts/bench/video.ts, `--video`). */
  video?: (VideoBenchResult & { loadAverage: number }) | { error: string };
  /** OCR of the papers, per engine, on the test specimens (scripts/bench/ocr.ts). */
  ocr?: OcrBenchResult | { error: string };
  /** 1-minute load average before and after the run: other work on the machine skews figures. */
  loadAverage: { before: number; after: number };
  config: {
    fanout: { updates: number; ratePerSecond: number };
    bigdoc: BigDocConfig;
    capacity: {
      idle: { sessions: [number, number]; settleMs: number };
      steps: number[];
      windowMs: number;
      settleMs: number;
      ratePerSession: number;
      minRate: number;
      limitMs: number;
      timeBudgetSeconds: number;
      quietMaxMs: number;
    };
    finalize: { pairs: number; concurrency: number; kafka: string | undefined };
    reports: { renders: number; concurrency: number; finalizations: number };
    media: { uploads: number; concurrency: number; pairs: number; photoBytes: number };
  };
  durationSeconds: number;
  /** Rounds of every setup (interleaved); each figure is the median of its rounds. */
  rounds: number;
  /** Load average above which a round waited, then ran flagged busy. */
  maxLoad: number;
  /** The commit measured (`+dirty`: with uncommitted changes). */
  commit: string;
  targets: TargetResult[];
  /** The PDF report (this server only); absent when not selected. */
  reports?: ReportsResult | { error: string };
  /** Photo uploads and finalization with photos (scripts/bench/media.ts). */
  media?: MediaBenchResult | { error: string };
  verdicts: Verdict[];
}

const KB = 1.024; // KiB → kB

/** RSS per session in kB; undefined when the slope is not positive (too few sessions to tell). */
const rssKB = (kib: number | undefined) => (kib !== undefined && kib > 0 ? kib * KB : undefined);

const fmt = (v: number | undefined, digits = 1) =>
  v === undefined || !Number.isFinite(v) ? '—' : v.toFixed(digits);
const int = (v: number | undefined) =>
  v === undefined || !Number.isFinite(v) ? '—' : Math.round(v).toLocaleString('en-US');

export function ratio(value: number | undefined, reference: number | undefined): string {
  if (value === undefined || reference === undefined) return '';
  // A ratio of a non-positive figure (an RSS slope lost in the noise of a small run) means nothing.
  if (!Number.isFinite(value) || !Number.isFinite(reference) || value <= 0 || reference <= 0)
    return '';
  return `${(value / reference).toFixed(2)}×`;
}

function capacityText(c: CapacityResult | undefined): string {
  if (!c) return '—';
  switch (c.stoppedBy) {
    case 'latency':
      return int(c.sessions);
    case 'errors':
      return `${int(c.sessions)} (errors)`;
    case 'time':
      return `≥ ${int(c.sessions)} (time bound)`;
    case 'fd-limit':
      return `≥ ${int(c.sessions)} (fd limit)`;
    case 'end':
      return `≥ ${int(c.sessions)} (last step)`;
  }
}

export function verdicts(targets: TargetResult[]): Verdict[] {
  const get = (id: TargetId) => targets.find((t) => t.id === id);
  const redis = get('ours-redis');
  const embedded = get('ours-embedded');
  const reference = get('reference');
  const hocuspocus = get('hocuspocus-redis');
  const out: Verdict[] = [...bigDocVerdicts(targets)];
  if (!targets.some((t) => t.fanout || t.capacity)) return out;
  const p99 = (t: TargetResult | undefined) => t?.fanout?.latencyMs.p99;
  const r = p99(redis);
  const ref = p99(reference);
  out.push({
    target: 'fan-out p99 through Redis ≤ 1.5× the reference',
    met: r !== undefined && ref !== undefined ? r <= 1.5 * ref : undefined,
    detail: `${fmt(r, 2)} ms vs ${fmt(ref, 2)} ms (${ratio(r, ref) || '—'})`,
  });
  const hp = p99(hocuspocus);
  out.push({
    target: 'fan-out p99 through Redis below Hocuspocus',
    met: r !== undefined && hp !== undefined ? r < hp : undefined,
    detail: `${fmt(r, 2)} ms vs ${fmt(hp, 2)} ms`,
  });
  for (const t of [redis, embedded]) {
    if (!t) continue;
    const c = t.capacity;
    out.push({
      target: `≥ 10,000 sessions per instance (${t.label})`,
      met: c ? c.sessions >= 10_000 : undefined,
      detail: c ? `${capacityText(c)} (stopped by ${c.stoppedBy})` : 'not measured',
    });
  }
  for (const t of [redis, embedded]) {
    if (!t) continue;
    const kb = rssKB(t.capacity?.rssPerSessionKiB);
    out.push({
      target: `≤ 40 KB RSS per idle session (${t.label})`,
      met: kb !== undefined ? kb <= 40 : undefined,
      detail: kb !== undefined ? `${fmt(kb)} KB` : 'not measurable in this run',
    });
  }
  for (const t of [redis, embedded]) {
    if (!t?.finalize) continue;
    const f = t.finalize;
    const rate = f.kafkaPerSecond ?? f.committedPerSecond;
    out.push({
      target: `≥ 300 finalizations/s end to end (${t.label})`,
      met: rate >= 300,
      detail: `${fmt(rate)}/s ${f.kafkaPerSecond !== undefined ? 'through Kafka' : 'committed (no Kafka)'}`,
    });
  }
  return out;
}

const mb = (bytes: number) =>
  bytes >= 1e6 ? `${(bytes / 1e6).toFixed(1)} MB` : `${Math.round(bytes / 1e3)} KB`;

/** Large documents: ≤ 1.5× the reference's p99, next to a large neighbour and at every size. */
function bigDocVerdicts(targets: TargetResult[]): Verdict[] {
  const ref = targets.find((t) => t.id === 'reference')?.bigdoc;
  const out: Verdict[] = [];
  for (const t of targets) {
    if (!t.bigdoc || t.id === 'reference') continue;
    const n = t.bigdoc.neighbour;
    const rn = ref?.neighbour;
    out.push({
      target: `small session's fan-out p99 next to a ${mb(n.documentBytes)} document being edited ≤ 1.5× the reference (${t.label})`,
      met: rn ? n.latencyMs.p99 <= 1.5 * rn.latencyMs.p99 : undefined,
      detail: `${fmt(n.latencyMs.p99, 2)} ms vs ${fmt(rn?.latencyMs.p99, 2)} ms (${ratio(n.latencyMs.p99, rn?.latencyMs.p99) || '—'})`,
    });
    const worst = t.bigdoc.own.map((m, i) => ({
      m,
      q: ref?.own[i] ? m.latencyMs.p99 / ref.own[i]!.latencyMs.p99 : NaN,
    }));
    const max = worst.reduce((w, x) => (x.q > w.q || Number.isNaN(w.q) ? x : w), worst[0]!);
    out.push({
      target: `own fan-out p99 ≤ 1.5× the reference at every size, ${mb(t.bigdoc.own[0]!.documentBytes)} to ${mb(t.bigdoc.own.at(-1)!.documentBytes)} (${t.label})`,
      met: worst.every((w) => Number.isFinite(w.q)) ? worst.every((w) => w.q <= 1.5) : undefined,
      detail: `worst ${fmt(max.q, 2)}× at ${mb(max.m.documentBytes)}`,
    });
  }
  return out;
}

function bigDocLine(label: string, m: BigDocMeasurement, r: BigDocMeasurement | undefined): string {
  return `| ${label} | ${mb(m.documentBytes)} | ${fmt(m.latencyMs.p50, 2)} / ${fmt(m.latencyMs.p99, 2)} | ${ratio(m.latencyMs.p99, r?.latencyMs.p99) || '—'} | ${fmt(m.eventLoopP99Ms)} / ${fmt(m.eventLoopMaxMs)} | ${fmt(m.gcMs, 0)} | ${fmt(m.cpuMs, 0)} |`;
}

/** The large-document measurements as a Markdown table, ratios to the reference. */
export function bigDocTable(report: BenchReport): string[] {
  const ref = report.targets.find((t) => t.id === 'reference')?.bigdoc;
  const rows = report.targets.filter((t) => t.bigdoc);
  if (rows.length === 0) return [];
  const c = report.config.bigdoc;
  const out = [
    `**Large documents** (fan-out A → B, ${c.updates} updates at ${c.ratePerSecond}/s; the neighbour is edited ${c.neighbourRatePerSecond} times a second meanwhile; event-loop delay, GC pauses and CPU time of the server(s) over the window)`,
    '',
    '| setup | situation | document | fan-out p50 / p99 (ms) | p99 ratio | event-loop delay p99 / max (ms) | GC pauses (ms) | server CPU (ms) |',
    '| --- | --- | --- | --- | --- | --- | --- | --- |',
  ];
  for (const t of rows) {
    const b = t.bigdoc!;
    out.push(
      bigDocLine(`${t.label} | small session, another being edited`, b.neighbour, ref?.neighbour),
    );
    b.own.forEach((m, i) => out.push(bigDocLine(`${t.label} | own document`, m, ref?.own[i])));
  }
  return out;
}

/** When each round of each setup started, at what load, flagged when the machine was busy. */
export function roundLines(report: BenchReport): string[] {
  const byRound = new Map<number, string[]>();
  for (const t of report.targets) {
    for (const r of t.rounds ?? []) {
      const wait = r.waitedSeconds >= 1 ? `, waited ${r.waitedSeconds.toFixed(0)} s` : '';
      const flags = `${r.busy ? ' **busy**' : ''}${r.error ? ' failed' : ''}`;
      byRound.set(r.round, [
        ...(byRound.get(r.round) ?? []),
        `${t.id} ${r.loadBefore.toFixed(2)}${wait}${flags}`,
      ]);
    }
  }
  return [...byRound.entries()].map(
    ([round, parts]) => `- round ${round}, load before each setup: ${parts.join('; ')}`,
  );
}

const range = (s: Spread, digits: number) =>
  s.n > 1
    ? `${fmt(s.median, digits)} [${fmt(s.min, digits)}–${fmt(s.max, digits)}]`
    : fmt(s.median, digits);

/** The headline figures across rounds: median [min–max], and the same for the ratio to the
 * reference measured in the same round. */
export function spreadTable(report: BenchReport): string[] {
  const rows = report.targets.filter((t) => t.spread && Object.keys(t.spread).length > 0);
  if (rows.length === 0) return [];
  const out = [
    `**Spread over ${report.rounds} round${report.rounds > 1 ? 's' : ''}** (median [min–max]; the ratio is taken to the reference of the same round)`,
    '',
    '| setup | figure | median [min–max] | ratio to the reference, median [min–max] |',
    '| --- | --- | --- | --- |',
  ];
  for (const t of rows) {
    for (const [name, sp] of Object.entries(t.spread!)) {
      const q = t.ratioSpread?.[name];
      out.push(`| ${t.label} | ${name} | ${range(sp, 2)} | ${q ? `${range(q, 2)}×` : '—'} |`);
    }
  }
  return out;
}

function loopRow(label: string, window: string, readings: LoopReading[] | undefined): string[] {
  const l = worstLoop(readings ?? []);
  if (!l) return [];
  return [
    `| ${label} | ${window} | ${fmt(l.p50Ms)} / ${fmt(l.p99Ms)} / ${fmt(l.maxMs)} | ${int(l.gc.count)} / ${fmt(l.gc.totalMs, 0)} / ${fmt(l.gc.maxMs)} / ${fmt(l.gc.majorMs, 0)} |`,
  ];
}

/** Event-loop delay and GC pauses inside each server process, per measured window. */
export function loopTable(report: BenchReport): string[] {
  const rows: string[] = [];
  for (const t of report.targets) {
    rows.push(...loopRow(t.label, 'fan-out', t.loop?.['fan-out']));
    for (const step of t.capacity?.steps ?? [])
      rows.push(...loopRow(t.label, `capacity, ${int(step.sessions)} sessions`, step.loop));
    rows.push(...loopRow(t.label, 'finalizations', t.loop?.finalizations));
  }
  if (rows.length === 0) return [];
  return [
    '**Event loop and GC** (inside each server process, loop-probe.mjs; delay beyond the 2 ms sampling period, the worst instance; GC summed over instances)',
    '',
    '| setup | window | event-loop delay p50 / p99 / max (ms) | GC pauses: count / total ms / longest ms / major ms |',
    '| --- | --- | --- | --- |',
    ...rows,
  ];
}

function mark(met: boolean | undefined): string {
  return met === undefined ? '?' : met ? '✓' : '✗';
}

function aiText(report: BenchReport): string[] {
  const ai = report.ai;
  if (!ai) return [];
  if ('error' in ai) return ['', `AI service: failed: ${ai.error}`];
  return [
    '',
    `AI service (fraud + cost), ${int(ai.constats)} finalized constats on Kafka, load ${ai.loadAverage.toFixed(1)}: ` +
      `${fmt(ai.resultsPerSecond)} results/s; finalized → both results p50 ${fmt(ai.latencyMs.p50, 0)} ms, ` +
      `p99 ${fmt(ai.latencyMs.p99, 0)} ms; ${ai.deadLetters} dead letters`,
  ];
}

function videoText(report: BenchReport): string[] {
  const v = report.video;
  if (!v) return [];
  if ('error' in v) return ['', `reconstruction video: failed: ${v.error}`];
  return [
    '',
    `reconstruction video, ${v.videos} videos of ${v.frames} frames (1280×720), one at a time, load ${v.loadAverage.toFixed(1)}: ` +
      `${fmt(v.secondsPerVideo.p50, 1)} s per video (max ${fmt(v.secondsPerVideo.max, 1)} s), ` +
      `peak memory ${fmt(v.peakMemoryMiB, 0)} MiB (renderer + ffmpeg), ${fmt(v.meanBytes / 1024, 0)} KiB per MP4; ${v.encoder}`,
  ];
}

function ocrText(report: BenchReport): string[] {
  const ocr = report.ocr;
  if (!ocr) return [];
  if ('error' in ocr) return ['', `OCR: failed: ${ocr.error}`];
  return [
    '',
    ...ocr.engines.map(
      (e) =>
        `OCR ${e.engine} (${e.version}), ${e.papers} papers, load ${e.loadAverage.before.toFixed(1)} → ${e.loadAverage.after.toFixed(1)}: ` +
        `${fmt(e.papersPerSecond, 2)} papers/s; per paper p50 ${fmt(e.msPerPaper.p50, 0)} ms, p99 ${fmt(e.msPerPaper.p99, 0)} ms; ` +
        `fields right: clean ${fmt(e.accuracy.clean * 100, 1)} %, degraded ${fmt(e.accuracy.degraded * 100, 1)} %` +
        (e.misses.length ? ` (missed: ${e.misses.join('; ')})` : ''),
    ),
  ];
}

export function formatText(report: BenchReport): string {
  const ref = report.targets.find((t) => t.id === 'reference');
  const lines = [
    '',
    `${report.machine.cores} × ${report.machine.cpu}, ${report.machine.memoryGiB} GiB, Node ${report.machine.node} — ${report.date}`,
    `${report.mode} run of commit ${report.commit} in ${report.durationSeconds.toFixed(0)} s, ${report.rounds} round(s) of each setup, interleaved; load average ${report.loadAverage.before.toFixed(2)} before, ${report.loadAverage.after.toFixed(2)} after (a round waits for ≤ ${report.maxLoad})`,
    ...roundLines(report).map((l) => `  ${l}`),
    '',
    ...bigDocTable(report).map((l) => `  ${l}`),
    '',
  ];
  if (report.targets.some((t) => t.fanout || t.capacity)) {
    lines.push(
      `fan-out latency, ${report.config.fanout.ratePerSecond} updates/s, ${report.config.fanout.updates} updates (ms, ratio to the reference):`,
    );
    for (const t of report.targets) {
      if (t.error) {
        lines.push(`  ${t.label.padEnd(38)} failed: ${t.error}`);
        continue;
      }
      const l = t.fanout?.latencyMs;
      lines.push(
        `  ${t.label.padEnd(38)} p50 ${fmt(l?.p50, 2).padStart(6)} ${ratio(l?.p50, ref?.fanout?.latencyMs.p50).padStart(6)}   p99 ${fmt(l?.p99, 2).padStart(6)} ${ratio(l?.p99, ref?.fanout?.latencyMs.p99).padStart(6)}`,
      );
    }
    const c = report.config.capacity;
    lines.push(
      '',
      `sessions per instance before fan-out p99 passes ${c.limitMs} ms (${c.ratePerSession} updates/s per session, awareness every 15 s), RSS per idle session:`,
    );
    for (const t of report.targets) {
      if (t.error) continue;
      const cap = t.capacity;
      const kib = cap?.rssPerSessionKiB;
      lines.push(
        `  ${t.label.padEnd(38)} ${capacityText(cap).padEnd(24)} ${ratio(cap?.sessions, ref?.capacity?.sessions).padStart(6)}   RSS ${fmt(rssKB(kib)).padStart(6)} KB ${ratio(kib, ref?.capacity?.rssPerSessionKiB).padStart(6)}`,
      );
    }
  }
  if (report.targets.some((t) => t.finalize)) {
    lines.push('', 'finalizations per second (this server only):');
    for (const t of report.targets) {
      const f = t.finalize;
      if (!f) continue;
      lines.push(
        `  ${t.label.padEnd(38)} ${fmt(f.committedPerSecond)}/s committed, ${f.kafkaPerSecond === undefined ? 'no Kafka' : `${fmt(f.kafkaPerSecond)}/s on Kafka`}; sign → finalized p50 ${fmt(f.commitLatencyMs.p50, 0)} ms; ${fmt(f.serverCpuMsPerConstat)} ms server CPU and ${fmt(f.sqlStatementsPerConstat)} SQL statements${f.kafkaSendsPerConstat !== undefined ? ` and ${fmt(f.kafkaSendsPerConstat)} Kafka sends` : ''} per constat; machine ${(f.machineBusyShare * 100).toFixed(0)}% busy${f.failures ? `; ${f.failures} failed` : ''}`,
      );
    }
  }
  if (report.media) {
    if ('error' in report.media) lines.push('', `photos: failed: ${report.media.error}`);
    else lines.push(...formatMedia(report.media));
  }
  const reports = reportsLines(report);
  if (reports.length > 0)
    lines.push('', 'PDF reports (this server only):', ...reports.map((l) => `  ${l}`));
  for (const table of [spreadTable(report), loopTable(report)]) {
    if (table.length > 0) lines.push('', ...table.map((l) => `  ${l}`));
  }
  lines.push(...aiText(report));
  lines.push(...videoText(report));
  lines.push(...ocrText(report));
  lines.push('', 'targets:');
  for (const v of report.verdicts) lines.push(`  ${mark(v.met)} ${v.target}: ${v.detail}`);
  for (const t of report.targets) {
    for (const p of t.profiles ?? []) {
      lines.push('', `profile of ${t.label}, ${p.phase} (busy time):`);
      for (const m of p.summary.topModules.slice(0, 8)) {
        lines.push(`    ${(m.share * 100).toFixed(1).padStart(5)}%  ${m.module}`);
      }
      for (const f of p.summary.topFunctions.slice(0, 8)) {
        lines.push(`    ${(f.share * 100).toFixed(1).padStart(5)}%  ${f.name} ${f.where}`);
      }
      const { stretches } = p.summary;
      lines.push(...stretchLines({ ...stretches, longest: stretches.longest.slice(0, 5) }));
      if (p.allocations) {
        lines.push(
          ...formatAllocations(p.allocations)
            .split('\n')
            .map((l) => `  ${l}`),
        );
      }
    }
  }
  return lines.join('\n') + '\n';
}

/** The PDF report figures, one line each (text and markdown alike). */
function reportsLines(report: BenchReport): string[] {
  const r = report.reports;
  if (!r) return [];
  if ('error' in r) return [`failed: ${r.error}`];
  return [
    `${fmt(r.pdfsPerSecond)} PDFs/s from one warm browser, ${r.concurrency} at a time (${r.renders} PDFs, ${fmt(r.pdfKiB, 0)} KiB each); one PDF p50 ${fmt(r.renderMs.p50, 0)} ms, p95 ${fmt(r.renderMs.p95, 0)} ms; browser launch + first PDF ${fmt(r.coldFirstPdfMs, 0)} ms`,
    `finalization → PDF recorded, one constat at a time (${r.finalizations}): p50 ${fmt(r.readyMs.p50, 0)} ms, p95 ${fmt(r.readyMs.p95, 0)} ms, max ${fmt(r.readyMs.max, 0)} ms`,
  ];
}

export function markdownBlock(report: BenchReport): string {
  const ref = report.targets.find((t) => t.id === 'reference');
  const m = report.machine;
  const c = report.config;
  const out = [
    `Run: ${report.date.slice(0, 10)} (${report.date}), \`npm run bench${report.mode === 'quick' ? ' -- --quick' : ''}\`, commit \`${report.commit}\`, ${report.durationSeconds.toFixed(0)} s; ${report.rounds} round(s) of each setup, interleaved, each figure the median of its rounds.`,
    `Machine: ${m.cores} × ${m.cpu}, ${m.memoryGiB} GiB, Node ${m.node}, ${m.os}; open-file limit ${m.fdLimit}.`,
    `Load average (1 min): ${report.loadAverage.before.toFixed(2)} before, ${report.loadAverage.after.toFixed(2)} after; a round waits for ≤ ${report.maxLoad}, then runs flagged **busy**:`,
    '',
    ...roundLines(report),
    '',
    '| setup | fan-out p50 (ms) | fan-out p99 (ms) | sessions per instance, p99 ≤ ' +
      `${c.capacity.limitMs} ms | RSS per idle session (KB) | finalizations/s |`,
    '| --- | --- | --- | --- | --- | --- |',
  ];
  for (const t of report.targets) {
    if (t.error) {
      out.push(`| ${t.label} | failed: ${t.error.replace(/\|/g, '/')} | | | | |`);
      continue;
    }
    const l = t.fanout?.latencyMs;
    const r = ref?.fanout?.latencyMs;
    const cap = t.capacity;
    const kib = cap?.rssPerSessionKiB;
    const f = t.finalize;
    const withRatio = (v: string, q: string) => (q && t.id !== 'reference' ? `${v} (${q})` : v);
    out.push(
      `| ${t.label} | ${withRatio(fmt(l?.p50, 2), ratio(l?.p50, r?.p50))} | ${withRatio(fmt(l?.p99, 2), ratio(l?.p99, r?.p99))} | ${withRatio(capacityText(cap), ratio(cap?.sessions, ref?.capacity?.sessions))} | ${withRatio(fmt(rssKB(kib)), ratio(kib, ref?.capacity?.rssPerSessionKiB))} | ${f ? `${fmt(f.committedPerSecond)} committed${f.kafkaPerSecond !== undefined ? `, ${fmt(f.kafkaPerSecond)} on Kafka` : ''}` : '—'} |`,
    );
  }
  out.push(
    '',
    'Ratios are to the reference server (`@y/websocket-server`). Fan-out: ' +
      `${c.fanout.updates} updates at ${c.fanout.ratePerSecond}/s. Capacity: steps ${c.capacity.steps.join(', ')}; ` +
      `${c.capacity.ratePerSession} updates/s per session (at least ${c.capacity.minRate}/s in all), ` +
      `${c.capacity.windowMs / 1000} s window per step, ${c.capacity.timeBudgetSeconds} s budget per setup. ` +
      `RSS per idle session: slope between ${c.capacity.idle.sessions.join(' and ')} idle sessions, ` +
      `each read after ${c.capacity.idle.settleMs / 1000} s without edits. ` +
      `Finalizations: ${c.finalize.pairs} prepared pairs signing, ${c.finalize.concurrency} at a time` +
      `${c.finalize.kafka ? ', read back from Kafka' : ', no Kafka broker'}.`,
    '',
  );
  out.push(...aiText(report).slice(1), ...(report.ai ? [''] : []));
  out.push(...ocrText(report).slice(1), ...(report.ocr ? [''] : []));
  const reports = reportsLines(report);
  if (reports.length > 0) out.push('**PDF reports**', '', ...reports.map((l) => `- ${l}`), '');
  out.push('**Targets**', '');
  for (const v of report.verdicts) out.push(`- ${mark(v.met)} ${v.target}: ${v.detail}`);
  out.push('', ...bigDocTable(report));
  for (const table of [spreadTable(report), loopTable(report)]) {
    if (table.length > 0) out.push('', ...table);
  }
  out.push('', '**Idle memory** (RSS of each instance after the idle pause)', '');
  out.push(
    '| setup | sessions | RSS (MiB) | used heap after a full GC (MiB) |',
    '| --- | --- | --- | --- |',
  );
  for (const t of report.targets) {
    for (const i of t.capacity?.idle ?? []) {
      out.push(
        `| ${t.label} | ${int(i.sessions)} | ${i.rssKiB.map((k) => fmt(k / 1024, 0)).join(' + ')} | ${(i.heapBytes ?? []).map((b) => fmt(b / 2 ** 20)).join(' + ')} |`,
      );
    }
  }
  const quiet = report.targets
    .filter((t) => t.capacity?.quietAfterIdleSeconds !== undefined)
    .map((t) => `${t.label} ${fmt(t.capacity!.quietAfterIdleSeconds, 0)} s`);
  out.push(
    '',
    '**Capacity steps** (RSS read 2 s after the step connected, after earlier steps edited' +
      (quiet.length
        ? `; the ramp started once every instance was quiet after the idle phase: ${quiet.join(', ')})`
        : ')'),
    '',
  );
  out.push(
    '| setup | sessions | p50 (ms) | p99 (ms) | samples | lost | server CPU (cores) | Redis CPU (cores) | machine busy | RSS (MiB) |',
  );
  out.push('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const t of report.targets) {
    for (const s of t.capacity?.steps ?? []) {
      out.push(
        `| ${t.label} | ${int(s.sessions)} | ${fmt(s.p50)} | ${fmt(s.p99)} | ${s.samples} | ${s.lost} | ${s.serverCpu.map((x) => fmt(x, 2)).join(' + ')} | ${fmt(s.redisCpu, 2)} | ${(s.machineBusy * 100).toFixed(0)}% | ${s.rssKiB.map((k) => fmt(k / 1024, 0)).join(' + ')} |`,
      );
    }
  }
  const fin = report.targets.filter((t) => t.finalize);
  if (fin.length) {
    out.push('', '**Finalizations**', '');
    out.push(
      '| setup | committed/s | on Kafka/s | sign → finalized p50 / p99 (ms) | server CPU per constat (ms) | SQL statements per constat | machine busy |',
    );
    out.push('| --- | --- | --- | --- | --- | --- | --- |');
    for (const t of fin) {
      const f = t.finalize!;
      out.push(
        `| ${t.label} | ${fmt(f.committedPerSecond)} | ${fmt(f.kafkaPerSecond)} | ${fmt(f.commitLatencyMs.p50, 0)} / ${fmt(f.commitLatencyMs.p99, 0)} | ${fmt(f.serverCpuMsPerConstat)} | ${fmt(f.sqlStatementsPerConstat)} | ${(f.machineBusyShare * 100).toFixed(0)}% |`,
      );
    }
  }
  return out.join('\n');
}

export const BEGIN = '<!-- bench:begin (generated by `npm run bench -- --write`) -->';
export const END = '<!-- bench:end -->';

/** Replaces the generated block of the benchmarks document (appended when missing). */
export function writeBenchmarksDoc(file: string, report: BenchReport): Promise<void> {
  return writeGeneratedBlock(file, BEGIN, END, markdownBlock(report));
}

/**
 * Replaces the block between `begin` (matched on its first 18 characters, so its note may
 * change) and `end` in a markdown file with `markdown`; appended when the markers are missing.
 */
export async function writeGeneratedBlock(
  file: string,
  begin: string,
  end: string,
  markdown: string,
): Promise<void> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    text = `# Benchmarks\n\n${begin}\n${end}\n`;
  }
  const block = `${begin}\n\n${markdown}\n\n${end}`;
  const from = text.indexOf(begin.slice(0, 18));
  const to = text.indexOf(end);
  text =
    from >= 0 && to > from
      ? text.slice(0, from) + block + text.slice(to + end.length)
      : `${text.trimEnd()}\n\n${block}\n`;
  // The document is checked by `npm run format:check` like every other file.
  const options = (await prettier.resolveConfig(file)) ?? {};
  await writeFile(file, await prettier.format(text, { ...options, filepath: file }));
}
