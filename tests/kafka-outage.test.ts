/**
 * Kafka down at finalization time: a broker of this suite's own (so it can be stopped), a real
 * `constat serve` process on PostgreSQL + Redis. While the broker is down, finalization still
 * commits the constat and its outbox rows, the server keeps answering, and the backlog shows
 * on /metrics; once the broker is back, every event is published once per topic and the
 * outbox drains.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import type { Kafka } from 'kafkajs';
import { startBroker, type Broker } from '../scripts/kafka/broker.js';
import { createTestDatabase, type TestDatabase } from '../persistence/test-database.js';
import {
  deleteRedisKeys,
  freePort,
  gql,
  openPair,
  spawnServer,
  token,
  REDIS_URL,
  type ServerProcess,
} from './support/server.js';
import { completeVehicle } from './fixtures/constat.js';
import { eventually, finalizeConstat, type Finalized } from './support/signing.js';
import {
  claimMessage,
  produce,
  testKafka,
  testProducer,
  TopicReader,
  waitForTopics,
} from './support/kafka.js';
import { setUp } from './support/suite.js';

const TOPICS = ['saa', 'trust', 'constats'];

interface Ctx {
  broker: Broker;
  db: TestDatabase;
  sql: postgres.Sql;
  server: ServerProcess;
  /** A second instance that was never able to reach Kafka, and when it started. */
  unreachable: ServerProcess;
  unreachableSince: number;
  redisPrefix: string;
  kafka: Kafka;
  readers: TopicReader[];
}

interface OutboxRow {
  message_key: string;
  topic: string;
  sent_at: Date | null;
  attempts: number;
  last_error: string | null;
}

async function outboxOf(ctx: Ctx, constatIds: string[]): Promise<OutboxRow[]> {
  return ctx.sql<OutboxRow[]>`
    select message_key, topic, sent_at, attempts, last_error from outbox
    where message_key in ${ctx.sql(constatIds)}
    order by message_key, topic
  `;
}

async function metric(ctx: Ctx, name: string): Promise<number> {
  const res = await fetch(`${ctx.server.url}/metrics`);
  assert.is(res.status, 200, '/metrics answers');
  const text = await res.text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  assert.ok(line, `${name} is exported`);
  return Number(line!.split(' ')[1]);
}

// Both servers share the database, so either may render a report: a rendered PDF adds
// document_ready rows to the backlog whenever the browser gets to it. This suite is about the
// finalized event, so neither server renders.
const NO_RENDERER = '/nonexistent/chromium';

const test = suite<Ctx>('kafka outage', { readers: [] } as unknown as Ctx);

setUp(test, async (ctx) => {
  ctx.broker = await startBroker();
  ctx.db = await createTestDatabase();
  ctx.sql = postgres(ctx.db.url, { max: 3, onnotice: () => {} });
  ctx.redisPrefix = `constat-test:${randomBytes(6).toString('hex')}:`;
  ctx.server = await spawnServer({
    DATABASE_URL: ctx.db.url,
    REDIS_URL,
    REDIS_KEY_PREFIX: ctx.redisPrefix,
    KAFKA_BROKERS: ctx.broker.brokers,
    KAFKA_CONSUMER_GROUP: `constat-outage-${randomBytes(4).toString('hex')}`,
    KAFKA_TOPIC_PARTITIONS: '1',
    OUTBOX_POLL_MS: '50',
    DRAFT_SAVE_DEBOUNCE_MS: '200',
    CHROMIUM_PATH: NO_RENDERER,
    LOG_LEVEL: 'warn',
  });
  ctx.kafka = testKafka(ctx.broker.brokers);
  await waitForTopics(ctx.kafka, TOPICS);
  // Started now so that it has been retrying for a while when the last test stops it.
  ctx.unreachableSince = performance.now();
  ctx.unreachable = await spawnServer({
    DATABASE_URL: ctx.db.url,
    REDIS_URL,
    REDIS_KEY_PREFIX: ctx.redisPrefix,
    KAFKA_BROKERS: `127.0.0.1:${await freePort()}`, // nothing listens there
    KAFKA_CONSUMER_GROUP: `constat-outage-${randomBytes(4).toString('hex')}`,
    CHROMIUM_PATH: NO_RENDERER,
    LOG_LEVEL: 'warn',
  });
});
test.after(async (ctx) => {
  for (const r of ctx.readers.splice(0)) await r.close();
  await ctx.server?.kill();
  await ctx.unreachable?.kill('SIGKILL');
  await ctx.sql?.end({ timeout: 5 });
  await ctx.db?.drop();
  if (ctx.redisPrefix) await deleteRedisKeys(ctx.redisPrefix);
  await ctx.broker?.stop({ removeData: true });
});

