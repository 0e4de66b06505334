/**
 * `npm run bench`: this server and its peers side by side, in one run, on 127.0.0.1 only:
 * (a) this server, two instances through Redis; (b) this server, one instance on the
 * in-process hub; (c) the reference `@y/websocket-server`; (d) Hocuspocus with its Redis
 * extension, two instances. For each: fan-out latency at a fixed rate, the capacity ramp
 * (sessions per instance before p99 passes 50 ms, RSS per idle session), and for this server
 * finalizations per second end to end (PostgreSQL commit and Kafka). Every figure is printed
 * with its ratio to the reference.
 *
 *   --quick     a small version of every measurement (the test suite runs this)
 *   --json      the whole report as JSON on stdout
 *   --write     update the generated part of docs/benchmarks.md
 *   --profile   CPU- and allocation-profile this server's instances during the capacity ramp,
 *               the finalizations' signing and the large documents
 *               (.cache/bench-profiles/*.cpuprofile and *.heapprofile, summarised in the output:
 *               the longest busy stretches, for the large documents inside each measured window,
 *               written beside the profile; the bytes allocated per function, freed ones too)
 *   --only a,b  run only these setups (ours-redis, ours-embedded, reference, hocuspocus-redis,
 *               media: photo uploads and finalization with photos, scripts/bench/media.ts;
 *               reports: PDFs per second, finalization → PDF ready, scripts/bench/reports.ts)
 *   --capacity-only
 *               only the capacity ramp (with its idle-memory phase) of the chosen setups
 *   --finalize-only
 *               only the finalizations of this server's setups (no fan-out, capacity or
 *               large documents; with --only to pick ours-redis or ours-embedded)
 *   --pairs N   finalizations: how many pairs sign (default 400; 10 with --quick)
 *   --webhook   only the webhook channel (webhook.ts): deliveries/s and commit → webhook latency
 *   --update-cost  only server CPU per update and per awareness renewal (update-cost.ts), this
 *               server (one instance; two through Redis) and the reference; `--only` narrows it,
 *               `--profile` profiles one more block of each on this server
 *   --bigdoc    only the large-document measurement (bigdoc.ts), on this server and the
 *               reference
 *   --ocr       only OCR of the papers (ocr.ts): papers/s, p50/p99 per paper and field
 *               accuracy per engine on the test specimens; a full run includes it
 *   --ai-only   only the AI service: results per second and finalized → result latency for
 *               1,000 constats (50 with --quick); the AI part also runs after the setups
 *   --video     only the AI service's reconstruction video: seconds per video and peak memory
 *               over 6 videos (2 with --quick); scripts/bench/video.ts
 *   --soak      only the soak (soak.ts): simulated pairs for a while against two instances on
 *               PostgreSQL, Redis and Kafka, one restarted half-way; invariants checked at
 *               the end (non-zero exit when one fails); --soak-pairs N (default 1,000) over
 *               --soak-minutes M (default 10)
 *   --curves    only the cost curves (curves.ts): CPU per update, heap per idle session and
 *               finalization time against sessions and document size; a table, and with
 *               --write a chart (docs/benchmarks/cost-curves.png); smaller with --quick
 *   --rounds N  rounds of every setup, interleaved (A, B, C, A, B, C…); each figure is the
 *               median of its rounds, printed with its spread (default 3; 1 with --quick)
 *   --max-load X, --load-wait S
 *               a round waits up to S seconds (default 120; 0 with --quick) for the 1-minute
 *               load average to fall to X (default: the number of cores), then starts anyway,
 *               flagged busy in the output
 *
 * Every server process runs with the probe loop-probe.mjs preloaded: event-loop delay and GC
 * pauses per phase (per step of the capacity ramp) and used heap per idle session. The
 * output names the commit and the load average before each round. The AI, photo and PDF
 * parts run once, after the rounds.
 *
 * Kafka: KAFKA_BROKERS, or a test broker started for the run (scripts/kafka/broker.ts);
 * without either, finalizations are measured to the commit only.
 *
 * BENCH_SERVER_NODE_ARGS: extra Node flags for this server's instances (space-separated, e.g.
 * `--max-semi-space-size=64`), to compare runtime settings in one run of the same code.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { fdLimit, measureCapacity } from './capacity.js';
import { measureBigDocs } from './bigdoc.js';
import { measureFanout } from './fanout.js';
import { measureFinalizations } from './finalize.js';
import { measureReports } from './reports.js';
import { measureAi } from './ai.js';
import { startProfiling } from './inspector.js';
import {
  summariseAllocations,
  summariseProfile,
  windowsFile,
  type ProfileWindow,
} from './profile.js';
import { progress } from './progress.js';
import {
  combineRounds,
  formatText,
  verdicts,
  writeBenchmarksDoc,
  type BenchReport,
  type TargetResult,
} from './report.js';
import { startTarget, TARGETS, TARGET_LABELS, type Target, type TargetId } from './targets.js';
import { startBroker, type Broker } from '../kafka/broker.js';
import { commitHash, waitForQuiet } from './rounds.js';
import { measureMedia } from './media.js';
import { measureVideo } from './video.js';
import { measureOcr } from './ocr.js';

/** What `--only` may name: a setup, or the photo measurements. */
export type BenchPart = TargetId | 'media' | 'reports';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const BENCHMARKS_DOC = path.join(ROOT, 'docs/benchmarks.md');
const CURVES_PNG = path.join(ROOT, 'docs/benchmarks/cost-curves.png');
/** The large-document measurement compares this server with the reference only. */
const BIGDOC_TARGETS: readonly TargetId[] = ['ours-redis', 'ours-embedded', 'reference'];

