/**
 * `npm run bench -- --soak`: simulated pairs (the simulator's pair: open, join, fill both
 * sections, sign, finalized, read back from Kafka) started at an even pace for `minutes`
 * against two `constat serve` instances on PostgreSQL, Redis and Kafka, behind a load
 * balancer (balancer.ts); half-way through, one instance is stopped with SIGTERM and started
 * again, and its phones reconnect through the balancer as any phone would.
 *
 * Sampled over time: each instance's RSS and event-loop delay (the probe, loop-probe.mjs),
 * Redis's `used_memory` and what our own keys hold (bytes, stream entries). At the end the
 * invariants are checked, each against the stores themselves:
 * - every pair finalized;
 * - no lost edit: each phone's whole document, merged into the constat's snapshot as
 *   PostgreSQL stores it, adds nothing (not a struct, not a deletion, not a character of
 *   content), and the stored canonical JSON and hash are the snapshot's;
 * - every session finalized exactly once (one row per session, one per pair);
 * - every constat delivered exactly once on each of its insurers' topics (read back);
 * - Redis holds no stream entry once the compaction window has passed after the last edit.
 */
import os from 'node:os';
import * as Y from 'yjs';
import { Redis } from 'ioredis';
import postgres from 'postgres';
import { pino } from 'pino';
import { canonicalJson } from '../../constat/canonical-json.js';
import { contentHash, sha256Hex } from '../../constat/content-hash.js';
import { materialise } from '../../constat/constat-doc.js';
import { EventType } from '../../integrations/events.js';
import { INSURERS, mintToken, mustGql } from '../../client/graphql.js';
import { KafkaWatch } from '../sim/kafka-watch.js';
import { fanoutTally, runPair, type PairResult } from '../sim/pair.js';
import { seededRandom } from '../sim/random.js';
import { sleep, waitFor } from '../../client/device.js';
import { startBalancer, type Balancer } from './balancer.js';
import { readLoops } from './probe.js';
import { progress } from './progress.js';
import { percentiles, type Percentiles } from './stats.js';
import { BENCH_SECRET, REDIS_URL, startTarget, type Target } from './targets.js';

export interface SoakOptions {
  /** Pairs in all, started at an even pace over `minutes`. */
  pairs: number;
  minutes: number;
  kafkaBrokers: string;
  /** Updates per second each phone sends while filling (default 20, a quick typist). */
  updatesPerSecond?: number;
  /** Sampling period (default: a 60th of the run, 1–10 s). */
  sampleMs?: number;
  /** Share of the run before which samples are warm-up, left out of the slopes (default 0.2). */
  warmupShare?: number;
  /** Environment of the instances on top of the benchmark's. */
  env?: Record<string, string>;
  seed?: string;
  showProgress?: boolean;
  log?: (line: string) => void;
}

export interface InstanceSample {
  /** Seconds since the first pair started. */
  t: number;
  rssKiB: number;
  loopP99Ms: number;
  loopMaxMs: number;
}

/** One process of one instance: the restarted instance has two lives. */
export interface InstanceLife {
  instance: number;
  life: number;
  samples: InstanceSample[];
  /** Least-squares slope after the warm-up; undefined with fewer than 3 samples. */
  rssSlopeKiBPerMinute: number | undefined;
  loopP99SlopeMsPerMinute: number | undefined;
}

export interface RedisSample {
  t: number;
  /** INFO memory of the whole Redis (shared with whatever else uses it). */
  usedMemory: number;
  /** MEMORY USAGE summed over this run's keys. */
  keyspaceBytes: number;
  keys: number;
  /** Entries in this run's session streams. */
  streamEntries: number;
}

export interface Invariant {
  name: string;
  ok: boolean;
  detail: string;
}

