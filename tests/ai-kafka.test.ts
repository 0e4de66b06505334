/**
 * The AI service on the run's real Kafka broker, as operators run it: `constat ai` as its own
 * process with its own database, beside a core server (PostgreSQL + Redis + Kafka). Simulated
 * phone pairs (the simulator's pair script, some filled as a fraud ring) finalize constats;
 * the service is killed (SIGKILL) part way and started again. Every constat then has exactly
 * one fraud score and one cost estimate (one event id each on `ai-results`, one row each on
 * core's timeline), shown in GraphQL, and the ring's scores stand apart. Poison messages on
 * `constats` go to `constats.ai.dlq` with the reason and the partition goes on; a function
 * that throws sends its constat there too, naming the function.
 *
 * Topics are shared by the whole run: everything read is filtered by this suite's ids.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import postgres from 'postgres';
import { pino } from 'pino';
import type { Kafka, Producer } from 'kafkajs';
import { createTestDatabase, type TestDatabase } from '../persistence/test-database.js';
import {
  freePort,
  gql,
  startTestServer,
  TEST_SECRET,
  token,
  type ServerProcess,
  type TestServer,
} from './support/server.js';
import { spawnServer } from '../scripts/sim/server.js';
import { produce, testKafka, testProducer, TopicReader, waitForTopics } from './support/kafka.js';
import { eventually } from './support/signing.js';
import { setUp } from './support/suite.js';
import { runSimulation } from '../scripts/simulate.js';
import { KafkaRunner } from '../ai/kafka-runner.js';
import { AiPipeline } from '../ai/pipeline.js';
import { AiMetrics } from '../ai/metrics.js';
import { createAiStore, migrateAiStore } from '../ai/store.js';
import { createKafkaClient } from '../integrations/kafka.js';
import { createEventValidator } from '../integrations/event-validator.js';
import { cloudEvent } from '../integrations/events.js';
import { finalizedData } from './fixtures/finalized.js';

interface Ctx {
  server: TestServer;
  /** Core's consumer group: other suites' servers read ai-results too, and refuse these ids. */
  coreGroup: string;
  coreSql: postgres.Sql;
  aiDb: TestDatabase;
  kafka: Kafka;
  reader: TopicReader;
  producer: Producer;
  ai?: ServerProcess;
  aiEnv: Record<string, string>;
  extra: Array<() => Promise<void>>;
}

const test = suite<Ctx>('AI service on Kafka', {
  extra: [],
} as unknown as Ctx);

async function startAi(ctx: Ctx): Promise<ServerProcess> {
  const port = String(await freePort());
  return spawnServer({
    args: ['bin/constat.js', 'ai'],
    env: { ...ctx.aiEnv, AI_PORT: port, PORT: port },
    ready: 'constat AI service on',
    name: 'constat ai',
  });
}

setUp(test, async (ctx) => {
  ctx.extra = [];
  ctx.kafka = testKafka();
  ctx.coreGroup = `constat-test-ai-${randomBytes(4).toString('hex')}`;
  ctx.server = await startTestServer({
    kafka: true,
    env: { KAFKA_CONSUMER_GROUP: ctx.coreGroup },
  });
  ctx.coreSql = postgres(ctx.server.databaseUrl!, { max: 2, onnotice: () => {} });
  ctx.aiDb = await createTestDatabase();
  ctx.aiEnv = {
    KAFKA_BROKERS: process.env.KAFKA_BROKERS!,
    KAFKA_TOPIC_PARTITIONS: '1',
    AI_DATABASE_URL: ctx.aiDb.url,
    AI_CONSUMER_GROUP: `constat-ai-test-${randomBytes(4).toString('hex')}`,
    // Video has its own consumer group and suite (ai-video.test.ts).
    AI_VIDEO: 'false',
    DATA_DIR: await mkdtemp(path.join(os.tmpdir(), 'constat-ai-')),
    LOG_LEVEL: 'info',
  };
  ctx.ai = await startAi(ctx);
  await waitForTopics(ctx.kafka, ['constats', 'ai-results', 'constats.ai.dlq', 'ai-results.dlq']);
  // ai-results.dlq: where core puts AI results it refuses (read for the diagnostics below).
  ctx.reader = new TopicReader(ctx.kafka, ['ai-results', 'constats.ai.dlq', 'ai-results.dlq']);
  await ctx.reader.start();
  ctx.producer = await testProducer(ctx.kafka);
});

