/**
 * The AI service under load: `constats` finalized events (content written by the simulator's
 * pair script, a fifth of them by a fraud ring) produced on a topic of the benchmark's own, the
 * AI service's Kafka runner on a fresh PostgreSQL database, results read back from
 * `ai-results`. Measured: results per second over the whole batch, and finalization (the
 * event's `finalizedAt`, stamped when it is produced) → both results read, p50/p99.
 * The phones are left out on purpose: their cost is measured by the finalization benchmark.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { Kafka, logLevel } from 'kafkajs';
import { pino } from 'pino';
import { createTestDatabase } from '../../persistence/test-database.js';
import { createKafkaClient } from '../../integrations/kafka.js';
import { AI_RESULTS_TOPIC, cloudEvent, eventHeaders } from '../../integrations/events.js';
import { createAiCore } from '../../ai/service.js';
import { KafkaRunner } from '../../ai/kafka-runner.js';
import { pairContent } from '../sim/content.js';
import { seededRandom } from '../sim/random.js';
import { percentiles, type Percentiles } from './stats.js';

export interface AiBenchResult {
  constats: number;
  results: number;
  seconds: number;
  resultsPerSecond: number;
  /** Finalized (produced) → both results read back (ms). */
  latencyMs: Percentiles;
  /** Constats sent to the dead-letter topic. */
  deadLetters: number;
}

const INSURERS = ['saa', 'caar', 'trust', 'cash', 'gam', 'axa-dz'];

export async function measureAi(opts: {
  kafkaBrokers: string;
  constats: number;
  progress?: { tick(n?: number): void };
}): Promise<AiBenchResult> {
  const logger = pino({ level: 'warn' }, pino.destination(2));
  const brokers = opts.kafkaBrokers.split(',');
  const topic = `bench-ai-constats-${randomBytes(4).toString('hex')}`;
  const db = await createTestDatabase();
  const client = createKafkaClient(
    { brokers, clientId: 'bench-ai', partitions: 3, replicationFactor: 1 },
    logger,
  );
  const kafka = new Kafka({ clientId: 'bench-ai-io', brokers, logLevel: logLevel.NOTHING });
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  const reader = kafka.consumer({ groupId: `bench-ai-reader-${randomBytes(4).toString('hex')}` });
  let runner: KafkaRunner | undefined;
  const core = await createAiCore(db.sql, { retentionDays: 365 }, logger);
  try {
    await client.ensureTopics([topic, AI_RESULTS_TOPIC, `${topic}.ai.dlq`]);
    // The events first, so producing does not compete with the service for the CPU.
    const rng = seededRandom('bench-ai');
    const events = [];
    for (let i = 0; i < opts.constats; i++) {
      const r = rng.fork(i);
      const { content, insurers } = await pairContent(r, INSURERS, { suspicious: r.chance(0.2) });
      const constatId = randomUUID();
      events.push({
        constatId,
        content,
        parties: {
          A: { userId: `bench-a-${i}`, insurer: insurers.A },
          B: { userId: `bench-b-${i}`, insurer: insurers.B },
        },
      });
    }
    const pending = new Map<string, { sentAt: number; seen: number }>();
    const latencies: number[] = [];
    let results = 0;
    let lastAt = 0;
    await reader.connect();
    await reader.subscribe({ topics: [AI_RESULTS_TOPIC], fromBeginning: false });
    const joined = new Promise<void>((resolve) =>
      reader.on(reader.events.GROUP_JOIN, () => resolve()),
    );
    await reader.run({
      eachMessage: async ({ message }) => {
        const p = pending.get(message.key?.toString() ?? '');
        if (!p) return;
        results++;
        if (++p.seen === 2) {
          lastAt = performance.now();
          latencies.push(Date.now() - p.sentAt);
          opts.progress?.tick();
        }
      },
    });
    await joined;
    runner = new KafkaRunner({
      client,
      inputTopic: topic,
      groupId: `bench-ai-${randomBytes(4).toString('hex')}`,
      pipeline: core.pipeline,
      store: core.store,
      metrics: core.metrics,
      logger,
    });
    runner.start();
    await producer.connect();
    const started = performance.now();
    for (let i = 0; i < events.length; i += 50) {
      const batch = events.slice(i, i + 50);
      const now = Date.now();
      await producer.send({
        topic,
        acks: -1,
        messages: batch.map((e) => {
          pending.set(e.constatId, { sentAt: now, seen: 0 });
          const finalizedAt = new Date(now).toISOString();
          const event = cloudEvent('dz.constat.finalized.v1', e.constatId, {
            constatId: e.constatId,
            sessionId: randomUUID(),
            formVersion: 'dz',
            contentHash: '0'.repeat(64),
            content: e.content,
            signatures: (['A', 'B'] as const).map((role) => ({
              role,
              hash: '0'.repeat(64),
              signature: 'bench',
              deviceId: `${e.parties[role].userId}-phone`,
              userId: e.parties[role].userId,
              signedAt: finalizedAt,
            })),
            parties: e.parties,
            finalizedAt,
          });
          return { key: e.constatId, value: JSON.stringify(event), headers: eventHeaders(event) };
        }),
      });
    }
    const deadline = Date.now() + 10 * 60_000;
    while (latencies.length < events.length && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
    }
    const seconds = ((lastAt || performance.now()) - started) / 1000;
    const deadLetters = (await core.metrics.deadLetters.get()).values.reduce(
      (n, v) => n + v.value,
      0,
    );
    return {
      constats: events.length,
      results,
      seconds,
      resultsPerSecond: results / seconds,
      latencyMs: percentiles(latencies),
      deadLetters,
    };
  } finally {
    await runner?.close();
    await reader.disconnect().catch(() => {});
    await producer.disconnect().catch(() => {});
    await core.close();
    await db.drop();
  }
}