test('Kafka down: finalization commits, the server serves on; Kafka back: every event once per topic, outbox drained', async (ctx) => {
  // Baseline with Kafka up: published and marked sent (must not be published again later).
  const before = await finalizeConstat(ctx.server);
  await eventually(
    async () =>
      (await outboxOf(ctx, [before.constatId])).every((r) => r.sent_at) ? true : undefined,
    30_000,
    'the first constat was never published',
  );

  await ctx.broker.stop({ removeData: false });

  // Two constats finalized while Kafka is down; the second with one insurer for both parties.
  const down: Finalized[] = [
    await finalizeConstat(ctx.server),
    await finalizeConstat(ctx.server, {
      vehicleB: completeVehicle('B', { insurer: { company: 'saa' } }),
    }),
  ];
  const downIds = down.map((f) => f.constatId);
  const constats = await ctx.sql<{ id: string }[]>`
    select id from constats where id in ${ctx.sql(downIds)}
  `;
  assert.is(constats.length, 2, 'both constats are committed while Kafka is down');
  const pending = await outboxOf(ctx, downIds);
  assert.equal(
    pending.map((r) => `${downIds.indexOf(r.message_key) + 1}:${r.topic}`).sort(),
    ['1:constats', '1:saa', '1:trust', '2:constats', '2:saa'],
    'one outbox row per topic',
  );
  assert.ok(
    pending.every((r) => r.sent_at === null),
    'nothing is marked sent while Kafka is down',
  );
  assert.is(await metric(ctx, 'constat_outbox_backlog'), 5, 'backlog on /metrics');

  // The relay tries, fails, and keeps the rows; the process keeps serving meanwhile.
  await eventually(
    async () =>
      (await outboxOf(ctx, downIds)).some((r) => r.attempts > 0 && r.last_error) ? true : undefined,
    30_000,
    'the relay never tried to publish',
  );
  assert.is(ctx.server.child.exitCode, null, 'the server process is still running');
  assert.is((await fetch(`${ctx.server.url}/healthz`)).status, 200, '/healthz');
  assert.is(
    (await fetch(`${ctx.server.url}/readyz`)).status,
    200,
    '/readyz: Kafka is not needed to serve',
  );
  const me = await gql(
    ctx.server.url,
    await token('outage-user', 'outage-device'),
    '{ insurers { uid } }',
  );
  assert.not.ok(me.errors, JSON.stringify(me.errors));
  assert.ok(
    (me.data!.insurers as Array<{ uid: string }>).some((i) => i.uid === 'saa'),
    'GraphQL answers',
  );
  const pair = await openPair(ctx.server.url);
  assert.ok(pair.sessionId, 'a new session can be opened and joined');
  assert.ok((await metric(ctx, 'constat_outbox_backlog')) > 0, 'backlog still > 0');

  await ctx.broker.restart();

  const reader = new TopicReader(ctx.kafka, TOPICS);
  ctx.readers.push(reader);
  await reader.start(60_000);
  const all = [before.constatId, ...downIds];
  const expected: Record<string, string[]> = {
    saa: all,
    trust: [before.constatId, downIds[0]!],
    constats: all,
  };
  await reader.waitFor(
    () =>
      TOPICS.every((t) => expected[t]!.every((id) => reader.on(t, (m) => m.key === id).length > 0)),
    90_000,
    'not every event arrived after the broker came back',
  );
  await eventually(
    async () => ((await outboxOf(ctx, all)).every((r) => r.sent_at) ? true : undefined),
    30_000,
    'outbox rows were not all marked sent',
  );
  await eventually(
    async () => ((await metric(ctx, 'constat_outbox_backlog')) === 0 ? true : undefined),
    10_000,
    'constat_outbox_backlog did not go back to 0',
  );
  await new Promise((r) => setTimeout(r, 1_000)); // a late duplicate would show by now

  for (const topic of TOPICS) {
    const every = reader.on(topic);
    const ids = every.map((m) => m.json?.id as string);
    const twice = ids.filter((id, i) => ids.indexOf(id) !== i);
    assert.equal(twice, [], `${topic}: no event id twice`);
    assert.equal(
      every.map((m) => m.key).sort(),
      [...expected[topic]!].sort(),
      `${topic}: exactly the expected constats`,
    );
    for (const m of every) {
      assert.is(m.headers.ce_type, 'dz.constat.finalized.v1');
      assert.is(m.json.subject, m.key);
    }
  }
  // One event per constat, the same id on each of its topics.
  for (const id of all) {
    const eventIds = new Set(
      TOPICS.flatMap((t) =>
        reader
          .on(t, (m) => m.key === id && m.headers.ce_type === 'dz.constat.finalized.v1')
          .map((m) => m.json.id as string),
      ),
    );
    assert.is(eventIds.size, 1, `constat ${id}: one finalized event id across topics`);
  }
  assert.is(ctx.server.child.exitCode, null, 'the server is still running');

  // Core's consumer came back too: an insurer's claim event produced now reaches the timeline.
  const producer = await testProducer(ctx.kafka);
  try {
    const claim = claimMessage(before.constatId, 'dz.claim.opened.v1', {
      claimNumber: 'SAA-OUTAGE-1',
    });
    await produce(producer, 'saa', claim.message);
    await eventually(
      async () =>
        (await ctx.sql`select 1 from constat_events where event_id = ${claim.id}`).length
          ? true
          : undefined,
      60_000,
    ).catch(async (err: Error) => {
      const ready = await fetch(`${ctx.server.url}/readyz`)
        .then((r) => r.text())
        .catch((e: Error) => e.message);
      throw new Error(
        `${err.message}: core never stored the claim event produced after the outage; /readyz: ${ready}\n${ctx.server.output().slice(-2000)}`,
      );
    });
    const ready = (await (await fetch(`${ctx.server.url}/readyz`)).json()) as {
      features: Record<string, string>;
    };
    assert.is(ready.features.kafka, 'consuming', '/readyz shows the consumer');
  } finally {
    await producer.disconnect();
  }
});

