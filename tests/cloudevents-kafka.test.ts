/**
 * CloudEvents content modes on the run's real broker, with the official SDK (`cloudevents`) on
 * the insurer's side, as an insurer's developer would use it:
 *
 * - an answer in structured mode (`Kafka.structured`) and one in binary mode (`Kafka.binary`:
 *   attributes in ce_ headers, the data as the value) both reach the party's claim timeline in
 *   GraphQL;
 * - a binary message without a required ce_ header, or with an unknown ce_specversion, goes to
 *   `saa.dlq` with the reason;
 * - the same event id sent once in each mode is recorded once;
 * - core sends structured by default and binary to a company that asked for it
 *   (`companies.event_mode`), which the SDK reads back.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { randomUUID } from 'node:crypto';
import postgres from 'postgres';
import type { Kafka, Message, Producer } from 'kafkajs';
import { CloudEvent as SdkEvent, Kafka as CeKafka, type KafkaMessage } from 'cloudevents';
import { insurerAnswer, toKafka } from './support/cloudevents.js';
import { gql, startTestServer, type TestServer } from './support/server.js';
import { eventually, finalizeConstat, type Finalized } from './support/signing.js';
import { testKafka, testProducer, TopicReader, waitForTopics } from './support/kafka.js';
import { setUp } from './support/suite.js';

/** This suite's server's consumer group (other suites' servers read the same topics). */
const GROUP = `constat-test-cloudevents-${randomUUID().slice(0, 8)}`;

interface Ctx {
  server: TestServer;
  sql: postgres.Sql;
  kafka: Kafka;
  producer: Producer;
  reader: TopicReader;
  constat: Finalized;
}

const test = suite<Ctx>('CloudEvents content modes on Kafka', {} as Ctx);

setUp(test, async (ctx) => {
  ctx.server = await startTestServer({
    database: 'postgres',
    hub: 'redis',
    kafka: true,
    env: { COMPANY_REFRESH_MS: '200', KAFKA_CONSUMER_GROUP: GROUP },
  });
  ctx.sql = postgres(ctx.server.databaseUrl!, { max: 2, onnotice: () => {} });
  ctx.kafka = testKafka();
  await waitForTopics(ctx.kafka, ['saa', 'trust', 'saa.dlq']);
  ctx.producer = await testProducer(ctx.kafka);
  ctx.reader = new TopicReader(ctx.kafka, ['saa', 'trust', 'saa.dlq']);
  await ctx.reader.start();
  ctx.constat = await finalizeConstat(ctx.server); // saa and trust
});
test.after(async (ctx) => {
  await ctx.reader?.close();
  await ctx.producer?.disconnect().catch(() => {});
  await ctx.sql?.end({ timeout: 5 });
  await ctx.server?.stop();
});

const answer = (constatId: string, claimNumber: string, id?: string) =>
  insurerAnswer(constatId, { claimNumber, ...(id ? { id } : {}) });

const send = (ctx: Ctx, message: Message) =>
  ctx.producer.send({ topic: 'saa', acks: -1, messages: [message] });

async function timelineOf(ctx: Ctx): Promise<Array<{ id: string; data: string }>> {
  const res = await gql<{
    constat: { claims: Array<{ events: Array<{ id: string; data: string }> }> };
  }>(
    ctx.server.url,
    ctx.constat.tokenA,
    `query($id: ID!) { constat(id: $id) { claims { insurer { uid } events { id data } } } }`,
    { id: ctx.constat.constatId },
  );
  if (res.errors) throw new Error(JSON.stringify(res.errors));
  return res.data!.constat.claims.flatMap((c) => c.events);
}

test('an answer in structured mode and one in binary mode both reach the timeline', async (ctx) => {
  const { constatId } = ctx.constat;
  const structured = answer(constatId, 'SAA-STRUCTURED');
  const binary = answer(constatId, 'SAA-BINARY');
  await send(ctx, toKafka(CeKafka.structured(structured), constatId));
  const binaryMessage = toKafka(CeKafka.binary(binary), constatId);
  assert.ok(binaryMessage.headers!['ce_specversion'], 'binary: attributes in ce_ headers');
  assert.equal(JSON.parse(String(binaryMessage.value)), binary.data, 'binary: the data as value');
  await send(ctx, binaryMessage);
  for (const [mode, event] of [
    ['structured', structured],
    ['binary', binary],
  ] as const) {
    const found = await eventually(
      async () => (await timelineOf(ctx)).find((e) => e.id === event.id),
      // The first message waits for the server's consumer to join its group.
      60_000,
      `the ${mode} answer never reached the timeline`,
    );
    assert.equal(JSON.parse(found.data), event.data, `${mode}: its data`);
  }
});

