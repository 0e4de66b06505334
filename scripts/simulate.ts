/**
 * `constat simulate`: many pairs of simulated phones (stock y-websocket clients) against a
 * running server, or against one started in this process when no `--url` is given. Each pair
 * opens a session, joins it, fills the form from both phones at once, signs and waits for
 * `finalized` (scripts/sim/pair.ts). Prints a summary: sessions finalized, failures by reason,
 * fan-out latency, time to finalize, throughput. Run `constat simulate --help`.
 */
import { collectFraudScores, type FraudGroup, type FraudSeparation } from './sim/fraud-scores.js';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { developmentSecret, INSURERS, mintToken, mustGql } from '../client/graphql.js';
import { KafkaWatch } from './sim/kafka-watch.js';
import { fanoutTally, runPair, type FanoutTally, type PairResult } from './sim/pair.js';
import { seededRandom } from './sim/random.js';
import { startEmbeddedServer, type EmbeddedServer } from './sim/server.js';
import { percentiles, type Percentiles } from './bench/stats.js';
import { progress } from './bench/progress.js';

export const SIMULATE_USAGE = `usage: constat simulate [options]

Runs pairs of simulated phones against a server: open → join → both fill the form at once →
sign → finalized. Without --url, starts a server in this process (PGlite, in-process hub).

  --pairs N           pairs to run (default 10)
  --concurrency N     pairs at once (default 10)
  --url URL           server to use (repeatable: A on the first, B on the second)
  --offline           in each pair, one phone drops mid-edit and comes back
  --tamper            forbidden writes and forged signatures, which must all be refused
  --kafka BROKERS     host:port,… : confirm each constat on its insurers' Kafka topics
  --fraud-rate R      share 0–1 of pairs filled as a fraud ring would (recurring people, new
                      policies, late, at night); their AI fraud scores are compared to the rest
  --seed S            seed for every random choice (default: random, printed)
  --typing N          updates per second per phone while filling (default 40)
  --photos N          photos each phone attaches, 0.6–2.5 MB each (default 2; 0: none)
  --verbose           one pair, each step explained
  --json              the summary as JSON on stdout
Tokens are minted with AUTH_JWT_SECRET, or the built-in development secret.
`;

export interface SimulateOptions {
  pairs: number;
  concurrency: number;
  /** Server URLs; empty: an embedded server is started. */
  urls: string[];
  offline: boolean;
  tamper: boolean;
  seed: string;
  kafkaBrokers?: string[];
  /** Share of pairs filled as a fraud ring would (0 by default). */
  fraudRate?: number;
  /** How long to wait for the AI's fraud scores after the last pair (default 20 s). */
  fraudScoreTimeoutMs?: number;
  /** Updates per second per phone while filling. */
  updatesPerSecond: number;
  /** Development secret the server verifies tokens with. */
  secret: string;
  /** Photos each phone attaches (generated JPEGs of a phone photo's size). */
  photosPerParty?: number;
  /** Narration, one line per step (the --verbose mode). */
  say?: (line: string) => void;
  /** Show a progress bar on stderr. */
  showProgress?: boolean;
  /** Environment of the embedded server (default: the embedded defaults). */
  embeddedEnv?: Record<string, string>;
}

export interface TamperTally {
  attempted: number;
  refused: number;
  accepted: number;
  byKind: Record<
    string,
    { attempted: number; refused: number; accepted: number; outcomes: Record<string, number> }
  >;
}

export interface SimulationSummary {
  seed: string;
  target: string[];
  pairs: number;
  finalized: number;
  failed: number;
  /** "step: reason" → pairs that failed so. */
  failures: Record<string, number>;
  durationSeconds: number;
  updates: number;
  /**
   * An update leaving one phone → applied on the other (ms); `followed`: edits sent while both
   * phones were online (each should be a sample).
   */
  fanoutMs: Percentiles & { samples: number; followed: number };
  /** First signature sent → both phones told `finalized` (ms). */
  finalizeMs: Percentiles;
  /** Session opened → finalized (ms). */
  sessionMs: Percentiles;
  /** Finalized → read back from every insurer topic (ms); with --kafka. */
  kafkaMs?: Percentiles;
  throughput: { finalizedPerSecond: number; updatesPerSecond: number };
  offline?: { dropped: number; reconnected: number };
  transientCloses: number;
  tamper?: TamperTally;
  /** Photos uploaded: how many, MB in all, and per upload (the PUT only). */
  uploads?: { files: number; megabytes: number; ms: Percentiles };
  /** With --fraud-rate: the AI's fraud scores of suspicious and honest pairs. */
  fraud?: FraudSeparation;
}