export interface BenchOptions {
  quick: boolean;
  /** Only the large-document measurement. */
  bigdoc?: boolean;
  /** Only the finalizations (this server's setups). */
  finalizeOnly?: boolean;
  capacityOnly?: boolean;
  /** Pairs that sign in the finalization measurement (default from `quick`). */
  pairs?: number;
  /** Only the AI service measurement. */
  aiOnly?: boolean;
  /** Only the reconstruction video measurement. */
  video?: boolean;
  /** Only the OCR measurement. */
  ocrOnly?: boolean;
  only?: BenchPart[];
  profile?: boolean;
  /** Rounds of every setup, interleaved (default 3, 1 with `quick`). */
  rounds?: number;
  /** A round starts once the 1-minute load average is at most this (default: the cores). */
  maxLoad?: number;
  /** How long a round waits for that before it starts anyway, flagged busy (default 120 s, 0 quick). */
  loadWaitSeconds?: number;
  /** Show progress bars on stderr (default true). */
  showProgress?: boolean;
  log?: (line: string) => void;
}

function config(quick: boolean): BenchReport['config'] {
  return quick
    ? {
        fanout: { updates: 40, ratePerSecond: 50 },
        bigdoc: {
          updates: 40,
          ratePerSecond: 50,
          neighbourBytes: 100_000,
          neighbourRatePerSecond: 50,
          ownBytes: [1_000, 100_000],
        },
        capacity: {
          idle: { sessions: [20, 60], settleMs: 300 },
          steps: [20, 60],
          windowMs: 1_000,
          settleMs: 300,
          ratePerSession: 0.1,
          minRate: 100,
          limitMs: 50,
          timeBudgetSeconds: 20,
          quietMaxMs: 1_000,
        },
        finalize: { pairs: 10, concurrency: 5, kafka: undefined },
        reports: { renders: 4, concurrency: 2, finalizations: 2 },
        media: { uploads: 8, concurrency: 4, pairs: 1, photoBytes: 2_000_000 },
      }
    : {
        fanout: { updates: 1_000, ratePerSecond: 50 },
        bigdoc: {
          updates: 300,
          ratePerSecond: 100,
          neighbourBytes: 1_700_000,
          neighbourRatePerSecond: 50,
          ownBytes: [1_000, 145_000, 576_000, 1_700_000, 2_000_000],
        },
        capacity: {
          // Idle sessions are left alone longer than this server's default
          // DOCUMENT_SLEEP_AFTER_MS (30 s, plus its 5 s sweep) and than the 60 s after which
          // its idle worker threads exit, before RSS is read; the same pause for every setup.
          // (With 40 s the first reading held memory released before the second: one instance
          // dropped 33 MiB about 65 s after its 1,000 sessions connected, and the slope came
          // out negative.)
          idle: { sessions: [1_000, 3_000], settleMs: 75_000 },
          steps: [250, 500, 1_000, 2_000, 4_000, 6_000, 8_000, 10_000],
          windowMs: 5_000,
          settleMs: 2_000,
          ratePerSession: 0.1,
          minRate: 100,
          limitMs: 50,
          timeBudgetSeconds: 150,
          quietMaxMs: 90_000,
        },
        finalize: { pairs: 400, concurrency: 32, kafka: undefined },
        reports: { renders: 40, concurrency: 2, finalizations: 10 },
        media: { uploads: 40, concurrency: 4, pairs: 5, photoBytes: 2_000_000 },
      };
}

