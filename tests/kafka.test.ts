/**
 * The Kafka contract end to end, on the run's real broker: a server on PostgreSQL + Redis with
 * Kafka on, two stock y-websocket devices finalizing constats, and kafkajs in the test reading
 * and writing the topics the way an insurer or an AI service would (consumer groups of the
 * test's own). Topics are shared by the whole run, so everything read is filtered by this
 * suite's constat ids, keys or event ids.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash, randomUUID } from 'node:crypto';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import postgres from 'postgres';
import { Ajv } from 'ajv';
import * as addFormatsModule from 'ajv-formats';
import { gql, startTestServer, token } from './support/server.js';
import { waitFor } from './support/device.js';
import { completeVehicle } from './fixtures/constat.js';
import {
  eventually,
  signingMessage,
  sleep,
  verifySignature,
  finalizeConstat,
  type Finalized,
} from './support/signing.js';
import {
  envelope,
  message,
  median,
  produce,
  testKafka,
  testProducer,
  TopicReader,
  waitForTopics,
  type Envelope,
  type KafkaSuiteContext,
  type Received,
} from './support/kafka.js';
import { createEventValidator } from '../integrations/event-validator.js';
import { hashContent } from '../constat/content-hash.js';
import type { JsonValue } from '../constat/canonical-json.js';
import { setUp } from './support/suite.js';

// ajv-formats is CommonJS; its function is the module's default export.
const addFormats = addFormatsModule.default as unknown as (ajv: Ajv) => Ajv;

const FINALIZED = 'dz.constat.finalized.v1';
const INSURER_TOPICS = ['saa', 'trust'];
/**
 * This suite's server's consumer group: other suites' servers read the same insurer topics on
 * the same broker, and dead-letter what they cannot use too; only this group's count here.
 */
const GROUP = `constat-test-kafka-${randomUUID().slice(0, 8)}`;
const mine = (m: { headers: Record<string, string | undefined> }) =>
  m.headers['dlq-consumer-group'] === GROUP;

const READ_TOPICS = ['saa', 'trust', 'constats', 'saa.dlq', 'trust.dlq', 'ai-results.dlq'];
const SERVER_TOPICS = [
  'saa',
  'trust',
  'constats',
  'ai-results',
  'saa.dlq',
  'trust.dlq',
  'ai-results.dlq',
];
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

interface Ctx extends KafkaSuiteContext {
  children: ChildProcess[];
  /** Ids of every dz.constat.finalized.v1 this suite saw (for the skip test). */
  finalizedEventIds: Set<string>;
  /** A finalized constat (saa / trust) other tests attach events to. */
  constat?: Finalized;
}

interface TimelineRow {
  event_id: string;
  constat_id: string;
  topic: string;
  source: string;
  type: string;
  time: Date;
  data: any;
}

async function timelineRows(ctx: Ctx, eventId: string): Promise<TimelineRow[]> {
  return ctx.sql<TimelineRow[]>`select * from constat_events where event_id = ${eventId}`;
}

function storedEvent(ctx: Ctx, eventId: string, timeoutMs = 30_000): Promise<TimelineRow> {
  return eventually(
    async () => (await timelineRows(ctx, eventId))[0],
    timeoutMs,
    `event ${eventId} never reached the timeline`,
  );
}

/** The finalized messages of one constat, per topic. */
function finalizedOf(ctx: Ctx, constatId: string, topic: string): Received[] {
  return ctx.reader.on(topic, (m) => m.key === constatId && m.headers.ce_type === FINALIZED);
}

async function waitFinalized(ctx: Ctx, constatId: string, topics: string[]): Promise<void> {
  await ctx.reader.waitFor(
    () => topics.every((t) => finalizedOf(ctx, constatId, t).length > 0),
    30_000,
    `constat ${constatId} did not reach ${topics.join(', ')}`,
  );
  for (const t of topics) {
    for (const m of finalizedOf(ctx, constatId, t)) ctx.finalizedEventIds.add(m.json?.id);
  }
}