export async function runSimulation(opts: SimulateOptions): Promise<SimulationSummary> {
  let embedded: EmbeddedServer | undefined;
  let watch: KafkaWatch | undefined;
  // Each stock provider adds a process 'exit' listener; many pairs at once exceed the default.
  const maxListeners = process.getMaxListeners();
  process.setMaxListeners(Math.max(maxListeners, opts.concurrency * 8 + 20));
  const logger = pino({ level: 'warn' }, pino.destination(2));
  try {
    let urls = opts.urls.map((u) => u.replace(/\/+$/, ''));
    if (urls.length === 0) {
      opts.say?.(
        'starting a server in this process (PGlite in a temporary folder, in-process hub)…',
      );
      embedded = await startEmbeddedServer({
        ...(opts.kafkaBrokers ? { KAFKA_BROKERS: opts.kafkaBrokers.join(',') } : {}),
        AUTH_JWT_SECRET: opts.secret,
        ...opts.embeddedEnv,
      });
      urls = [embedded.url];
      opts.say?.(`server listening on ${embedded.url}`);
    }
    const probe = await mintToken(opts.secret, 'sim-probe', 'sim-probe');
    const insurers = (
      await mustGql<{ insurers: Array<{ uid: string }> }>('insurers', urls[0]!, probe, INSURERS)
    ).insurers.map((i) => i.uid);
    if (insurers.length === 0) throw new Error('the server knows no insurer');
    if (opts.kafkaBrokers) {
      opts.say?.(`watching the insurer topics on Kafka ${opts.kafkaBrokers.join(',')}…`);
      watch = await KafkaWatch.start(opts.kafkaBrokers, insurers, logger);
    }

    const rng = seededRandom(opts.seed);
    const fanout = fanoutTally();
    const results: PairResult[] = [];
    const bar = opts.showProgress ? progress('simulated pairs', opts.pairs) : undefined;
    const started = performance.now();
    let next = 0;
    const worker = async () => {
      for (let i = next++; i < opts.pairs; i = next++) {
        const n = urls.length;
        const result = await runPair({
          index: i,
          rng: rng.fork(`pair-${i}`),
          urls: { a: urls[n > 2 ? i % n : 0]!, b: urls[n > 2 ? (i + 1) % n : n - 1]! },
          secret: opts.secret,
          insurers,
          offline: opts.offline,
          tamper: opts.tamper,
          suspicious: (opts.fraudRate ?? 0) > 0 && rng.fork(`fraud-${i}`).chance(opts.fraudRate!),
          updatesPerSecond: opts.updatesPerSecond,
          photos: { perParty: opts.photosPerParty ?? 0, minBytes: 600_000, maxBytes: 2_500_000 },
          kafka: watch,
          fanout,
          ...(opts.say ? { say: opts.say } : {}),
        });
        results.push(result);
        bar?.tick();
      }
    };
    try {
      await Promise.all(
        Array.from({ length: Math.max(1, Math.min(opts.concurrency, opts.pairs)) }, worker),
      );
    } finally {
      bar?.stop();
    }
    const summary = summarise(
      opts,
      urls,
      results,
      fanout,
      (performance.now() - started) / 1000,
      !!embedded,
    );
    if ((opts.fraudRate ?? 0) > 0) {
      opts.say?.('reading the AI fraud scores as an insurer…');
      summary.fraud = await collectFraudScores(
        urls[0]!,
        opts.secret,
        insurers,
        results,
        opts.fraudScoreTimeoutMs,
      );
    }
    return summary;
  } finally {
    await watch?.close();
    await embedded?.stop();
    process.setMaxListeners(maxListeners);
  }
}

