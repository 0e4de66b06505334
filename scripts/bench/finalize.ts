/**
 * Finalizations per second, end to end, for this server only: `pairs` sessions are prepared
 * first (opened, joined, keys registered, the form filled from both clients, the server's copy
 * caught up), then every pair signs, `concurrency` pairs at a time, and the clock runs until
 * the last constat is committed (both clients told `finalized`: the PostgreSQL transaction is
 * done) and until the last one has been read back from the `constats` Kafka topic (the outbox
 * relay published it and the broker acknowledged it).
 */
import * as Y from 'yjs';
import { pino } from 'pino';
import { createSkeleton, materialise } from '../../constat/constat-doc.js';
import { writeSection } from '../../client/writer.js';
import { COMPANIES } from '../../integrations/companies.js';
import { CONSTATS_TOPIC } from '../../integrations/events.js';
import { pairScript, runAction } from '../sim/content.js';
import { seededRandom } from '../sim/random.js';
import { errorCode } from '../../client/graphql.js';
import { type DeviceKey } from '../../client/keys.js';
import { waitFor } from '../../client/device.js';
import {
  finalizedConstatId,
  registerKey,
  signConstat,
  waitForConverged,
  waitForServerHash,
} from '../../client/flow.js';
import { KafkaWatch } from '../sim/kafka-watch.js';
import { LightClient } from './light-client.js';
import { percentiles, type Percentiles } from './stats.js';
import type { Progress } from './progress.js';
import { machineTicks, metricSum, type BenchSession, type Target } from './targets.js';

export interface FinalizeResult {
  pairs: number;
  concurrency: number;
  /** Committed constats per second (first signature sent → last `finalized`). */
  committedPerSecond: number;
  /** Constats per second through Kafka (first signature sent → last read back); absent without Kafka. */
  kafkaPerSecond: number | undefined;
  /** Per pair: signatures sent → `finalized` (ms). */
  commitLatencyMs: Percentiles;
  failures: number;
  /** Server CPU (all instances) per committed constat, ms, during the timed part. */
  serverCpuMsPerConstat: number;
  /** Share of the whole machine's CPU (every core) busy during the timed part. */
  machineBusyShare: number;
  /** SQL statements our instances sent per committed constat (its signatures included). */
  sqlStatementsPerConstat: number;
  /**
   * Produce requests the outbox relays made per constat, counted until the last constat was
   * read back from Kafka; absent without Kafka.
   */
  kafkaSendsPerConstat: number | undefined;
}

export interface Prepared {
  session: BenchSession;
  a: LightClient;
  b: LightClient;
  keys: { A: DeviceKey; B: DeviceKey };
  hash: string;
}

/** A complete form, as plain sections: what A and B write. */
export async function formContent(i: number) {
  const doc = new Y.Doc();
  createSkeleton(doc, null);
  const script = pairScript(
    seededRandom(`bench-${i}`),
    COMPANIES.map((c) => c.uid),
  );
  for (const action of [...script.A, ...script.B]) await runAction(doc, action, async () => {});
  return materialise(doc);
}

/**
 * A session ready to sign: opened, joined, keys registered, the form filled from both
 * clients (then `extra`, if given, on the clients), the server's copy caught up.
 */
export async function prepare(
  target: Target,
  i: number,
  extra?: (a: LightClient, b: LightClient) => Promise<void>,
): Promise<Prepared> {
  const session = await target.newSession(`fin-${i}`);
  const p = session.parties!;
  const [keyA, keyB] = await Promise.all([
    registerKey(p.httpA, p.tokenA),
    registerKey(p.httpB, p.tokenB),
  ]);
  const keys = { A: keyA, B: keyB };
  const a = new LightClient({ url: session.urlA, room: session.room, wire: target.wire });
  const b = new LightClient({ url: session.urlB, room: session.room, wire: target.wire });
  await Promise.all([a.whenSynced(), b.whenSynced()]);
  const { accident, vehicleA, vehicleB, sketch } = await formContent(i);
  const { witnesses, ...place } = accident;
  writeSection(a.doc, 'accident', place);
  writeSection(a.doc, 'vehicleA', vehicleA);
  writeSection(b.doc, 'vehicleB', vehicleB);
  writeSection(b.doc, 'sketch', sketch);
  if (witnesses) writeSection(b.doc, 'accident', { witnesses });
  await extra?.(a, b);
  const hash = await waitForConverged(a, b);
  await waitForServerHash(p.httpA, p.tokenA, session.room, hash, 30_000);
  return { session, a, b, keys, hash };
}

