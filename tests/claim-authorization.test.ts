/**
 * Who may write a constat's claim timeline, on the run's real broker: only the insurers of
 * party A and party B, each on its own topic with `source` naming itself; AI findings only from
 * registered AI services. Event ids are unique per topic (one company cannot squat another's),
 * and the claim status follows the order core received events, so a far-future `time` pins
 * nothing. Plus the pure authorization rule itself.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { randomUUID } from 'node:crypto';
import postgres from 'postgres';
import { gql, startTestServer } from './support/server.js';
import { eventually, finalizeConstat, type Finalized } from './support/signing.js';
import {
  envelope,
  message,
  produce,
  testKafka,
  testProducer,
  TopicReader,
  waitForTopics,
  type KafkaSuiteContext,
} from './support/kafka.js';
import { setUp } from './support/suite.js';

/** This suite's server's consumer group: other suites' servers read the same insurer topics. */
const GROUP = `constat-test-claims-${randomUUID().slice(0, 8)}`;
import { authorizeEvent } from '../integrations/event-authorization.js';

// ---------------------------------------------------------------------------------------------
const rule = suite('claim authorization: the rule');
const insurers = { insurerA: 'saa', insurerB: 'trust' };
const ai = new Set(['constat-ai']);
const at = (topic: string, source: string) =>
  authorizeEvent(topic, { source, subject: 'c1' }, insurers, ai);

rule('each party’s insurer, on its own topic, naming itself', () => {
  assert.equal(at('saa', 'saa'), { ok: true });
  assert.equal(at('trust', 'trust'), { ok: true });
});

rule('another company, a forged source or an unregistered AI service are refused', () => {
  const refused = (result: ReturnType<typeof at>, reason: string) => {
    assert.is(result.ok, false);
    if (!result.ok) {
      assert.is(result.reason, reason);
      assert.ok(result.error.length > 0);
    }
  };
  refused(at('caat', 'caat'), 'not-an-insurer-of-the-constat');
  refused(at('saa', 'trust'), 'source-mismatch');
  refused(at('trust', 'saa'), 'source-mismatch');
  refused(at('saa', 'SAA'), 'source-mismatch');
  refused(at('ai-results', 'rogue-ai'), 'unknown-ai-service');
  refused(at('ai-results', 'saa'), 'unknown-ai-service');
  assert.equal(at('ai-results', 'constat-ai'), { ok: true });
  // A constat whose vehicle named no insurer: nobody speaks for that side.
  const oneSided = { insurerA: 'saa', insurerB: null };
  assert.is(authorizeEvent('saa', { source: 'saa', subject: 'c' }, oneSided, ai).ok, true);
  assert.is(authorizeEvent('null', { source: 'null', subject: 'c' }, oneSided, ai).ok, false);
});

rule.run();

// ---------------------------------------------------------------------------------------------
interface Ctx extends KafkaSuiteContext {
  constat: Finalized;
}

const DLQS = ['saa.dlq', 'trust.dlq', 'caat.dlq', 'ai-results.dlq'];
const test = suite<Ctx>('claim authorization: on the broker', {} as Ctx);

setUp(test, async (ctx) => {
  ctx.server = await startTestServer({
    database: 'postgres',
    hub: 'memory',
    kafka: true,
    env: { AI_SERVICES: 'fraud-ai', KAFKA_CONSUMER_GROUP: GROUP },
  });
  ctx.sql = postgres(ctx.server.databaseUrl!, { max: 2, onnotice: () => {} });
  ctx.kafka = testKafka();
  await waitForTopics(ctx.kafka, ['saa', 'trust', 'caat', 'ai-results', ...DLQS]);
  ctx.reader = new TopicReader(ctx.kafka, DLQS);
  await ctx.reader.start();
  ctx.producer = await testProducer(ctx.kafka);
  ctx.constat = await finalizeConstat(ctx.server); // A insured by saa, B by trust
});
test.after(async (ctx) => {
  await ctx.reader?.close();
  await ctx.producer?.disconnect().catch(() => {});
  await ctx.sql?.end({ timeout: 5 });
  await ctx.server?.stop();
});

interface Row {
  event_id: string;
  topic: string;
  source: string;
  type: string;
  time: Date;
}
const rows = (ctx: Ctx, eventId: string) =>
  ctx.sql<Row[]>`select * from constat_events where event_id = ${eventId} order by topic`;

function stored(ctx: Ctx, eventId: string, count = 1): Promise<Row[]> {
  return eventually(
    async () => {
      const found = await rows(ctx, eventId);
      return found.length >= count ? found : undefined;
    },
    30_000,
    `event ${eventId} never reached the timeline`,
  );
}

/** Waits for `value` on `dlq` and returns its reason header. */
async function deadLetterReason(ctx: Ctx, dlq: string, value: string): Promise<string> {
  const match = () =>
    ctx.reader.on(
      dlq,
      (m) => m.headers['dlq-consumer-group'] === GROUP && m.value?.toString('utf8') === value,
    );
  await ctx.reader.waitFor(() => match().length > 0, 30_000, `nothing reached ${dlq}`);
  return match()[0]!.headers['dlq-reason'] ?? '';
}