const test = suite<Ctx>('kafka', {
  children: [],
  finalizedEventIds: new Set(),
} as unknown as Ctx);

setUp(test, async (ctx) => {
  ctx.server = await startTestServer({
    database: 'postgres',
    hub: 'redis',
    kafka: true,
    env: { COMPANY_REFRESH_MS: '500', AI_SERVICES: 'ai-fraud,ai-ocr', KAFKA_CONSUMER_GROUP: GROUP },
  });
  ctx.sql = postgres(ctx.server.databaseUrl!, { max: 3, onnotice: () => {} });
  ctx.kafka = testKafka();
  // The server creates its topics in the background once it reaches the broker.
  await waitForTopics(ctx.kafka, SERVER_TOPICS);
  ctx.reader = new TopicReader(ctx.kafka, READ_TOPICS);
  await ctx.reader.start();
  ctx.producer = await testProducer(ctx.kafka);
});
test.after(async (ctx) => {
  for (const child of ctx.children.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await exited;
    }
  }
  await ctx.reader?.close();
  await ctx.producer?.disconnect().catch(() => {});
  await ctx.sql?.end({ timeout: 5 });
  await ctx.server?.stop();
});

/** A finalized saa/trust constat shared by the timeline tests (made once). */
async function sharedConstat(ctx: Ctx): Promise<Finalized> {
  ctx.constat ??= await finalizeConstat(ctx.server);
  return ctx.constat;
}

test('a finalized constat arrives once on each insurer topic and on constats: key, ce_type, valid envelope, one event id', async (ctx) => {
  const f = await sharedConstat(ctx);
  const topics = [...INSURER_TOPICS, 'constats'];
  await waitFinalized(ctx, f.constatId, topics);
  await sleep(1_500); // a duplicate published by the relay would have arrived by now

  const validator = createEventValidator();
  const ids = new Set<string>();
  for (const topic of topics) {
    const received = finalizedOf(ctx, f.constatId, topic);
    assert.is(received.length, 1, `exactly one message on ${topic}, got ${received.length}`);
    const m = received[0]!;
    assert.is(m.key, f.constatId, `${topic}: key = constat id`);
    assert.is(m.headers.ce_type, FINALIZED, `${topic}: header ce_type`);

    const event = validator.parse(m.value) as unknown as Envelope;
    // And by hand, field by field, from the contract.
    assert.is(event.specversion, '1.0');
    assert.ok(typeof event.id === 'string' && event.id.length > 0, 'id');
    assert.is(event.source, 'constat-core');
    assert.is(event.type, FINALIZED);
    assert.is(event.subject, f.constatId);
    assert.match(event.time, ISO);
    assert.is(event.datacontenttype, 'application/json');
    assert.is(event.dataschema, `urn:constat:schema:${FINALIZED}`);
    assert.is(m.headers.ce_id, event.id, `${topic}: header ce_id`);
    assert.is(m.headers.ce_source, 'constat-core', `${topic}: header ce_source`);
    ids.add(event.id);

    const d = event.data;
    assert.is(d.constatId, f.constatId);
    assert.is(d.sessionId, f.sessionId);
    assert.is(d.formVersion, 'dz');
    assert.is(d.contentHash, f.hash);
    assert.is(hashContent(d.content as JsonValue), f.hash, 'data.content is the signed content');
    assert.equal(Object.keys(d.content).sort(), ['accident', 'sketch', 'vehicleA', 'vehicleB']);
    assert.equal(
      d.signatures.map((s: any) => s.role),
      ['A', 'B'],
    );
    for (const s of d.signatures) {
      const r = String(s.role).toLowerCase();
      assert.is(s.hash, f.hash);
      assert.is(Buffer.from(s.signature, 'base64').byteLength, 64, 'Ed25519 signature, base64');
      assert.is(s.deviceId, `device-${r}-${f.tag}`);
      assert.is(s.userId, `user-${r}-${f.tag}`);
      assert.match(s.signedAt, ISO);
    }
    assert.equal(d.parties, {
      A: { userId: `user-a-${f.tag}`, insurer: 'saa' },
      B: { userId: `user-b-${f.tag}`, insurer: 'trust' },
    });
    assert.match(d.finalizedAt, ISO);
  }
  assert.is(ids.size, 1, `the same event id on all three topics: ${[...ids]}`);

  const outbox = await ctx.sql<{ topic: string; sent: boolean }[]>`
    select topic, sent_at is not null as sent from outbox where message_key = ${f.constatId}
      and payload->>'type' = 'dz.constat.finalized.v1'
    order by topic
  `;
  assert.equal(
    outbox.map((r) => ({ topic: r.topic, sent: r.sent })),
    [
      { topic: 'constats', sent: true },
      { topic: 'saa', sent: true },
      { topic: 'trust', sent: true },
    ],
    'outbox rows marked sent',
  );
});

