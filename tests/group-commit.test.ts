/**
 * Group commit across two instances: sixteen pairs, each with A's device on one `constat serve`
 * process and B's on the other, sign at once (every B signature in one burst, half of them on
 * each instance). Finalizations that arrive while a commit is in flight share the next
 * transaction; whatever the grouping, every constat must be committed once, with one outbox
 * row per topic, told to both devices with the same id, and read once from each topic on
 * Kafka. The instances' `constat_finalization_group_size` shows that groups did form.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import type { Kafka } from 'kafkajs';
import type { ServerProcess } from './support/server.js';
import { waitFor, type Device } from './support/device.js';
import { startCluster, type Cluster } from './support/cluster.js';
import { eventually, prepareSigning, signConstat, type ReadyToSign } from './support/signing.js';
import { testKafka, TopicReader, waitForTopics } from './support/kafka.js';
import { setUp } from './support/suite.js';

const PAIRS = 16;
const TOPICS = ['saa', 'trust', 'constats'];
// A rendered report adds its own event (same key) to the insurers' topics: this suite counts
// the finalized event only, so it reads that type, and no instance renders.
const FINALIZED = 'dz.constat.finalized.v1';
const NO_RENDERER = '/nonexistent/chromium';

interface Ctx {
  cluster: Cluster;
  servers: ServerProcess[];
  devices: Device[];
  kafka: Kafka;
  readers: TopicReader[];
}

const test = suite<Ctx>('group commit (2 instances, Kafka)', {
  servers: [],
  devices: [],
  readers: [],
} as unknown as Ctx);

setUp(test, async (ctx) => {
  ctx.kafka = testKafka();
  ctx.cluster = await startCluster('group', {
    env: {
      KAFKA_BROKERS: process.env.KAFKA_BROKERS!,
      KAFKA_CONSUMER_GROUP: `constat-group-${randomBytes(4).toString('hex')}`,
      OUTBOX_POLL_MS: '50',
      CHROMIUM_PATH: NO_RENDERER,
    },
  });
  ctx.servers = await ctx.cluster.start(2);
  await waitForTopics(ctx.kafka, TOPICS);
});
test.after(async (ctx) => {
  for (const d of ctx.devices.splice(0)) d.destroy();
  for (const r of ctx.readers.splice(0)) await r.close();
  await ctx.cluster?.stop();
});

type Prepared = ReadyToSign;

const prepare = (ctx: Ctx, onA: ServerProcess, onB: ServerProcess): Promise<Prepared> =>
  prepareSigning(ctx.servers, ctx.devices, onA, onB);

/** The finalized events of one constat read from a topic. */
function finalizedOn(reader: TopicReader, topic: string, constatId: string) {
  return reader.on(topic, (m) => m.key === constatId && m.headers.ce_type === FINALIZED);
}