/**
 * Runs `fn` with every instance of `target` being CPU-profiled, if asked. `windows`: the
 * stretches of the phase its summary looks at (written beside the profile for profile.ts).
 */
async function profiled<T>(
  target: Target,
  phase: string,
  enabled: boolean,
  result: TargetResult,
  fn: () => Promise<T>,
  windows?: (value: T) => ProfileWindow[],
): Promise<T> {
  const urls = enabled ? target.inspectorUrls() : [];
  if (urls.length === 0) return fn();
  const dir = path.join(ROOT, '.cache/bench-profiles');
  await mkdir(dir, { recursive: true });
  const sessions = await Promise.all(urls.map((u) => startProfiling(u)));
  let value: T | undefined;
  try {
    value = await fn();
    return value;
  } finally {
    const within = value !== undefined && windows ? windows(value) : undefined;
    for (const [i, s] of sessions.entries()) {
      const file = path.join(dir, `${target.id}-${phase}-${i + 1}.cpuprofile`);
      const heapFile = file.replace(/\.cpuprofile$/, '.heapprofile');
      await s.stop(file, heapFile);
      if (within) await writeFile(windowsFile(file), JSON.stringify(within));
      (result.profiles ??= []).push({
        phase: `${phase}, instance ${i + 1}`,
        summary: summariseProfile(file, 12, within),
        allocations: summariseAllocations(heapFile, 12),
      });
    }
  }
}

type Bar = (label: string, total: number) => { tick(n?: number): void; stop(): void };

interface SetupContext {
  cfg: BenchReport['config'];
  opts: BenchOptions;
  kafka: string | undefined;
  bar: Bar;
  log: (line: string) => void;
}