export interface SoakReport {
  pairs: number;
  finalized: number;
  /** "step: reason" → pairs that failed so. */
  failures: Record<string, number>;
  minutes: number;
  durationSeconds: number;
  updates: number;
  fanoutMs: Percentiles;
  sessionMs: Percentiles;
  restart: { instance: number; atSeconds: number; downSeconds: number };
  /** Connections the balancer sent to another instance than their own (the restart's). */
  failovers: number;
  instances: InstanceLife[];
  redis: {
    samples: RedisSample[];
    /** The compaction window the instances ran with: entries live this long after merging. */
    windowSeconds: number;
    /** Slope of this run's keyspace after the warm-up, while pairs ran. */
    keyspaceSlopeBytesPerMinute: number | undefined;
    usedMemorySlopeBytesPerMinute: number | undefined;
  };
  invariants: Invariant[];
  loadAverage: { before: number; after: number };
}

/** Least-squares slope of y over x (per unit of x); undefined with fewer than 3 points. */
export function slope(points: ReadonlyArray<readonly [number, number]>): number | undefined {
  const pts = points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  if (pts.length < 3) return undefined;
  const n = pts.length;
  const mx = pts.reduce((s, [x]) => s + x, 0) / n;
  const my = pts.reduce((s, [, y]) => s + y, 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (const [x, y] of pts) {
    sxy += (x - mx) * (y - my);
    sxx += (x - mx) ** 2;
  }
  return sxx === 0 ? undefined : sxy / sxx;
}

/**
 * What a phone wrote that the finalized snapshot lacks: its structs (by its own client id's
 * clock) and its deletions or content (merging it into the snapshot must not change the
 * content). Empty when nothing was lost.
 */
export function lostEdits(
  snapshot: Uint8Array,
  phone: { clientId: number; state: Uint8Array },
): string[] {
  const doc = new Y.Doc();
  Y.applyUpdate(doc, snapshot);
  const before = canonicalJson(materialise(doc));
  const have = Y.getState(doc.store, phone.clientId);
  const wrote = Y.decodeStateVector(Y.encodeStateVectorFromUpdate(phone.state)).get(phone.clientId);
  const lost: string[] = [];
  if (wrote !== undefined && wrote > have)
    lost.push(`${wrote - have} of the phone's ${wrote} structs are not in the snapshot`);
  Y.applyUpdate(doc, phone.state);
  if (canonicalJson(materialise(doc)) !== before)
    lost.push("the phone's content differs from the snapshot's");
  return lost;
}

const failureKey = (r: PairResult) => `${r.failure!.step}: ${r.failure!.reason}`;

export async function runSoak(opts: SoakOptions): Promise<SoakReport> {
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const loadBefore = os.loadavg()[0]!;
  const durationMs = opts.minutes * 60_000;
  const sampleMs = opts.sampleMs ?? Math.min(10_000, Math.max(1_000, durationMs / 60));
  const warmupShare = opts.warmupShare ?? 0.2;
  const windowMs = Number(opts.env?.HUB_MIN_MESSAGE_LIFETIME_MS ?? 60_000);
  const compactionMs = Number(opts.env?.COMPACTION_INTERVAL_MS ?? 5_000);
  let target: Target | undefined;
  let balancer: Balancer | undefined;
  let watch: KafkaWatch | undefined;
  const redis = new Redis(REDIS_URL);
  // Each stock provider adds a process 'exit' listener; many pairs at once exceed the default.
  const maxListeners = process.getMaxListeners();
  process.setMaxListeners(Math.max(maxListeners, 400));
  try {
    target = await startTarget('ours-redis', {
      kafkaBrokers: opts.kafkaBrokers,
      env: opts.env ?? {},
    });
    const t = target;
    const prefix = t.redisPrefix!;
    balancer = await startBalancer(t.instances.map((i) => Number(new URL(i.url).port)));
    const [frontA, frontB] = balancer.urls as [string, string];
    const probe = await mintToken(BENCH_SECRET, 'soak-probe', 'soak-probe');
    const insurers = (
      await mustGql<{ insurers: Array<{ uid: string }> }>('insurers', frontA, probe, INSURERS)
    ).insurers.map((i) => i.uid);
    watch = await KafkaWatch.start(
      opts.kafkaBrokers.split(','),
      insurers,
      pino({ level: 'error' }),
    );

    // Samples, from now until the checks start.
    const started = performance.now();
    const since = () => (performance.now() - started) / 1000;
    const lives: InstanceLife[] = t.instances.map((_, instance) => newLife(instance, 1));
    const redisSamples: RedisSample[] = [];
    let restarting = -1;
    const sampleOnce = async () => {
      const at = since();
      const rss = t.rssKiB();
      await Promise.all(
        t.instances.map(async (_, i) => {
          if (i === restarting) return;
          const [loop] = await readLoops([t.probePorts[i]!]).catch(() => [undefined]);
          if (!loop || !Number.isFinite(rss[i])) return;
          const life = lives.filter((l) => l.instance === i).at(-1)!;
          life.samples.push({
            t: at,
            rssKiB: rss[i]!,
            loopP99Ms: loop.p99Ms,
            loopMaxMs: loop.maxMs,
          });
        }),
      );
      redisSamples.push({ t: at, ...(await redisFootprint(redis, prefix)) });
    };
    await readLoops(t.probePorts); // opens the first window
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        await sampleOnce().catch((err: unknown) => log(`soak sample: ${(err as Error).message}`));
        const next = Math.ceil(since() / (sampleMs / 1000)) * sampleMs;
        await sleep(Math.max(50, next - (performance.now() - started)));
      }
    })();

    // The pairs, at an even pace; the restart half-way.
    const rng = seededRandom(opts.seed ?? 'soak');
    const results: PairResult[] = [];
    const fanout = fanoutTally();
    const bar = opts.showProgress ? progress('soak pairs', opts.pairs) : undefined;
    const restartInstance = 1;
    const restart = { instance: restartInstance, atSeconds: NaN, downSeconds: NaN };
    const restarted = (async () => {
      await sleep(durationMs / 2);
      restart.atSeconds = since();
      // As a deployment does it: the balancer stops sending it work, in-flight requests finish,
      // then SIGTERM; the instance's phones are closed with 1001 and reconnect elsewhere.
      balancer!.drain(restartInstance);
      await sleep(1_000);
      restarting = restartInstance;
      const down = performance.now();
      await t.restart!(restartInstance);
      restart.downSeconds = (performance.now() - down) / 1000;
      lives.push(newLife(restartInstance, 2));
      restarting = -1;
      balancer!.restore(restartInstance);
    })();
    const interval = durationMs / opts.pairs;
    const running: Array<Promise<void>> = [];
    for (let i = 0; i < opts.pairs; i++) {
      await sleep(Math.max(0, started + i * interval - performance.now()));
      running.push(
        runPair({
          index: i,
          rng: rng.fork(`pair-${i}`),
          urls: { a: frontA, b: frontB },
          secret: BENCH_SECRET,
          insurers,
          offline: false,
          tamper: false,
          updatesPerSecond: opts.updatesPerSecond ?? 20,
          kafka: watch,
          fanout,
          keepDocuments: true,
        }).then((r) => {
          results.push(r);
          bar?.tick();
        }),
      );
    }
    await Promise.all(running);
    await restarted;
    bar?.stop();
    const runSeconds = since();

    // Every event published; then the compaction window passes with no edit, and Redis must
    // have let go of every stream entry.
    const db = postgres(t.databaseUrl!, { max: 2, onnotice: () => {} });
    try {
      const drainDeadline = performance.now() + 120_000;
      const pending = async () =>
        (
          await db<
            Array<{ n: number }>
          >`select count(*)::int as n from outbox where sent_at is null`
        )[0]!.n;
      while ((await pending()) > 0 && performance.now() < drainDeadline) await sleep(500);
      const windowEnds = performance.now() + windowMs + 3 * compactionMs + 2_000;
      await sleep(Math.max(0, windowEnds - performance.now()));
      sampling = false;
      await sampler;
      await sampleOnce();

      const ok = results.filter((r) => !r.failure);
      const failures: Record<string, number> = {};
      for (const r of results.filter((r) => r.failure))
        failures[failureKey(r)] = (failures[failureKey(r)] ?? 0) + 1;
      const invariants = await checkInvariants(db, watch, results, redisSamples.at(-1)!);
      const warmup = runSeconds * warmupShare;
      const warm = (s: { t: number }) => s.t >= warmup && s.t <= runSeconds;
      for (const life of lives) {
        // A restarted process warms up again from its own start.
        const born = life.samples[0]?.t ?? 0;
        const samples = life.samples.filter((s) => s.t >= born + warmup && s.t <= runSeconds);
        life.rssSlopeKiBPerMinute = perMinute(slope(samples.map((s) => [s.t, s.rssKiB])));
        life.loopP99SlopeMsPerMinute = perMinute(slope(samples.map((s) => [s.t, s.loopP99Ms])));
      }
      const warmRedis = redisSamples.filter(warm);
      return {
        pairs: results.length,
        finalized: ok.length,
        failures,
        minutes: opts.minutes,
        durationSeconds: since(),
        updates: results.reduce((n, r) => n + r.updates, 0),
        fanoutMs: percentiles(fanout.latencies),
        sessionMs: percentiles(ok.map((r) => r.sessionMs!)),
        restart,
        failovers: balancer.failovers(),
        instances: lives,
        redis: {
          samples: redisSamples,
          windowSeconds: windowMs / 1000,
          keyspaceSlopeBytesPerMinute: perMinute(
            slope(warmRedis.map((s) => [s.t, s.keyspaceBytes])),
          ),
          usedMemorySlopeBytesPerMinute: perMinute(
            slope(warmRedis.map((s) => [s.t, s.usedMemory])),
          ),
        },
        invariants,
        loadAverage: { before: loadBefore, after: os.loadavg()[0]! },
      };
    } finally {
      await db.end({ timeout: 5 });
    }
  } finally {
    await watch?.close();
    await balancer?.close();
    await target?.stop();
    redis.disconnect();
    process.setMaxListeners(maxListeners);
  }
}