function summarise(
  opts: SimulateOptions,
  urls: string[],
  results: PairResult[],
  fanout: FanoutTally,
  seconds: number,
  embedded: boolean,
): SimulationSummary {
  const ok = results.filter((r) => !r.failure);
  const failures: Record<string, number> = {};
  for (const r of results) {
    if (r.failure) {
      const key = `${r.failure.step}: ${r.failure.reason}`;
      failures[key] = (failures[key] ?? 0) + 1;
    }
  }
  const updates = results.reduce((n, r) => n + r.updates, 0);
  const summary: SimulationSummary = {
    seed: opts.seed,
    target: embedded ? [`embedded (${urls[0]})`] : urls,
    pairs: results.length,
    finalized: ok.length,
    failed: results.length - ok.length,
    failures,
    durationSeconds: seconds,
    updates,
    fanoutMs: {
      ...percentiles(fanout.latencies),
      samples: fanout.latencies.length,
      followed: fanout.followed,
    },
    finalizeMs: percentiles(ok.map((r) => r.finalizeMs!)),
    sessionMs: percentiles(ok.map((r) => r.sessionMs!)),
    throughput: { finalizedPerSecond: ok.length / seconds, updatesPerSecond: updates / seconds },
    transientCloses: results.reduce((n, r) => n + r.transientCloses, 0),
  };
  if (opts.kafkaBrokers) summary.kafkaMs = percentiles(ok.map((r) => r.kafkaMs!));
  const uploads = results.flatMap((r) => r.uploads);
  if (uploads.length > 0) {
    summary.uploads = {
      files: uploads.length,
      megabytes: uploads.reduce((n, u) => n + u.bytes, 0) / 1e6,
      ms: percentiles(uploads.map((u) => u.ms)),
    };
  }
  if (opts.offline) {
    summary.offline = {
      dropped: results.reduce((n, r) => n + r.offline.dropped, 0),
      reconnected: results.reduce((n, r) => n + r.offline.reconnected, 0),
    };
  }
  if (opts.tamper) {
    const tally: TamperTally = { attempted: 0, refused: 0, accepted: 0, byKind: {} };
    for (const attempt of results.flatMap((r) => r.tamper)) {
      const kind = (tally.byKind[attempt.kind] ??= {
        attempted: 0,
        refused: 0,
        accepted: 0,
        outcomes: {},
      });
      const accepted = attempt.outcome === 'accepted';
      tally.attempted++;
      kind.attempted++;
      if (accepted) {
        tally.accepted++;
        kind.accepted++;
      } else {
        tally.refused++;
        kind.refused++;
      }
      kind.outcomes[attempt.outcome] = (kind.outcomes[attempt.outcome] ?? 0) + 1;
    }
    summary.tamper = tally;
  }
  return summary;
}

const ms = (v: number) =>
  Number.isFinite(v) ? `${v < 10 ? v.toFixed(1) : Math.round(v)} ms` : '—';
const pct = (p: Percentiles) => `p50 ${ms(p.p50)}  p95 ${ms(p.p95)}  p99 ${ms(p.p99)}`;