/** One round of one setup: started fresh, every measurement of it, stopped. */
async function runSetup(id: TargetId, ctx: SetupContext): Promise<TargetResult> {
  const { cfg, opts, kafka, bar, log } = ctx;
  const result: TargetResult = { id, label: TARGET_LABELS[id] };
  let target: Target | undefined;
  const phases: string[] = [];
  let phaseStarted = performance.now();
  const phase = (name: string) => {
    phases.push(`${name} ${((performance.now() - phaseStarted) / 1000).toFixed(1)} s`);
    phaseStarted = performance.now();
  };
  /** The event loop and GC of the instances over a phase that does not read them itself. */
  const watched = async <T>(t: Target, name: string, fn: () => Promise<T>): Promise<T> => {
    await t.loop(); // opens the window
    const value = await fn();
    (result.loop ??= {})[name] = await t.loop();
    return value;
  };
  try {
    target = await startTarget(id, {
      ...(kafka ? { kafkaBrokers: kafka } : {}),
      inspect: !!opts.profile,
    });
    const t = target;
    phase('start');
    if (BIGDOC_TARGETS.includes(id) && !opts.finalizeOnly && !opts.capacityOnly) {
      const b0 = bar(
        `large documents ${id}`,
        cfg.bigdoc.updates * (1 + cfg.bigdoc.ownBytes.length),
      );
      try {
        result.bigdoc = await profiled(
          t,
          'large-documents',
          !!opts.profile,
          result,
          () => measureBigDocs(t, cfg.bigdoc, b0),
          (r) => [r.neighbour.window, ...r.own.map((m) => m.window)],
        );
      } finally {
        b0.stop();
      }
      phase('large documents');
      if (opts.bigdoc) return result;
    }
    if (!opts.finalizeOnly) {
      if (!opts.capacityOnly) {
        const b1 = bar(`fan-out ${id}`, cfg.fanout.updates);
        try {
          result.fanout = await watched(t, 'fan-out', () =>
            measureFanout(t, { ...cfg.fanout, progress: b1 }),
          );
        } finally {
          b1.stop();
        }
        phase('fan-out');
      }
      result.idleRssKiB = t.rssKiB();
      const b2 = bar(`capacity ${id}`, cfg.capacity.steps.length);
      try {
        // Each capacity step reads the event loop over its own window.
        result.capacity = await profiled(
          t,
          'capacity',
          !!opts.profile,
          result,
          () =>
            measureCapacity(t, {
              ...cfg.capacity,
              timeBudgetMs: cfg.capacity.timeBudgetSeconds * 1000,
              progress: b2,
            }),
          (capacity) => capacity.steps.map((s) => s.window),
        );
      } finally {
        b2.stop();
      }
      phase('capacity');
    }
    if ((id === 'ours-redis' || id === 'ours-embedded') && !opts.capacityOnly) {
      const b3 = bar(`finalize ${id}`, opts.pairs ?? cfg.finalize.pairs);
      try {
        result.finalize = await watched(t, 'finalizations', () =>
          measureFinalizations(t, {
            pairs: opts.pairs ?? cfg.finalize.pairs,
            concurrency: cfg.finalize.concurrency,
            kafkaBrokers: kafka,
            progress: b3,
            // The signing only: preparing the pairs (opening, joining, filling) is not its cost.
            timed: (fn) => profiled(t, 'finalizations', !!opts.profile, result, fn),
          }),
        );
      } finally {
        b3.stop();
      }
      phase('finalizations');
    }
  } catch (err) {
    result.error = (err as Error).message.split('\n')[0]!;
    log(`${id}: ${(err as Error).stack ?? result.error}`);
  } finally {
    await target?.stop();
    phase('stop');
    log(`${id}: ${phases.join(', ')}`);
  }
  return result;
}