test('the signed report is announced on both insurer topics with dz.constat.document_ready.v1, after the finalized event', async (ctx) => {
  const f = await sharedConstat(ctx);
  const readyOf = (topic: string) =>
    ctx.reader.on(
      topic,
      (m) => m.key === f.constatId && m.headers.ce_type === 'dz.constat.document_ready.v1',
    );
  await ctx.reader.waitFor(
    () => INSURER_TOPICS.every((t) => readyOf(t).length > 0),
    90_000,
    'no document_ready on the insurer topics',
  );
  const validator = createEventValidator();
  const ids = new Set<string>();
  for (const topic of INSURER_TOPICS) {
    const [m] = readyOf(topic);
    const event = validator.parse(m!.value) as unknown as Envelope;
    ids.add(event.id);
    assert.is(event.data.constatId, f.constatId);
    assert.is(event.data.contentHash, f.hash);
    assert.is(event.data.document.version, 1);
    const pdf = new Uint8Array(await (await fetch(event.data.url)).arrayBuffer());
    assert.is(createHash('sha256').update(pdf).digest('hex'), event.data.document.sha256);
    // The finalized event came first on the same topic (same key, same partition).
    const finalized = finalizedOf(ctx, f.constatId, topic)[0]!;
    assert.ok(BigInt(finalized.offset) < BigInt(m!.offset), `${topic}: finalized first`);
  }
  assert.is(ids.size, 1, 'one event, the same id on both topics');
  assert.is(
    ctx.reader.on('constats', (m) => m.headers.ce_type === 'dz.constat.document_ready.v1').length,
    0,
    'not on constats',
  );
});

test('both parties with the same insurer: one message on that topic and one on constats', async (ctx) => {
  const f = await finalizeConstat(ctx.server, {
    vehicleB: completeVehicle('B', { insurer: { company: 'saa' } }),
  });
  await waitFinalized(ctx, f.constatId, ['saa', 'constats']);
  await sleep(1_500);
  assert.is(finalizedOf(ctx, f.constatId, 'saa').length, 1, 'one message on saa');
  assert.is(finalizedOf(ctx, f.constatId, 'constats').length, 1, 'one message on constats');
  assert.is(finalizedOf(ctx, f.constatId, 'trust').length, 0, 'nothing on trust');
  const [event] = finalizedOf(ctx, f.constatId, 'saa').map((m) => m.json as Envelope);
  assert.equal(event!.data.parties.A.insurer, 'saa');
  assert.equal(event!.data.parties.B.insurer, 'saa');
  assert.is(finalizedOf(ctx, f.constatId, 'constats')[0]!.json.id, event!.id);
});