test('a server that never reached Kafka still answers, and stops promptly and cleanly on SIGTERM', async (ctx) => {
  const server = ctx.unreachable;
  assert.is((await fetch(`${server.url}/healthz`)).status, 200);
  const pair = await openPair(server.url);
  assert.ok(pair.sessionId, 'sessions open without Kafka');
  const ready = await fetch(`${server.url}/readyz`);
  assert.is(ready.status, 200);
  assert.is(
    ((await ready.json()) as { features: Record<string, string> }).features.kafka,
    'creating topics',
    '/readyz says what the Kafka side waits for',
  );
  // Let the start-up retries back off to their longest waits (1, 2, 4, 8, 16, 30 s).
  const elapsed = performance.now() - ctx.unreachableSince;
  if (elapsed < 45_000) await new Promise((r) => setTimeout(r, 45_000 - elapsed));
  const started = performance.now();
  await server.kill('SIGTERM');
  const took = performance.now() - started;
  assert.is(
    server.child.exitCode,
    0,
    `exit code ${server.child.exitCode} after ${(took / 1000).toFixed(1)} s (1 = forced exit after 15 s):\n${server.output().slice(-800)}`,
  );
  assert.ok(took < 5_000, `SIGTERM to exit took ${(took / 1000).toFixed(1)} s`);
});

test.run();