test.after(async (ctx) => {
  for (const stop of ctx.extra ?? []) await stop().catch(() => {});
  await ctx.ai?.stop();
  await ctx.reader?.close();
  await ctx.producer?.disconnect().catch(() => {});
  await ctx.coreSql?.end({ timeout: 1 });
  await ctx.server?.stop();
  await ctx.aiDb?.drop();
});

test('/healthz and /readyz of the AI process', async (ctx) => {
  assert.is((await fetch(`${ctx.ai!.url}/healthz`)).status, 200);
  const ready = await eventually(async () => {
    const res = await fetch(`${ctx.ai!.url}/readyz`);
    return res.status === 200 ? ((await res.json()) as Record<string, unknown>) : undefined;
  }, 30_000);
  assert.equal(ready.checks, { database: 'ok', kafka: 'ok' });
  assert.is(ready.ruleSet, 'dz-fraud-rules-2026.12-1');
});

test('poison messages on constats go to constats.ai.dlq with the reason; the partition goes on', async (ctx) => {
  const keys = { json: `poison-${randomUUID()}`, type: `poison-${randomUUID()}` };
  await produce(ctx.producer, 'constats', { key: keys.json, value: '{"specversion": "1.0", oops' });
  const claim = cloudEvent(
    'dz.claim.opened.v1',
    randomUUID(),
    { claimNumber: 'X-1' },
    { source: 'saa' },
  );
  await produce(ctx.producer, 'constats', { key: keys.type, value: JSON.stringify(claim) });
  await ctx.reader.waitFor(
    () =>
      ctx.reader.on('constats.ai.dlq', (m) => Object.values(keys).includes(m.key!)).length === 2,
    30_000,
    'the poison messages never reached the dead-letter topic',
  );
  const [json] = ctx.reader.on('constats.ai.dlq', (m) => m.key === keys.json);
  assert.is(json!.headers['dlq-reason'], 'invalid-json');
  assert.is(json!.headers['dlq-topic'], 'constats');
  assert.is(json!.value!.toString(), '{"specversion": "1.0", oops');
  const [type] = ctx.reader.on('constats.ai.dlq', (m) => m.key === keys.type);
  assert.is(type!.headers['dlq-reason'], 'unexpected-type');
  // The next test's constats are processed after these on the same partition.
});