test('end-to-end time: second signConstat request → the test consumer has the event', async (ctx) => {
  const runs = 5;
  const first: number[] = [];
  const all: number[] = [];
  const answer: number[] = [];
  for (let i = 0; i < runs; i++) {
    const f = await finalizeConstat(ctx.server);
    const topics = [...INSURER_TOPICS, 'constats'];
    await waitFinalized(ctx, f.constatId, topics);
    const arrivals = topics.map((t) => finalizedOf(ctx, f.constatId, t)[0]!.at - f.secondSignAt);
    first.push(Math.min(...arrivals));
    all.push(Math.max(...arrivals));
    answer.push(f.secondSignAnsweredAt - f.secondSignAt);
  }
  const fmt = (xs: number[]) => xs.map((x) => x.toFixed(0)).join(', ');
  console.log(
    `  end-to-end (second signConstat request → test consumer), ${runs} runs:\n` +
      `    signConstat answered: p50 ${median(answer).toFixed(0)} ms  [${fmt(answer)}]\n` +
      `    first topic:          p50 ${median(first).toFixed(0)} ms  [${fmt(first)}]\n` +
      `    all three topics:     p50 ${median(all).toFixed(0)} ms  [${fmt(all)}]`,
  );
  // Generous bound: the relay is woken on commit, so this is normally well under a second.
  assert.ok(median(all) < 5_000, `p50 ${median(all).toFixed(0)} ms`);
});

test('an insurer’s dz.claim.opened.v1 on its topic reaches the timeline; delivered twice, stored once', async (ctx) => {
  const f = await sharedConstat(ctx);
  const opened = envelope('dz.claim.opened.v1', f.constatId, {
    claimNumber: 'SAA-2025-000042',
    note: 'dossier ouvert',
  });
  await produce(ctx.producer, 'saa', message(opened));
  const row = await storedEvent(ctx, opened.id);
  assert.is(row.constat_id, f.constatId);
  assert.is(row.topic, 'saa');
  assert.is(row.source, 'saa');
  assert.is(row.type, 'dz.claim.opened.v1');
  assert.equal(row.data, { claimNumber: 'SAA-2025-000042', note: 'dossier ouvert' });
  assert.is(row.time.toISOString(), opened.time);

  // The same event again (an insurer retrying), then a marker: once the marker is stored, the
  // duplicate was consumed (same key, same partition, in order).
  await produce(ctx.producer, 'saa', message(opened));
  const marker = envelope('dz.claim.received.v1', f.constatId, { note: 'marker' });
  await produce(ctx.producer, 'saa', message(marker));
  await storedEvent(ctx, marker.id);
  assert.is((await timelineRows(ctx, opened.id)).length, 1, 'stored once');
  const [{ n }] = (await ctx.sql`
    select count(*)::int as n from constat_events
    where constat_id = ${f.constatId} and data->>'claimNumber' = 'SAA-2025-000042'
  `) as unknown as [{ n: number }];
  assert.is(n, 1, 'one claim.opened with that claim number on the timeline');
  assert.is(
    ctx.reader.on('saa.dlq', (m) => mine(m) && m.json?.id === opened.id).length,
    0,
    'a duplicate is not a dead letter',
  );
});