test('binary: a missing required ce_ header or an unknown ce_specversion goes to the DLQ with the reason', async (ctx) => {
  const { constatId } = ctx.constat;
  const cases: Array<{
    what: string;
    edit: (h: Record<string, string>) => void;
    reason: string;
    error: RegExp;
  }> = [
    { what: 'no ce_id', edit: (h) => delete h.ce_id, reason: 'invalid-envelope', error: /ce_id/ },
    {
      what: 'no ce_specversion',
      edit: (h) => delete h.ce_specversion,
      reason: 'invalid-envelope',
      error: /ce_specversion/,
    },
    {
      what: 'ce_specversion 0.3',
      edit: (h) => (h.ce_specversion = '0.3'),
      reason: 'unsupported-specversion',
      error: /0\.3/,
    },
  ];
  for (const c of cases) {
    const event = answer(constatId, `SAA-${c.what}`);
    const message = toKafka(CeKafka.binary(event), constatId);
    const headers = message.headers as Record<string, string>;
    headers['x-case'] = c.what;
    c.edit(headers);
    await send(ctx, message);
    await ctx.reader.waitFor(
      () => ctx.reader.on('saa.dlq', (m) => m.headers['x-case'] === c.what).length > 0,
      30_000,
      `${c.what}: never reached saa.dlq`,
    );
    const [dead] = ctx.reader.on('saa.dlq', (m) => m.headers['x-case'] === c.what);
    assert.is(dead!.headers['dlq-reason'], c.reason, `${c.what}: dlq-reason`);
    assert.match(dead!.headers['dlq-error'] ?? '', c.error, `${c.what}: dlq-error`);
    assert.is(dead!.value?.toString('utf8'), message.value, `${c.what}: the value is kept`);
    assert.not.ok(
      (await timelineOf(ctx)).some((e) => e.id === event.id),
      `${c.what}: not on the timeline`,
    );
  }
});

test('the same event id sent once in each mode is recorded once', async (ctx) => {
  const { constatId } = ctx.constat;
  const id = randomUUID();
  const event = answer(constatId, 'SAA-TWICE', id);
  await send(ctx, toKafka(CeKafka.binary(event), constatId));
  await send(ctx, toKafka(CeKafka.structured(event), constatId));
  // A marker sent after both: once it is stored, both copies were handled.
  const marker = answer(constatId, 'SAA-MARKER');
  await send(ctx, toKafka(CeKafka.structured(marker), constatId));
  await eventually(
    async () => ((await timelineOf(ctx)).some((e) => e.id === marker.id) ? true : undefined),
    30_000,
    'the marker never reached the timeline',
  );
  const rows = await ctx.sql`select event_id from constat_events where event_id = ${id}`;
  assert.is(rows.length, 1, 'one row');
  assert.is((await timelineOf(ctx)).filter((e) => e.id === id).length, 1, 'one timeline event');
  assert.is(
    ctx.reader.on(
      'saa.dlq',
      (m) => m.headers['dlq-consumer-group'] === GROUP && m.headers.ce_id === id,
    ).length,
    0,
    'no dead letter',
  );
});

test('core sends structured by default, binary to a company that asked for it', async (ctx) => {
  await ctx.sql`update companies set event_mode = 'binary' where uid = 'trust'`;
  // The registry is re-read every COMPANY_REFRESH_MS (200 ms here).
  await new Promise((r) => setTimeout(r, 1_000));
  const f = await finalizeConstat(ctx.server); // vehicle A saa, vehicle B trust
  const of = (topic: string) =>
    ctx.reader.on(
      topic,
      (m) => m.key === f.constatId && m.headers.ce_type === 'dz.constat.finalized.v1',
    );
  await ctx.reader.waitFor(
    () => of('saa').length > 0 && of('trust').length > 0,
    30_000,
    'the finalized event did not reach both insurers',
  );
  const [structured] = of('saa');
  const [binary] = of('trust');
  assert.is(structured!.headers['content-type'], 'application/cloudevents+json');
  assert.is(structured!.json.data.constatId, f.constatId, 'structured: the envelope as value');
  assert.is(binary!.headers['content-type'], 'application/json');
  for (const name of ['ce_specversion', 'ce_id', 'ce_source', 'ce_type', 'ce_subject', 'ce_time']) {
    assert.ok(binary!.headers[name], `binary: header ${name}`);
  }
  assert.is(binary!.headers.ce_id, structured!.json.id, 'one event, one id, on both topics');
  assert.is(binary!.json.constatId, f.constatId, 'binary: the data alone as value');
  // The SDK reads both as the same event.
  const read = (m: typeof binary, value: unknown) => {
    const message: KafkaMessage<unknown> = {
      headers: m!.headers,
      key: f.constatId,
      value,
      body: value,
    };
    return CeKafka.toEvent(message) as SdkEvent<{ constatId: string }>;
  };
  const a = read(structured, structured!.value!.toString('utf8'));
  const b = read(binary, binary!.json);
  assert.is(a.id, b.id);
  assert.is(b.data?.constatId, f.constatId);
  assert.is(a.data?.constatId, f.constatId);
});

test.run();