export async function runBench(opts: BenchOptions): Promise<BenchReport> {
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const show = opts.showProgress ?? true;
  const bar: Bar = (label, total) => (show ? progress(label, total) : { tick() {}, stop() {} });
  const cfg = config(opts.quick);
  const started = performance.now();
  const loadBefore = os.loadavg()[0]!;
  // Read now: the servers run the files as they are at the start.
  const commit = commitHash(ROOT);
  if (opts.video) return videoReport(opts, cfg, started, loadBefore, commit, bar);
  let broker: Broker | undefined;
  let kafka = process.env.KAFKA_BROKERS || undefined;
  const ids =
    opts.aiOnly || opts.ocrOnly
      ? []
      : TARGETS.filter(
          (id) =>
            (!opts.only || opts.only.includes(id)) &&
            (!opts.bigdoc || BIGDOC_TARGETS.includes(id)) &&
            (!opts.finalizeOnly || id === 'ours-redis' || id === 'ours-embedded'),
        );
  const alone =
    opts.aiOnly || opts.ocrOnly || opts.bigdoc || opts.finalizeOnly || opts.capacityOnly;
  const withReports = !alone && (!opts.only || opts.only.includes('reports'));
  const withMedia = !alone && (!opts.only || opts.only.includes('media'));
  const withAi = opts.aiOnly || (!alone && !opts.only);
  // Not in --quick (the test suite's run): a pass over the papers takes a minute or more.
  const withOcr = opts.ocrOnly || (!alone && !opts.only && !opts.quick);
  const finalizing = !opts.bigdoc && !opts.capacityOnly && ids.some((id) => id.startsWith('ours'));
  if (!kafka && (withAi || finalizing)) {
    try {
      log('starting a Kafka test broker for the finalizations…');
      broker = await startBroker();
      kafka = broker.brokers;
      await new Promise((r) => setTimeout(r, 3_000)); // the JVM's start-up burst passes
    } catch (err) {
      log(
        `no Kafka (${(err as Error).message.split('\n')[0]}): finalizations measured to the commit`,
      );
    }
  }
  cfg.finalize.kafka = kafka;
  const rounds = Math.max(1, opts.rounds ?? (opts.quick ? 1 : 3));
  const maxLoad = opts.maxLoad ?? os.cpus().length;
  const loadWaitMs = (opts.loadWaitSeconds ?? (opts.quick ? 0 : 120)) * 1000;
  const perSetup = new Map<TargetId, TargetResult[]>(ids.map((id) => [id, []]));
  let ai: BenchReport['ai'];
  try {
    // Interleaved (A, B, C, A, B, C…): a burst of other work hits one round of each setup
    // rather than every round of one.
    for (let round = 1; round <= rounds; round++) {
      for (const id of ids) {
        const gate = await waitForQuiet(maxLoad, loadWaitMs);
        if (gate.busy && !opts.quick)
          log(
            `round ${round}, ${id}: load ${gate.loadBefore.toFixed(2)} > ${maxLoad} after ${gate.waitedSeconds.toFixed(0)} s of waiting; flagged busy`,
          );
        const result = await runSetup(id, { cfg, opts, kafka, bar, log });
        result.rounds = [{ round, ...gate, ...(result.error ? { error: result.error } : {}) }];
        perSetup.get(id)!.push(result);
      }
    }
    if (withAi && kafka) {
      const constats = opts.quick ? 50 : 1_000;
      const b4 = bar('AI service', constats);
      try {
        ai = {
          ...(await measureAi({ kafkaBrokers: kafka, constats, progress: b4 })),
          loadAverage: os.loadavg()[0]!,
        };
      } catch (err) {
        ai = { error: (err as Error).message.split('\n')[0]! };
        log(`AI: ${(err as Error).stack ?? ai.error}`);
      } finally {
        b4.stop();
      }
    }
  } finally {
    await broker?.stop({ removeData: true });
  }
  let media: BenchReport['media'];
  if (withMedia) {
    try {
      media = await measureMedia({ ...cfg.media, log });
    } catch (err) {
      media = { error: (err as Error).message.split('\n')[0]! };
      log(`media: ${(err as Error).stack ?? media.error}`);
    }
  }
  let reports: BenchReport['reports'];
  if (withReports) {
    log('PDF reports…');
    try {
      reports = await measureReports(cfg.reports);
    } catch (err) {
      reports = { error: (err as Error).message.split('\n')[0]! };
      log(`reports: ${(err as Error).stack ?? reports.error}`);
    }
  }
  let ocr: BenchReport['ocr'];
  if (withOcr) {
    log('OCR of the papers…');
    try {
      ocr = await measureOcr({ rounds: opts.quick ? 1 : 3, concurrency: 1, log });
    } catch (err) {
      ocr = { error: (err as Error).message.split('\n')[0]! };
      log(`ocr: ${(err as Error).stack ?? ocr.error}`);
    }
  }
  const reference = perSetup.get('reference');
  const results = ids.map((id) => combineRounds(perSetup.get(id)!, reference));
  return {
    date: new Date().toISOString(),
    mode: opts.bigdoc
      ? 'large documents'
      : opts.finalizeOnly
        ? 'finalizations'
        : opts.capacityOnly
          ? 'capacity'
          : opts.quick
            ? 'quick'
            : 'full',
    machine: machine(),
    loadAverage: { before: loadBefore, after: os.loadavg()[0]! },
    config: cfg,
    durationSeconds: (performance.now() - started) / 1000,
    targets: results,
    rounds,
    maxLoad,
    commit,
    ...(reports ? { reports } : {}),
    ...(media ? { media } : {}),
    ...(ai ? { ai } : {}),
    ...(ocr ? { ocr } : {}),
    verdicts: verdicts(results),
  };
}