test('unusable messages go to <topic>.dlq with dlq-reason and dlq-error; the next good message is processed', async (ctx) => {
  const f = await sharedConstat(ctx);
  const bad = (e: Envelope) => JSON.stringify(e);
  const noClaimNumber = envelope('dz.claim.opened.v1', f.constatId, { note: 'no claim number' });
  const unknownConstat = envelope('dz.claim.opened.v1', randomUUID(), { claimNumber: 'X-1' });
  const aiOnInsurerTopic = envelope(
    'dz.ai.fraud_scored.v1',
    f.constatId,
    { score: 0.2, signals: [] },
    { source: 'ai-fraud' },
  );
  const claimOnAiTopic = envelope('dz.claim.opened.v1', f.constatId, { claimNumber: 'X-2' });
  const cases = [
    {
      reason: 'invalid-json',
      topic: 'saa',
      key: f.constatId,
      value: `{"specversion":"1.0","id":"${randomUUID()}", not json`,
    },
    { reason: 'schema-violation', topic: 'saa', key: f.constatId, value: bad(noClaimNumber) },
    {
      reason: 'unknown-constat',
      topic: 'saa',
      key: unknownConstat.subject,
      value: bad(unknownConstat),
    },
    { reason: 'unexpected-type', topic: 'saa', key: f.constatId, value: bad(aiOnInsurerTopic) },
    {
      reason: 'unexpected-type',
      topic: 'ai-results',
      key: f.constatId,
      value: bad(claimOnAiTopic),
    },
  ];
  for (const c of cases) {
    await produce(ctx.producer, c.topic, { key: c.key, value: c.value });
    const good =
      c.topic === 'ai-results'
        ? envelope(
            'dz.ai.ocr_verified.v1',
            f.constatId,
            { document: 'permis A', verified: true },
            { source: 'ai-ocr' },
          )
        : envelope('dz.claim.received.v1', f.constatId, { claimNumber: `SAA-${c.reason}` });
    await produce(ctx.producer, c.topic, message(good));

    const dlq = `${c.topic}.dlq`;
    await ctx.reader.waitFor(
      () => ctx.reader.on(dlq, (m) => mine(m) && m.value?.toString('utf8') === c.value).length > 0,
      30_000,
      `${c.reason} message on ${c.topic} never reached ${dlq}`,
    );
    const [dead] = ctx.reader.on(dlq, (m) => mine(m) && m.value?.toString('utf8') === c.value);
    assert.is(dead!.headers['dlq-reason'], c.reason, `${c.reason}: dlq-reason`);
    assert.ok((dead!.headers['dlq-error'] ?? '').length > 0, `${c.reason}: dlq-error is set`);
    assert.is(dead!.key, c.key, `${c.reason}: the key is kept`);
    assert.is(dead!.headers['dlq-consumer-group'], GROUP, `${c.reason}: names the group`);
    const row = await storedEvent(ctx, good.id);
    assert.is(row.topic, c.topic, `${c.reason}: the message after it was processed`);
  }
  await sleep(500);
  assert.is(
    ctx.reader.on('saa.dlq', (m) => mine(m) && m.value?.toString('utf8') === cases[1]!.value)
      .length,
    1,
    'dead-lettered once',
  );
  for (const e of [noClaimNumber, unknownConstat, aiOnInsurerTopic, claimOnAiTopic]) {
    assert.is((await timelineRows(ctx, e.id)).length, 0, `${e.type} ${e.id} not on the timeline`);
  }
});

test('an event the database refuses goes to <topic>.dlq as storage-refused; the partition goes on', async (ctx) => {
  const f = await sharedConstat(ctx);
  // Valid against the schema, but PostgreSQL's jsonb cannot hold a NUL character: storing it
  // fails every time while the database answers. It must not stall the consumer.
  const refused = envelope('dz.claim.opened.v1', f.constatId, { claimNumber: 'SAA-\u0000-1' });
  const value = JSON.stringify(refused);
  await produce(ctx.producer, 'saa', { key: f.constatId, value });
  const after = envelope('dz.claim.received.v1', f.constatId, { claimNumber: 'SAA-after-nul' });
  await produce(ctx.producer, 'saa', message(after));
  const row = await storedEvent(ctx, after.id, 60_000);
  assert.is(row.topic, 'saa', 'the message after it was stored');
  await ctx.reader.waitFor(
    () => ctx.reader.on('saa.dlq', (m) => mine(m) && m.json?.id === refused.id).length > 0,
    30_000,
    'the refused event never reached saa.dlq',
  );
  const [dead] = ctx.reader.on('saa.dlq', (m) => mine(m) && m.json?.id === refused.id);
  assert.is(dead!.headers['dlq-reason'], 'storage-refused');
  assert.match(dead!.headers['dlq-error'] ?? '', /unicode|\\u0000|escape/i);
  assert.is(dead!.value!.toString('utf8'), value, 'the message is kept as it came');
  assert.is((await timelineRows(ctx, refused.id)).length, 0);
});