const newLife = (instance: number, life: number): InstanceLife => ({
  instance,
  life,
  samples: [],
  rssSlopeKiBPerMinute: undefined,
  loopP99SlopeMsPerMinute: undefined,
});

const perMinute = (perSecond: number | undefined) =>
  perSecond === undefined ? undefined : perSecond * 60;

/** This run's keys in Redis: how many, their bytes, their stream entries; and all of Redis. */
async function redisFootprint(redis: Redis, prefix: string): Promise<Omit<RedisSample, 't'>> {
  const info = await redis.info('memory');
  const usedMemory = Number(/^used_memory:(\d+)/m.exec(info)?.[1]);
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== '0');
  const pipeline = redis.pipeline();
  for (const key of keys) pipeline.memory('USAGE', key, 'SAMPLES', '0');
  const streams = keys.filter((k) => k.endsWith(':updates'));
  for (const key of streams) pipeline.xlen(key);
  const replies = (await pipeline.exec()) ?? [];
  const numbers = replies.map(([, v]) => Number(v ?? 0));
  return {
    usedMemory,
    keys: keys.length,
    keyspaceBytes: numbers.slice(0, keys.length).reduce((s, x) => s + x, 0),
    streamEntries: numbers.slice(keys.length).reduce((s, x) => s + x, 0),
  };
}