/** The sum of one unlabelled series over both instances' /metrics. */
async function metricSum(ctx: Ctx, name: string): Promise<number> {
  let sum = 0;
  for (const server of ctx.servers) {
    const text = await (await fetch(`${server.url}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith(`${name} `));
    assert.ok(line, `${name} is exported`);
    sum += Number(line!.split(' ')[1]);
  }
  return sum;
}

test('pairs signing at once on two instances: each constat committed and published once', async (ctx) => {
  const [one, two] = ctx.servers as [ServerProcess, ServerProcess];
  const pairs = await Promise.all(
    Array.from({ length: PAIRS }, (_, i) =>
      i % 2 === 0 ? prepare(ctx, one, two) : prepare(ctx, two, one),
    ),
  );
  const reader = new TopicReader(ctx.kafka, TOPICS);
  ctx.readers.push(reader);
  await reader.start(60_000);
  const groups0 = await metricSum(ctx, 'constat_finalization_group_size_count');

  const first = await Promise.all(
    pairs.map((p) => signConstat(p.on.A.url, p.tokens.A, p.sessionId, p.hash, p.signature('A'))),
  );
  for (const r of first) assert.not.ok(r.errors, JSON.stringify(r.errors));
  // Every second signature in one burst: each instance finalizes the half B signed on it.
  const second = await Promise.all(
    pairs.map((p) => signConstat(p.on.B.url, p.tokens.B, p.sessionId, p.hash, p.signature('B'))),
  );
  for (const r of second) assert.not.ok(r.errors, JSON.stringify(r.errors));

  const sql = ctx.cluster.db!.sql;
  const constatIds: string[] = [];
  for (const p of pairs) {
    const constatId = await eventually(
      () => {
        const event = p.devices.A.events.find((e) => e.type === 'finalized');
        return event?.type === 'finalized' ? event.constatId : undefined;
      },
      20_000,
      `session ${p.sessionId}: device A was not told the constat is finalized`,
    );
    await waitFor(
      () => p.devices.B.events.some((e) => e.type === 'finalized'),
      20_000,
      `session ${p.sessionId}: device B was not told`,
    );
    for (const role of ['A', 'B'] as const) {
      const told = p.devices[role].events.filter((e) => e.type === 'finalized');
      assert.is(told.length, 1, `device ${role} told once`);
      assert.is((told[0] as { constatId: string }).constatId, constatId, `device ${role}: same id`);
    }
    const rows = await sql`select id from constats where session_id = ${p.sessionId}`;
    assert.equal(
      rows.map((r) => r.id),
      [constatId],
      `session ${p.sessionId}: one constat`,
    );
    const outbox = await sql<{ topic: string; n: number }[]>`
      select topic, count(*)::int as n from outbox
      where message_key = ${constatId} and payload ->> 'type' = ${FINALIZED}
      group by topic order by topic
    `;
    assert.equal(
      outbox.map((r) => [r.topic, r.n]),
      [
        ['constats', 1],
        ['saa', 1],
        ['trust', 1],
      ],
      `constat ${constatId}: one outbox row per topic`,
    );
    const [session] = await sql<{ record: { status: string; constatId: string } }[]>`
      select record from sessions where id = ${p.sessionId}
    `;
    assert.is(session!.record.status, 'finalized');
    assert.is(session!.record.constatId, constatId);
    constatIds.push(constatId);
  }

  await reader.waitFor(
    () => TOPICS.every((t) => constatIds.every((id) => finalizedOn(reader, t, id).length > 0)),
    60_000,
  );
  // Anything sent twice would arrive right behind the first copy: wait a little, then count.
  await new Promise((r) => setTimeout(r, 1_000));
  for (const topic of TOPICS) {
    for (const id of constatIds) {
      const got = finalizedOn(reader, topic, id);
      assert.is(
        got.length,
        1,
        `${id} read once from ${topic} (at ${got.map((m) => `${m.partition}:${m.offset}`).join(', ')})`,
      );
      assert.is(got[0]!.json.data.constatId, id);
    }
  }
  // A row is marked once its send is acknowledged: the reader may see the message first.
  await eventually(
    async () => {
      const unsent = await sql`
        select id from outbox
        where sent_at is null and message_key in ${sql(constatIds)} and payload ->> 'type' = ${FINALIZED}
      `;
      return unsent.length === 0 ? true : undefined;
    },
    10_000,
    'some outbox rows were never marked sent',
  );

  // Grouping happened: fewer finalization transactions than finalizations.
  const transactions = (await metricSum(ctx, 'constat_finalization_group_size_count')) - groups0;
  const finalized = await metricSum(ctx, 'constat_finalization_group_size_sum');
  console.log(`${PAIRS} constats in ${transactions} finalization transactions`);
  assert.ok(finalized >= PAIRS, `every finalization counted (${finalized})`);
  assert.ok(
    transactions < finalized,
    `groups formed: ${transactions} transactions for ${finalized}`,
  );
  for (const server of ctx.servers) {
    assert.not.match(server.output(), /unexpected error in a GraphQL operation/);
  }
});

test.run();