const CLAIMS = `query($id: ID!) { constat(id: $id) { status claims { insurer { uid } status events { id time } } } }`;

test('a company insuring neither party cannot write the claim: DLQ, not on the timeline', async (ctx) => {
  const { constatId } = ctx.constat;
  const settled = envelope(
    'dz.claim.settled.v1',
    constatId,
    { claimNumber: 'CAAT-1', payment: { amount: 1, currency: 'DZD' } },
    { source: 'caat' },
  );
  await produce(ctx.producer, 'caat', message(settled));
  assert.is(
    await deadLetterReason(ctx, 'caat.dlq', JSON.stringify(settled)),
    'not-an-insurer-of-the-constat',
  );
  assert.is((await rows(ctx, settled.id)).length, 0);
});

test('a source that is not the topic’s company is refused', async (ctx) => {
  const { constatId } = ctx.constat;
  // saa's topic, claiming to be trust (and the other way round).
  const forged = envelope(
    'dz.claim.rejected.v1',
    constatId,
    { claimNumber: 'TR-1', reason: 'forged' },
    { source: 'trust' },
  );
  await produce(ctx.producer, 'saa', message(forged));
  assert.is(await deadLetterReason(ctx, 'saa.dlq', JSON.stringify(forged)), 'source-mismatch');
  assert.is((await rows(ctx, forged.id)).length, 0);
});

test('event ids are per topic: one insurer cannot squat the other’s id', async (ctx) => {
  const { constatId } = ctx.constat;
  const id = randomUUID();
  const squat = envelope(
    'dz.claim.received.v1',
    constatId,
    { claimNumber: 'SAA-9' },
    { source: 'saa', id },
  );
  await produce(ctx.producer, 'saa', message(squat));
  await stored(ctx, id);
  const real = envelope(
    'dz.claim.opened.v1',
    constatId,
    { claimNumber: 'TR-9' },
    { source: 'trust', id },
  );
  await produce(ctx.producer, 'trust', message(real));
  const both = await stored(ctx, id, 2);
  assert.equal(
    both.map((r) => [r.topic, r.type]),
    [
      ['saa', 'dz.claim.received.v1'],
      ['trust', 'dz.claim.opened.v1'],
    ],
  );
  // Redelivery on the same topic is still a duplicate.
  await produce(ctx.producer, 'trust', message(real));
  const marker = envelope(
    'dz.claim.received.v1',
    constatId,
    { claimNumber: 'TR-9' },
    {
      source: 'trust',
    },
  );
  await produce(ctx.producer, 'trust', message(marker));
  await stored(ctx, marker.id);
  assert.is((await rows(ctx, id)).length, 2);
});

test('the status follows the order events were received; a future time pins nothing', async (ctx) => {
  const { constatId, tokenA } = ctx.constat;
  const future = envelope(
    'dz.claim.settled.v1',
    constatId,
    { claimNumber: 'SAA-77', payment: { amount: 5, currency: 'DZD' } },
    { source: 'saa', time: '2099-01-01T00:00:00.000Z' },
  );
  await produce(ctx.producer, 'saa', message(future));
  const [early] = await stored(ctx, future.id);
  assert.ok(early!.time.getTime() <= Date.now(), `a time in the future is clamped: ${early!.time}`);
  const reopened = envelope('dz.claim.documents_requested.v1', constatId, {
    claimNumber: 'SAA-77',
    documents: ['photos'],
  });
  await produce(ctx.producer, 'saa', message(reopened));
  await stored(ctx, reopened.id);
  const res = await gql(ctx.server.url, tokenA, CLAIMS, { id: constatId });
  assert.is(res.errors, undefined, JSON.stringify(res.errors));
  const saa = res.data!.constat.claims.find((c: any) => c.insurer.uid === 'saa');
  assert.is(saa.status, 'IN_PROGRESS', 'the last event received decides');
  assert.is(saa.events.at(-1).id, reopened.id, 'the timeline is in the order received');
  assert.is(res.data!.constat.status, 'IN_PROGRESS');
});

test('AI findings only from a registered AI service', async (ctx) => {
  const { constatId } = ctx.constat;
  const rogue = envelope(
    'dz.ai.fraud_scored.v1',
    constatId,
    { score: 0.99, signals: ['forged'] },
    { source: 'rogue-ai' },
  );
  await produce(ctx.producer, 'ai-results', message(rogue));
  assert.is(
    await deadLetterReason(ctx, 'ai-results.dlq', JSON.stringify(rogue)),
    'unknown-ai-service',
  );
  const scored = envelope(
    'dz.ai.fraud_scored.v1',
    constatId,
    { score: 0.1, signals: [] },
    { source: 'fraud-ai' },
  );
  await produce(ctx.producer, 'ai-results', message(scored));
  await stored(ctx, scored.id);
  assert.is((await rows(ctx, rogue.id)).length, 0);
});

test.run();