test('an AI dz.ai.fraud_scored.v1 on ai-results attaches to the constat’s timeline', async (ctx) => {
  const f = await sharedConstat(ctx);
  const scored = envelope(
    'dz.ai.fraud_scored.v1',
    f.constatId,
    { score: 0.87, signals: ['late-declaration', 'same-household'], model: 'fraud-v3' },
    { source: 'ai-fraud' },
  );
  await produce(ctx.producer, 'ai-results', message(scored));
  const row = await storedEvent(ctx, scored.id);
  assert.is(row.constat_id, f.constatId);
  assert.is(row.topic, 'ai-results');
  assert.is(row.source, 'ai-fraud');
  assert.is(row.type, 'dz.ai.fraud_scored.v1');
  assert.equal(row.data, scored.data);
});

test('core’s own events on insurer topics are skipped: not on the timeline, not dead-lettered', async (ctx) => {
  const f = await sharedConstat(ctx);
  await waitFinalized(ctx, f.constatId, INSURER_TOPICS);
  const own = envelope(
    'dz.claim.opened.v1',
    f.constatId,
    { claimNumber: 'CORE-1' },
    { source: 'constat-core' },
  );
  await produce(ctx.producer, 'saa', message(own));
  const marker = envelope('dz.claim.received.v1', f.constatId, { note: 'after own event' });
  await produce(ctx.producer, 'saa', message(marker));
  await storedEvent(ctx, marker.id);
  await sleep(300); // a dead letter is produced before the next message is read; leave slack
  assert.is((await timelineRows(ctx, own.id)).length, 0, 'own event not on the timeline');
  assert.is(ctx.reader.on('saa.dlq', (m) => m.json?.id === own.id).length, 0, 'not in the DLQ');

  // The finalized events core published on saa and trust were skipped the same way.
  assert.ok(ctx.finalizedEventIds.size > 0);
  for (const id of ctx.finalizedEventIds) {
    assert.is((await timelineRows(ctx, id)).length, 0, `finalized ${id} not on the timeline`);
    for (const dlq of ['saa.dlq', 'trust.dlq']) {
      assert.is(ctx.reader.on(dlq, (m) => m.json?.id === id).length, 0, `${id} not in ${dlq}`);
    }
  }
});