test('constats through the whole flow, the AI killed mid-stream: one score and one estimate each', async (ctx) => {
  const seed = 'ai-kafka-1';
  const simulation = runSimulation({
    pairs: 8,
    concurrency: 4,
    urls: [ctx.server.url],
    offline: false,
    tamper: false,
    seed,
    fraudRate: 0.5,
    // The killed consumer's partitions come back after its session times out (30 s).
    fraudScoreTimeoutMs: 120_000,
    updatesPerSecond: 200,
    secret: TEST_SECRET,
  });
  let summary: Awaited<typeof simulation>;
  let answeredBeforeKill = 0;
  try {
    // As soon as the AI has answered for one of this suite's constats, kill it.
    const countAnswered = async () =>
      (
        (await ctx.coreSql`
          select count(distinct constat_id)::int as n from constat_events where type like 'dz.ai.%'
        `) as unknown as [{ n: number }]
      )[0].n;
    await eventually(
      async () => ((await countAnswered()) > 0 ? true : undefined),
      240_000,
      'no AI result',
    ).catch(async (err: Error) => {
      // Say where the flow stopped: finalization, the outbox relay, the AI, or core's consumer.
      // Whether the AI answered for this suite's constats (then core's consumer missed them),
      // and what core's readiness says of its Kafka consumer.
      const ids = new Set(
        (await ctx.coreSql`select id from constats`.catch(() => [])).map((r) => String(r.id)),
      );
      const refused = ctx.reader
        .on(
          'ai-results.dlq',
          (m) => ids.has(m.key!) && m.headers['dlq-consumer-group'] === ctx.coreGroup,
        )
        .map((m) => String(m.headers['dlq-reason']));
      // How far core's group has committed on ai-results, against the topic's end.
      const admin = ctx.kafka.admin();
      const lag = await admin
        .connect()
        .then(async () => {
          const [committed] = await admin.fetchOffsets({
            groupId: ctx.coreGroup,
            topics: ['ai-results'],
          });
          const ends = await admin.fetchTopicOffsets('ai-results');
          return JSON.stringify({
            committed: committed?.partitions.map((p) => p.offset),
            end: ends.map((e) => e.high),
          });
        })
        .catch((e: Error) => e.message)
        .finally(() => admin.disconnect().catch(() => {}));
      const read = `${ctx.reader.on('ai-results', (m) => ids.has(m.key!)).length} of this suite's constats, ${ctx.reader.on('ai-results').length} in all; refused by this core (ai-results.dlq): ${refused.length}${refused.length ? ` (${[...new Set(refused)].join(', ')})` : ''}`;
      const readiness = await fetch(`${ctx.server.url}/readyz`)
        .then((r) => r.text())
        .catch((e: Error) => e.message);
      const [core] = (await ctx.coreSql`
        select (select count(*)::int from constats) as finalized,
               (select count(*)::int from outbox where topic = 'constats' and sent_at is not null) as sent,
               (select count(*)::int from outbox where sent_at is null) as pending,
               (select max(last_error) from outbox) as "lastError"
      `.catch((e: Error) => [{ queryFailed: e.message }])) as unknown as [Record<string, unknown>];
      throw new Error(
        `${err.message}; core: ${JSON.stringify(core)}; core /readyz: ${readiness}; core's group on ai-results: ${lag}; ai-results read: ${read}; AI output:\n${ctx.ai!.output().slice(-3000)}`,
      );
    });
    await ctx.ai!.kill('SIGKILL');
    answeredBeforeKill = await countAnswered();
    ctx.ai = await startAi(ctx);
    summary = await simulation;
  } finally {
    // A failure above must not leave the simulation running against a stopped server.
    await simulation.catch(() => {});
  }
  assert.is(summary.finalized, 8, JSON.stringify(summary.failures));
  assert.ok(answeredBeforeKill < 8, `all ${answeredBeforeKill} answered before the kill`);

  const constats = (await ctx.coreSql`select id from constats`).map((r) => r.id as string);
  assert.is(constats.length, 8);
  // Nothing missed, nothing twice: one row per type and constat on core's timeline.
  const rows = await eventually(
    async () => {
      const r = await ctx.coreSql<{ constat_id: string; type: string; n: number }[]>`
        select constat_id, type, count(*)::int as n from constat_events
        where type like 'dz.ai.%' group by constat_id, type
      `;
      return r.length === 16 ? r : undefined;
    },
    60_000,
    'not every constat has both results',
  );
  assert.ok(rows.every((r) => r.n === 1));
  // On the topic: one event id per constat and type (a redelivery repeats that id).
  const mine = ctx.reader.on('ai-results', (m) => constats.includes(m.key!));
  for (const id of constats) {
    for (const type of ['dz.ai.fraud_scored.v1', 'dz.ai.cost_estimated.v1']) {
      const ids = new Set(
        mine.filter((m) => m.json?.subject === id && m.json?.type === type).map((m) => m.json.id),
      );
      assert.is(ids.size, 1, `${type} of ${id}: ${ids.size} ids`);
    }
  }
  const fraud = mine.find((m) => m.json?.type === 'dz.ai.fraud_scored.v1')!;
  assert.is(fraud.json.source, 'constat-ai-fraud');
  assert.is(fraud.headers.ce_type, 'dz.ai.fraud_scored.v1');

  // The ring stands apart (the simulator read the scores as an insurer through GraphQL).
  const { suspicious, honest } = summary.fraud!;
  assert.ok(suspicious.pairs > 0 && honest.pairs > 0, JSON.stringify(summary.fraud));
  assert.is(suspicious.scored, suspicious.pairs);
  assert.is(honest.scored, honest.pairs);
  assert.ok(suspicious.meanScore > honest.meanScore + 0.3, JSON.stringify(summary.fraud));
  assert.is(suspicious.flagged, 1);

  // Core shows the structured findings to an insurer of the constat.
  const [{ insurer_a: uid }] = (await ctx.coreSql`
    select insurer_a from constats where id = ${constats[0]!}
  `) as unknown as [{ insurer_a: string }];
  const staff = await token('staff', 'desk', { roles: [`insurer:${uid}`] });
  const res = await gql(
    ctx.server.url,
    staff,
    `query C($id: ID!) { constat(id: $id) {
      fraudAssessment { score band signals { name reason } }
      costEstimates { vehicle amount lines { part operation amount } } } }`,
    { id: constats[0] },
  );
  assert.ok(res.data!.constat.fraudAssessment, JSON.stringify(res));
  assert.is(res.data!.constat.costEstimates.length, 2);
});