/** Both parties sign at once; resolves with the constat id once A was told `finalized`. */
export async function signPrepared(p: Prepared): Promise<string> {
  const parties = p.session.parties!;
  const results = await Promise.all(
    (['A', 'B'] as const).map((role) =>
      signConstat(
        role === 'A'
          ? { url: parties.httpA, token: parties.tokenA }
          : { url: parties.httpB, token: parties.tokenB },
        p.session.room,
        role,
        p.keys[role],
        p.hash,
      ),
    ),
  );
  const refused = results.find((r) => r.errors);
  if (refused) throw new Error(`signConstat: ${errorCode(refused)}`);
  await waitFor(() => !!finalizedConstatId(p.a), 30_000, 'no finalized event', 2);
  return finalizedConstatId(p.a)!;
}

export async function measureFinalizations(
  target: Target,
  opts: {
    pairs: number;
    concurrency: number;
    kafkaBrokers: string | undefined;
    progress: Progress;
    /** Wraps the timed part (the signing), e.g. to CPU-profile it without the preparation. */
    timed?: (fn: () => Promise<void>) => Promise<void>;
  },
): Promise<FinalizeResult> {
  const prepared: Prepared[] = [];
  let watch: KafkaWatch | undefined;
  try {
    let next = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        for (let i = next++; i < opts.pairs; i = next++) prepared.push(await prepare(target, i));
      }),
    );
    if (opts.kafkaBrokers) {
      watch = await KafkaWatch.start(
        opts.kafkaBrokers.split(','),
        [CONSTATS_TOPIC],
        pino({ level: 'error' }),
      );
    }
    const latencies: number[] = [];
    const constatIds: string[] = [];
    let failures = 0;
    let lastCommit = 0;
    const queue = [...prepared];
    const sql0 = await metricSum(target, 'constat_sql_statements_total');
    const sends0 = await metricSum(target, 'constat_kafka_sends_total');
    const cpu0 = target.cpuSeconds().reduce((s, x) => s + x, 0);
    const ticks0 = machineTicks();
    const t0 = performance.now();
    const timed = opts.timed ?? ((fn) => fn());
    await timed(async () => {
      await Promise.all(
        Array.from({ length: opts.concurrency }, async () => {
          for (let p = queue.shift(); p; p = queue.shift()) {
            const started = performance.now();
            try {
              const constatId = await signPrepared(p);
              const now = performance.now();
              latencies.push(now - started);
              lastCommit = Math.max(lastCommit, now);
              constatIds.push(constatId);
            } catch (err) {
              failures++;
              if (failures <= 3)
                process.stderr.write(`finalization failed: ${(err as Error).message}\n`);
            }
            opts.progress.tick();
          }
        }),
      );
    });
    const cpu = target.cpuSeconds().reduce((s, x) => s + x, 0) - cpu0;
    const ticks1 = machineTicks();
    const sql1 = await metricSum(target, 'constat_sql_statements_total');
    let kafkaPerSecond: number | undefined;
    let kafkaSendsPerConstat: number | undefined;
    if (watch) {
      const w = watch;
      await waitFor(
        () => constatIds.every((id) => w.seenAt(id, CONSTATS_TOPIC) !== undefined),
        60_000,
        'not every constat reached Kafka',
        20,
      );
      const lastSeen = Math.max(...constatIds.map((id) => w.seenAt(id, CONSTATS_TOPIC)!));
      kafkaPerSecond = constatIds.length / ((lastSeen - t0) / 1000);
      kafkaSendsPerConstat =
        ((await metricSum(target, 'constat_kafka_sends_total')) - sends0) /
        Math.max(1, constatIds.length);
    }
    return {
      pairs: opts.pairs,
      concurrency: opts.concurrency,
      committedPerSecond: constatIds.length / ((lastCommit - t0) / 1000),
      kafkaPerSecond,
      commitLatencyMs: percentiles(latencies),
      failures,
      serverCpuMsPerConstat: (cpu * 1000) / Math.max(1, constatIds.length),
      machineBusyShare: (ticks1.busy - ticks0.busy) / Math.max(1, ticks1.total - ticks0.total),
      sqlStatementsPerConstat: (sql1 - sql0) / Math.max(1, constatIds.length),
      kafkaSendsPerConstat,
    };
  } finally {
    await watch?.close();
    for (const p of prepared) {
      p.a.close();
      p.b.close();
    }
  }
}