function machine(): BenchReport['machine'] {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model.trim() ?? 'cpu',
    cores: cpus.length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    os: `${os.type()} ${os.release()}`,
    fdLimit: fdLimit(),
  };
}

/** `--video`: the reconstruction video alone (no Kafka, no setups). */
async function videoReport(
  opts: BenchOptions,
  cfg: BenchReport['config'],
  started: number,
  loadBefore: number,
  commit: string,
  bar: (label: string, total: number) => { tick(): void; stop(): void },
): Promise<BenchReport> {
  const videos = opts.quick ? 2 : 6;
  const b = bar('reconstruction videos', videos);
  let video: BenchReport['video'];
  try {
    video = { ...(await measureVideo({ videos, progress: b })), loadAverage: os.loadavg()[0]! };
  } catch (err) {
    video = { error: (err as Error).message.split('\n')[0]! };
  } finally {
    b.stop();
  }
  return {
    date: new Date().toISOString(),
    mode: 'video',
    machine: machine(),
    loadAverage: { before: loadBefore, after: os.loadavg()[0]! },
    config: cfg,
    durationSeconds: (performance.now() - started) / 1000,
    targets: [],
    rounds: 1,
    maxLoad: opts.maxLoad ?? os.cpus().length,
    commit,
    video,
    verdicts: [],
  };
}