interface ConstatRow {
  id: string;
  session_id: string;
  content_hash: string;
  canonical_json: string;
  snapshot: Uint8Array;
  insurer_a: string | null;
  insurer_b: string | null;
}

async function checkInvariants(
  db: postgres.Sql,
  watch: KafkaWatch,
  results: PairResult[],
  lastRedis: RedisSample,
): Promise<Invariant[]> {
  const ok = results.filter((r) => !r.failure);
  const invariants: Invariant[] = [];
  const failed = results.length - ok.length;
  const reasons = [...new Set(results.filter((r) => r.failure).map(failureKey))];
  invariants.push({
    name: 'every pair finalized',
    ok: failed === 0,
    detail: `${ok.length}/${results.length}${failed ? ` (${failed} failed: ${reasons.slice(0, 3).join('; ')})` : ''}`,
  });

  const rows = await db<ConstatRow[]>`
    select id, session_id, content_hash, canonical_json, snapshot, insurer_a, insurer_b
    from constats`;
  const byId = new Map(rows.map((r) => [r.id, r]));
  // Pairs whose phones were told `finalized` (a pair may still fail after that, on Kafka).
  const told = results.filter((r) => r.constatId);
  const toldSessions = new Set(told.map((r) => r.sessionId));
  const perSession = new Map<string, number>();
  for (const r of rows) perSession.set(r.session_id, (perSession.get(r.session_id) ?? 0) + 1);
  const twice = [...perSession.values()].filter((n) => n > 1).length;
  const missing = told.filter((r) => !byId.has(r.constatId!)).length;
  const wrongSession = told.filter(
    (r) => byId.has(r.constatId!) && byId.get(r.constatId!)!.session_id !== r.sessionId,
  ).length;
  const strays = rows.filter((r) => !toldSessions.has(r.session_id));
  const strayPairs = results
    .filter((r) => r.failure && strays.some((s) => s.session_id === r.sessionId))
    .map((r) => `pair ${r.index} (${failureKey(r)})`);
  invariants.push({
    name: 'every session finalized exactly once (PostgreSQL)',
    ok: twice === 0 && missing === 0 && wrongSession === 0 && strays.length === 0,
    detail:
      `${rows.length} constats for ${told.length} pairs told \`finalized\`; ${twice} sessions ` +
      `finalized more than once, ${missing} constats the phones were told of but not stored, ` +
      `${wrongSession} of another session, ${strays.length} that no phone was told of` +
      (strayPairs.length ? `: ${strayPairs.slice(0, 3).join(', ')}` : ''),
  });

  const lost: string[] = [];
  let phonesChecked = 0;
  for (const r of told) {
    const row = byId.get(r.constatId!);
    if (!row || !r.phones) continue;
    const snapshot = new Y.Doc();
    Y.applyUpdate(snapshot, row.snapshot);
    const canonical = canonicalJson(materialise(snapshot));
    if (canonical !== row.canonical_json || sha256Hex(canonical) !== row.content_hash)
      lost.push(`pair ${r.index}: the stored content is not the snapshot's`);
    if (contentHash(snapshot) !== row.content_hash)
      lost.push(`pair ${r.index}: the snapshot does not hash to the signed hash`);
    for (const role of ['A', 'B'] as const) {
      phonesChecked++;
      for (const why of lostEdits(row.snapshot, r.phones[role]))
        lost.push(`pair ${r.index} phone ${role}: ${why}`);
    }
  }
  invariants.push({
    name: 'zero lost edits',
    ok: lost.length === 0 && phonesChecked === told.length * 2,
    detail:
      lost.length === 0
        ? `${phonesChecked} phones' documents are wholly in their constat's snapshot`
        : `${lost.length}: ${lost.slice(0, 3).join('; ')}`,
  });

  const wrong: string[] = [];
  let deliveries = 0;
  await waitFor(
    () =>
      rows.every((row) =>
        topicsOf(row).every(
          (topic) => watch.deliveries(row.id, topic, EventType.constatFinalized) > 0,
        ),
      ),
    60_000,
    'not every constat was read back from Kafka',
    200,
  ).catch(() => {});
  await sleep(2_000); // a duplicate published late is read too
  for (const row of rows) {
    for (const topic of topicsOf(row)) {
      const n = watch.deliveries(row.id, topic, EventType.constatFinalized);
      deliveries++;
      if (n !== 1) wrong.push(`${row.id} on ${topic}: ${n}`);
    }
  }
  invariants.push({
    name: 'delivered once per insurer topic (Kafka, read back)',
    ok: wrong.length === 0 && rows.length > 0,
    detail:
      wrong.length === 0
        ? `${deliveries} deliveries of ${rows.length} constats, each read once`
        : `${wrong.length} of ${deliveries} not read exactly once: ${wrong.slice(0, 3).join(', ')}`,
  });

  invariants.push({
    name: 'Redis lets go of every stream entry after the compaction window',
    ok: lastRedis.streamEntries === 0,
    detail: `${lastRedis.streamEntries} stream entries left; ${lastRedis.keys} keys, ${lastRedis.keyspaceBytes} bytes (${(lastRedis.keyspaceBytes / Math.max(1, ok.length)).toFixed(0)} per finalized session)`,
  });
  return invariants;
}