test('`constat insurer --company saa --answer` prints the finalized constat and its answer lands on the timeline', async (ctx) => {
  const f = await finalizeConstat(ctx.server);
  const child = spawn(
    process.execPath,
    ['bin/constat.js', 'insurer', '--company', 'saa', '--answer', '--from-beginning'],
    {
      env: { ...process.env, KAFKA_BROKERS: process.env.KAFKA_BROKERS! },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  ctx.children.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const answered = new RegExp(
    `constat ${f.constatId}  hash ${f.hash.slice(0, 12)}[^\\n]*\\n  → claim opened: (\\S+)`,
  );
  await waitFor(
    () => answered.test(stdout) || child.exitCode !== null,
    45_000,
    `the insurer did not answer constat ${f.constatId}:\n${stdout}\n${stderr}`,
  );
  assert.ok(
    answered.test(stdout),
    `insurer exited early (${child.exitCode}):\n${stdout}\n${stderr}`,
  );
  const line = stdout.split('\n').find((l) => l.startsWith(`constat ${f.constatId}`))!;
  assert.ok(line.includes('our insured: A (12345-115-16)'), line);
  assert.ok(line.includes(`A@device-a-${f.tag}`) && line.includes(`B@device-b-${f.tag}`), line);
  const claimNumber = answered.exec(stdout)![1]!;
  assert.match(claimNumber, /^SAA-/);

  const row = await eventually(
    async () =>
      (
        await ctx.sql<TimelineRow[]>`
          select * from constat_events
          where constat_id = ${f.constatId} and type = 'dz.claim.opened.v1'
            and data->>'claimNumber' = ${claimNumber}
        `
      )[0],
    30_000,
    `the insurer's claim ${claimNumber} never reached the timeline`,
  );
  assert.is(row.source, 'saa');
  assert.is(row.topic, 'saa');

  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
});

test('`constat schemas --check` passes: docs/events matches the schemas in code', () => {
  const result = spawnSync(process.execPath, ['bin/constat.js', 'schemas', '--check'], {
    encoding: 'utf8',
  });
  assert.is(result.status, 0, `${result.stdout}\n${result.stderr}`);
  assert.match(result.stdout, /up to date/);
});

test('docs/events.md has one example per event type, each valid against docs/events/<type>.json', () => {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
  const text = readFileSync(path.join(root, 'docs/events.md'), 'utf8');
  const examples = [...text.matchAll(/```json\n([\s\S]*?)\n```/g)].map(
    (m) => JSON.parse(m[1]!) as Envelope,
  );
  const types = readdirSync(path.join(root, 'docs/events'))
    .filter((f) => f.endsWith('.json'))
    .map((f) => f.slice(0, -'.json'.length))
    .sort();
  assert.is(types.length, 15);
  assert.equal(
    examples.map((e) => e.type).sort(),
    types,
    'one example of each type in docs/events/',
  );
  const ajv = new Ajv({ allErrors: true, strict: false });
  addFormats(ajv);
  const validator = createEventValidator();
  for (const example of examples) {
    const schema = JSON.parse(
      readFileSync(path.join(root, 'docs/events', `${example.type}.json`), 'utf8'),
    ) as object;
    const validate = ajv.compile(schema);
    assert.ok(validate(example), `${example.type}: ${ajv.errorsText(validate.errors)}`);
    validator.parse(Buffer.from(JSON.stringify(example))); // and the server's own validator
    assert.is(example.dataschema, `urn:constat:schema:${example.type}`);
  }
  // The finalized example is a real one: its hash and signatures verify.
  const finalized = examples.find((e) => e.type === FINALIZED)!;
  const d = finalized.data;
  assert.is(hashContent(d.content as JsonValue), d.contentHash);
  for (const s of d.signatures) {
    assert.ok(
      verifySignature(s.publicKey, signingMessage(d.sessionId, s.role, d.contentHash), s.signature),
      `example signature ${s.role} verifies`,
    );
  }
});

// Last: while this fails, the server's outbox is stuck, which would fail every test after it.
test('an insurer added to the registry while running gets its topic, and its events do not hold back the others', async (ctx) => {
  const uid = `test-${randomUUID().slice(0, 8)}`;
  // What an operator does; this server re-reads the registry every 0.5 s (COMPANY_REFRESH_MS).
  await ctx.sql`insert into companies (uid, name, kind) values (${uid}, 'Test Assurances', 'private')`;
  await eventually(
    async () => {
      const res = await gql(
        ctx.server.url,
        await token('u-registry', 'd-registry'),
        '{ insurers { uid } }',
      );
      return (res.data?.insurers as Array<{ uid: string }> | undefined)?.some((i) => i.uid === uid)
        ? true
        : undefined;
    },
    90_000,
    `${uid} never showed in the registry`,
  );
  const f = await finalizeConstat(ctx.server, {
    vehicleB: completeVehicle('B', { insurer: { company: uid } }),
  });
  // The other topics of the same constat, and anything published after it, still flow.
  await ctx.reader.waitFor(
    () => ['saa', 'constats'].every((t) => finalizedOf(ctx, f.constatId, t).length > 0),
    30_000,
    `constat ${f.constatId} (insurers saa and new ${uid}) never reached saa / constats: the outbox is stuck`,
  );
  await waitForTopics(ctx.kafka, [uid], 30_000);
  const reader = new TopicReader(ctx.kafka, [uid]);
  try {
    await reader.start();
    await reader.waitFor(
      () => reader.on(uid, (m) => m.key === f.constatId).length > 0,
      30_000,
      `constat ${f.constatId} never reached the new insurer's topic ${uid}`,
    );
  } finally {
    await reader.close();
  }
});

test.run();