test('a function that throws sends its constat to the dead-letter topic, naming it, and goes on', async (ctx) => {
  const topic = `ai-test-input-${randomBytes(4).toString('hex')}`;
  const logger = pino({ level: 'silent' });
  const store = createAiStore(ctx.aiDb.sql);
  await migrateAiStore(ctx.aiDb.sql, logger);
  const metrics = new AiMetrics();
  const runner = new KafkaRunner({
    client: createKafkaClient(
      {
        brokers: process.env.KAFKA_BROKERS!.split(','),
        clientId: 'ai-test',
        partitions: 1,
        replicationFactor: 1,
      },
      logger,
    ),
    inputTopic: topic,
    groupId: `ai-test-${randomBytes(4).toString('hex')}`,
    pipeline: new AiPipeline({
      functions: [
        {
          name: 'exploding',
          service: 'constat-ai-exploding',
          eventType: 'dz.ai.ocr_verified.v1',
          run: async () => {
            throw new TypeError('cannot read the page');
          },
        },
      ],
      store,
      validator: createEventValidator(),
      metrics,
      logger,
    }),
    store,
    metrics,
    logger,
  });
  runner.start();
  ctx.extra.push(() => runner.close());
  await waitForTopics(ctx.kafka, [topic, `${topic}.ai.dlq`]);
  const reader = new TopicReader(ctx.kafka, [`${topic}.ai.dlq`]);
  await reader.start();
  ctx.extra.push(() => reader.close());
  const ids = [randomUUID(), randomUUID()];
  for (const id of ids) {
    const data = finalizedData({ constatId: id });
    await produce(ctx.producer, topic, {
      key: id,
      value: JSON.stringify(cloudEvent('dz.constat.finalized.v1', id, data)),
    });
  }
  await reader.waitFor(() => reader.on(`${topic}.ai.dlq`).length === 2, 30_000);
  for (const [i, m] of reader.on(`${topic}.ai.dlq`).entries()) {
    assert.is(m.key, ids[i]);
    assert.is(m.headers['dlq-reason'], 'function-failed');
    assert.is(m.headers['dlq-function'], 'exploding');
    assert.is(m.headers['dlq-error'], 'TypeError: cannot read the page');
  }
  assert.match(
    await metrics.registry.metrics(),
    /constat_ai_function_errors_total\{function="exploding"\} 2/,
  );
});

test.run();