const topicsOf = (row: ConstatRow) =>
  [...new Set([row.insurer_a, row.insurer_b])].filter((t): t is string => !!t);

const n1 = (v: number | undefined, unit: string) =>
  v === undefined ? '—' : `${v >= 0 ? '+' : ''}${v.toFixed(1)} ${unit}`;

export function formatSoak(r: SoakReport): string {
  const lines = [
    '',
    `soak — ${r.pairs} pairs over ${r.minutes} min against 2 instances (PostgreSQL, Redis, Kafka), ` +
      `instance ${r.restart.instance + 1} restarted at ${r.restart.atSeconds.toFixed(0)} s ` +
      `(down ${r.restart.downSeconds.toFixed(1)} s, ${r.failovers} connections sent to the other)`,
    `  load average ${r.loadAverage.before.toFixed(2)} before, ${r.loadAverage.after.toFixed(2)} after; ` +
      `${r.durationSeconds.toFixed(0)} s in all, ${r.updates} updates`,
    `  finalized            ${r.finalized}/${r.pairs}`,
  ];
  for (const [reason, n] of Object.entries(r.failures).sort((x, y) => y[1] - x[1]))
    lines.push(`    ${String(n).padStart(4)} × ${reason}`);
  const ms = (v: number) => (Number.isFinite(v) ? `${Math.round(v)} ms` : '—');
  lines.push(
    `  fan-out              p50 ${ms(r.fanoutMs.p50)}  p99 ${ms(r.fanoutMs.p99)}  max ${ms(r.fanoutMs.max)}`,
    `  session              p50 ${ms(r.sessionMs.p50)}  p99 ${ms(r.sessionMs.p99)}   (open → finalized)`,
    '',
    '  instance  life  samples  RSS first → last (MiB)  slope after warm-up  loop p99 median / max  slope',
  );
  for (const l of r.instances) {
    const s = l.samples;
    const mib = (k: number | undefined) => (k === undefined ? '—' : (k / 1024).toFixed(0));
    const p99s = s.map((x) => x.loopP99Ms);
    const med = p99s.length ? percentiles(p99s).p50 : NaN;
    lines.push(
      `  ${String(l.instance + 1).padEnd(8)}  ${String(l.life).padEnd(4)}  ${String(s.length).padEnd(7)}  ` +
        `${`${mib(s[0]?.rssKiB)} → ${mib(s.at(-1)?.rssKiB)}`.padEnd(22)}  ${n1(l.rssSlopeKiBPerMinute, 'KiB/min').padEnd(19)}  ` +
        `${`${med.toFixed(1)} / ${p99s.length ? Math.max(...p99s).toFixed(1) : '—'} ms`.padEnd(21)}  ${n1(l.loopP99SlopeMsPerMinute, 'ms/min')}`,
    );
  }
  const rs = r.redis.samples;
  const peak = rs.reduce((m, s) => Math.max(m, s.keyspaceBytes), 0);
  lines.push(
    '',
    `  Redis (window ${r.redis.windowSeconds} s)  this run's keys: peak ${(peak / 1024).toFixed(0)} KiB, ` +
      `end ${((rs.at(-1)?.keyspaceBytes ?? 0) / 1024).toFixed(0)} KiB, slope ${n1(r.redis.keyspaceSlopeBytesPerMinute, 'B/min')}; ` +
      `used_memory ${((rs[0]?.usedMemory ?? 0) / 2 ** 20).toFixed(1)} → ${((rs.at(-1)?.usedMemory ?? 0) / 2 ** 20).toFixed(1)} MiB ` +
      `(all of Redis, shared), slope ${n1(r.redis.usedMemorySlopeBytesPerMinute, 'B/min')}`,
    '',
  );
  for (const inv of r.invariants) lines.push(`  ${inv.ok ? '✓' : '✗'} ${inv.name}: ${inv.detail}`);
  const failedInvariants = r.invariants.filter((i) => !i.ok).length;
  lines.push(
    '',
    failedInvariants ? `  ${failedInvariants} invariant(s) FAILED` : '  all invariants hold',
  );
  return lines.join('\n') + '\n';
}