/** `--soak`: 0 when every invariant held, 1 otherwise. */
async function soak(pairs: number, minutes: number, json: boolean): Promise<number> {
  const { runSoak, formatSoak } = await import('./soak.js');
  let broker: Broker | undefined;
  let kafka = process.env.KAFKA_BROKERS || undefined;
  try {
    if (!kafka) {
      process.stderr.write('starting a Kafka test broker…\n');
      broker = await startBroker();
      kafka = broker.brokers;
    }
    const report = await runSoak({ pairs, minutes, kafkaBrokers: kafka, showProgress: !json });
    process.stdout.write(json ? JSON.stringify(report, null, 2) + '\n' : formatSoak(report));
    return report.invariants.every((i) => i.ok) ? 0 : 1;
  } finally {
    await broker?.stop({ removeData: true });
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      write: { type: 'boolean', default: false },
      profile: { type: 'boolean', default: false },
      only: { type: 'string' },
      bigdoc: { type: 'boolean', default: false },
      'ai-only': { type: 'boolean', default: false },
      video: { type: 'boolean', default: false },
      webhook: { type: 'boolean', default: false },
      'update-cost': { type: 'boolean', default: false },
      'finalize-only': { type: 'boolean', default: false },
      'capacity-only': { type: 'boolean', default: false },
      pairs: { type: 'string' },
      soak: { type: 'boolean', default: false },
      curves: { type: 'boolean', default: false },
      'soak-pairs': { type: 'string' },
      'soak-minutes': { type: 'string' },
      ocr: { type: 'boolean', default: false },
      rounds: { type: 'string' },
      'max-load': { type: 'string' },
      'load-wait': { type: 'string' },
    },
  });
  if (values.webhook) {
    const { measureWebhooks, formatWebhooks } = await import('./webhook.js');
    process.stdout.write(formatWebhooks(await measureWebhooks(values.quick)));
    process.exit(0);
  }
  if (values['update-cost']) {
    const { measureUpdateCosts, formatUpdateCosts } = await import('./update-cost.js');
    const only = values.only?.split(',').map((s) => s.trim());
    const results = await measureUpdateCosts({
      quick: values.quick,
      ...(only ? { only } : {}),
      ...(values.profile ? { profile: (line: string) => process.stderr.write(`${line}\n`) } : {}),
    });
    process.stdout.write(
      values.json
        ? JSON.stringify(results, null, 2) + '\n'
        : formatUpdateCosts(results, values.quick),
    );
    process.exit(0);
  }
  const num = (name: string, v: string | undefined, min: number) => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isFinite(n) || n < min) throw new Error(`--${name}: a number ≥ ${min}, not ${v}`);
    return n;
  };
  if (values.soak) {
    const pairs = num('soak-pairs', values['soak-pairs'], 1) ?? 1_000;
    const minutes = num('soak-minutes', values['soak-minutes'], 0.1) ?? 10;
    process.exitCode = await soak(Math.floor(pairs), minutes, values.json);
    process.exit();
  }
  if (values.curves) {
    const { curvesConfig, formatCurves, measureCurves, writeCurves } = await import('./curves.js');
    const report = await measureCurves(
      curvesConfig(values.quick),
      values.json ? () => ({ tick() {}, stop() {} }) : progress,
      (line) => process.stderr.write(`${line}\n`),
    );
    process.stdout.write(
      values.json ? JSON.stringify(report, null, 2) + '\n' : formatCurves(report),
    );
    if (values.write) {
      await writeCurves(report, BENCHMARKS_DOC, CURVES_PNG);
      process.stderr.write(`wrote ${path.relative(process.cwd(), CURVES_PNG)} and its table\n`);
    }
    process.exit(0);
  }
  const rounds = num('rounds', values.rounds, 1);
  const pairs = num('pairs', values.pairs, 1);
  const maxLoad = num('max-load', values['max-load'], 0);
  const loadWaitSeconds = num('load-wait', values['load-wait'], 0);
  if (values.video && values.write)
    throw new Error('--write records a full run; --video runs one measurement');
  if (values.bigdoc && values.write)
    throw new Error('--write records a full run; --bigdoc runs one measurement');
  if (
    (values['finalize-only'] || values['capacity-only'] || values.pairs !== undefined) &&
    values.write
  )
    throw new Error(
      '--write records a full run; --finalize-only, --capacity-only and --pairs change it',
    );
  const only = values.only?.split(',').map((s) => s.trim()) as BenchPart[] | undefined;
  for (const id of only ?? []) {
    if (id !== 'media' && id !== 'reports' && !TARGETS.includes(id))
      throw new Error(`--only: unknown setup ${id} (${TARGETS.join(', ')}, media, reports)`);
  }
  const report = await runBench({
    quick: values.quick,
    aiOnly: values['ai-only'],
    video: values.video,
    ocrOnly: values.ocr,
    profile: values.profile,
    bigdoc: values.bigdoc,
    finalizeOnly: values['finalize-only'],
    capacityOnly: values['capacity-only'],
    ...(pairs !== undefined ? { pairs: Math.floor(pairs) } : {}),
    ...(only ? { only } : {}),
    ...(rounds !== undefined ? { rounds: Math.floor(rounds) } : {}),
    ...(maxLoad !== undefined ? { maxLoad } : {}),
    ...(loadWaitSeconds !== undefined ? { loadWaitSeconds } : {}),
  });
  process.stdout.write(values.json ? JSON.stringify(report, null, 2) + '\n' : formatText(report));
  if (values.write) {
    await writeBenchmarksDoc(BENCHMARKS_DOC, report);
    process.stderr.write(`wrote ${path.relative(process.cwd(), BENCHMARKS_DOC)}\n`);
  }
  // Clients and servers are all gone; what is left (pools, timers) must not keep us waiting.
  process.exit(0);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  await main();
}