export function formatSummary(s: SimulationSummary): string {
  const lines = [
    '',
    `constat simulate — seed ${s.seed}, against ${s.target.join(' + ')}`,
    `  sessions finalized   ${s.finalized}/${s.pairs}${s.failed ? `   (${s.failed} failed)` : ''}`,
  ];
  for (const [reason, n] of Object.entries(s.failures).sort((x, y) => y[1] - x[1])) {
    lines.push(`    ${String(n).padStart(4)} × ${reason}`);
  }
  lines.push(
    `  fan-out latency      ${pct(s.fanoutMs)}   (${s.fanoutMs.samples} of ${s.fanoutMs.followed} updates sent while both were online)`,
    `  time to finalize     ${pct(s.finalizeMs)}   (first signature → both phones told)`,
    `  session duration     ${pct(s.sessionMs)}   (open → finalized)`,
  );
  if (s.kafkaMs)
    lines.push(`  finalized → Kafka    ${pct(s.kafkaMs)}   (read back from the insurer topics)`);
  lines.push(
    `  throughput           ${s.throughput.finalizedPerSecond.toFixed(2)} sessions/s, ${Math.round(s.throughput.updatesPerSecond)} updates/s over ${s.durationSeconds.toFixed(1)} s`,
  );
  if (s.uploads)
    lines.push(
      `  photo uploads        ${pct(s.uploads.ms)}   (${s.uploads.files} files, ${s.uploads.megabytes.toFixed(1)} MB)`,
    );
  if (s.fraud) {
    const g = (name: string, x: FraudGroup) =>
      `  fraud score ${name.padEnd(9)} mean ${Number.isFinite(x.meanScore) ? x.meanScore.toFixed(2) : '—'}, ` +
      `${Number.isFinite(x.flagged) ? Math.round(x.flagged * 100) : '—'} % flagged  (${x.scored}/${x.pairs} scored)`;
    lines.push(g('suspicious', s.fraud.suspicious), g('honest', s.fraud.honest));
  }
  if (s.transientCloses)
    lines.push(`  transient closes     ${s.transientCloses} (1013, recovered by the client)`);
  if (s.offline) {
    lines.push(
      `  offline              ${s.offline.dropped} phones dropped mid-edit, ${s.offline.reconnected} came back`,
    );
  }
  if (s.tamper) {
    const t = s.tamper;
    lines.push(
      `  tamper               ${t.refused}/${t.attempted} refused, ${t.accepted} accepted${t.accepted ? '  ← FAILURE' : ''}`,
    );
    for (const [kind, k] of Object.entries(t.byKind)) {
      const outcomes = Object.entries(k.outcomes)
        .map(([o, n]) => `${o}${n === k.attempted ? '' : ` ×${n}`}`)
        .join(', ');
      lines.push(`    ${kind.padEnd(52)} ${k.refused}/${k.attempted} refused (${outcomes})`);
    }
  }
  return lines.join('\n') + '\n';
}

function positive(name: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1)
    throw new SimulateUsageError(`--${name} must be a positive integer`);
  return n;
}

function rate(raw: string): number {
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(n) || n < 0 || n > 1)
    throw new SimulateUsageError('--fraud-rate must be a number between 0 and 1');
  return n;
}

export class SimulateUsageError extends Error {}

/** `constat simulate …`: exits non-zero when a pair failed or a forgery was accepted. */
export async function runSimulateCommand(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      pairs: { type: 'string' },
      concurrency: { type: 'string' },
      url: { type: 'string', multiple: true },
      offline: { type: 'boolean', default: false },
      tamper: { type: 'boolean', default: false },
      kafka: { type: 'string' },
      'fraud-rate': { type: 'string' },
      seed: { type: 'string' },
      typing: { type: 'string' },
      photos: { type: 'string' },
      verbose: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(SIMULATE_USAGE);
    return;
  }
  const verbose = values.verbose;
  if (verbose && values.pairs !== undefined && values.pairs !== '1') {
    process.stderr.write('constat simulate: --verbose runs a single pair\n');
  }
  for (const url of values.url ?? []) {
    if (!/^https?:\/\/[^/]+/.test(url))
      throw new SimulateUsageError(`--url ${url}: expected http://host:port`);
  }
  const seed = values.seed ?? Math.random().toString(36).slice(2, 10);
  const pairs = verbose ? 1 : positive('pairs', values.pairs, 10);
  const t0 = performance.now();
  const say = verbose
    ? (line: string) =>
        process.stdout.write(
          `${`+${((performance.now() - t0) / 1000).toFixed(2)}s`.padStart(8)}  ${line}\n`,
        )
    : undefined;
  const summary = await runSimulation({
    pairs,
    concurrency: positive('concurrency', values.concurrency, 10),
    urls: values.url ?? [],
    offline: values.offline,
    tamper: values.tamper,
    seed,
    ...(values.kafka ? { kafkaBrokers: values.kafka.split(',').map((b) => b.trim()) } : {}),
    ...(values['fraud-rate'] !== undefined ? { fraudRate: rate(values['fraud-rate']) } : {}),
    updatesPerSecond: positive('typing', values.typing, 40),
    photosPerParty: values.photos === '0' ? 0 : positive('photos', values.photos, 2),
    secret: developmentSecret(),
    ...(say ? { say } : {}),
    showProgress: !verbose && !values.json,
  });
  process.stdout.write(
    values.json ? JSON.stringify(summary, null, 2) + '\n' : formatSummary(summary),
  );
  if (summary.failed > 0 || (summary.tamper?.accepted ?? 0) > 0) process.exitCode = 1;
}
