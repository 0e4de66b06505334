/**
 * GraphQL subscriptions over SSE (`Accept: text/event-stream`), on two instances that share one
 * PostgreSQL database and one Redis keyspace, as in a deployment behind a load balancer:
 *
 * - who may subscribe: the parties to their session; the parties and their insurers' staff to
 *   the constat; anyone else is answered NOT_FOUND (the same as an unknown id), no token 401;
 * - a change raised on instance 1 reaches a subscriber on instance 2: the finalization (both
 *   signatures given through instance 1, whose devices hold the live document) and a claim
 *   event (instance 1 alone consumes Kafka; instance 2 has no broker at all, so what it tells
 *   its subscriber can only have come through Redis).
 *
 * Claim events are produced to Kafka with kafkajs, the way an insurer would (CloudEvents 1.0,
 * topic and source `saa`, subject = constat id): no other path raises constatChanged.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { randomBytes, randomUUID } from 'node:crypto';
import type { Kafka, Producer } from 'kafkajs';
import { startTestServer, openPair, gql } from './support/server.js';
import { ABANDON_SESSION, finalizeConstat, type Finalized } from './support/signing.js';
import {
  leaksStack,
  subscribe,
  insertConstats,
  waitForListeners,
  waitForNoListeners,
  type Subscription,
  viewersOf,
  type Viewer,
} from './support/graphql.js';
import { setUp } from './support/suite.js';
import { startTwoInstances, stopTwoInstances, type TwoInstances } from './support/instances.js';
import { claimMessage } from './support/kafka.js';

const SESSION_CHANGED = `subscription($id: ID!) {
  sessionChanged(id: $id) { id status myRole constatId signatures { role } }
}`;
const CONSTAT_CHANGED = `subscription($id: ID!) {
  constatChanged(id: $id) {
    id status
    claims { insurer { uid } claimNumber status events { id type source data } }
    aiFindings { id }
  }
}`;

type Who = Viewer;

/** Subscriptions' Redis channels carry the deployment's key prefix. */
const channelOf = (ctx: Ctx, topic: string) => `${ctx.s1.redisPrefix}changes:${topic}`;

interface Ctx extends TwoInstances {
  constat: Finalized;
  who: Record<Who, string>;
  subscriptions: Subscription[];
}

const tag = () => randomBytes(4).toString('hex');

async function waitForTopic(kafka: Kafka, topic: string, timeoutMs = 60_000): Promise<void> {
  const admin = kafka.admin();
  const deadline = Date.now() + timeoutMs;
  try {
    await admin.connect();
    while (!(await admin.listTopics().catch(() => [] as string[])).includes(topic)) {
      if (Date.now() > deadline) throw new Error(`topic ${topic} was never created`);
      await new Promise((r) => setTimeout(r, 200));
    }
  } finally {
    await admin.disconnect().catch(() => {});
  }
}

/** A claim event as the insurer `saa` sends it (docs/events/dz.claim.opened.v1.json). */
async function produceClaimOpened(
  producer: Producer,
  constatId: string,
  claimNumber: string,
): Promise<string> {
  const { id, message } = claimMessage(constatId, 'dz.claim.opened.v1', {
    claimNumber,
    note: 'Dossier ouvert, agence Hussein Dey',
  });
  await producer.send({ topic: 'saa', acks: -1, messages: [message] });
  return id;
}

const test = suite<Ctx>('graphql subscriptions (two instances, Redis, Kafka)', {
  subscriptions: [],
} as unknown as Ctx);

setUp(test, async (ctx) => {
  await startTwoInstances(ctx);
  await waitForTopic(ctx.kafka, 'saa'); // instance 1 creates the insurer topics at start
  ctx.constat = await finalizeConstat(ctx.s1); // vehicle A: saa, vehicle B: trust
  ctx.who = { ...(await viewersOf(ctx.constat)) };
});
test.after.each(async (ctx) => {
  await Promise.all(ctx.subscriptions.splice(0).map((s) => s.close()));
});
test.after(async (ctx) => {
  await Promise.all(ctx.subscriptions.splice(0).map((s) => s.close()));
  // Stopping must not leave a promise to reject later (the last tests check it on an instance
  // of their own); should it happen here, it is printed rather than crashing the run after
  // every test has reported. The handler stays: such a rejection comes up to 12 s later.
  process.on('unhandledRejection', (reason: unknown) =>
    console.error(
      `  unhandled rejection after stopping: ${String((reason as Error)?.message ?? reason)}`,
    ),
  );
  await stopTwoInstances(ctx);
});

async function open(
  ctx: Ctx,
  url: string,
  bearer: string | undefined,
  query: string,
  id: string,
): Promise<Subscription> {
  const sub = await subscribe(url, bearer, query, { id });
  ctx.subscriptions.push(sub);
  return sub;
}

/** A refused subscription: one error with `code`, then the stream ends. */
async function assertRefused(sub: Subscription, code: string, what: string): Promise<void> {
  assert.is(sub.status, 200, `${what}: errors of the operation travel in the stream`);
  const payload = await sub.next(() => true, 10_000);
  assert.not.ok(payload.data?.sessionChanged ?? payload.data?.constatChanged, `${what}: no data`);
  assert.is(payload.errors?.[0]?.extensions?.code, code, `${what}: ${JSON.stringify(payload)}`);
  assert.not.ok(leaksStack(JSON.stringify(payload)), `${what}: no stack trace`);
  const deadline = Date.now() + 5_000;
  while (!sub.ended && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.ok(sub.ended, `${what}: the stream ends`);
}

function assertUnauthenticated(sub: Subscription, what: string) {
  assert.is(sub.status, 401, what);
  assert.is(sub.body?.errors?.[0]?.extensions?.code, 'UNAUTHENTICATED', JSON.stringify(sub.body));
}

test('sessionChanged: only the two parties may subscribe, and they are told', async (ctx) => {
  const url = ctx.s1.url;
  const live = await openPair(url);
  const parties = {
    A: await open(ctx, url, live.tokenA, SESSION_CHANGED, live.sessionId),
    B: await open(ctx, url, live.tokenB, SESSION_CHANGED, live.sessionId),
  };
  for (const who of ['insurerA', 'insurerB', 'otherInsurer', 'stranger'] as const) {
    await assertRefused(
      await open(ctx, url, ctx.who[who], SESSION_CHANGED, live.sessionId),
      'NOT_FOUND',
      `${who} on an open session`,
    );
    // Nor the session of a constat their company insures.
    await assertRefused(
      await open(ctx, url, ctx.who[who], SESSION_CHANGED, ctx.constat.sessionId),
      'NOT_FOUND',
      `${who} on a finalized session`,
    );
  }
  await assertRefused(
    await open(ctx, url, live.tokenA, SESSION_CHANGED, randomUUID()),
    'NOT_FOUND',
    'an unknown session',
  );
  assertUnauthenticated(
    await open(ctx, url, undefined, SESSION_CHANGED, live.sessionId),
    'no token',
  );

  for (const sub of Object.values(parties)) {
    assert.is(sub.status, 200);
    assert.match(sub.contentType, /text\/event-stream/);
  }
  await waitForListeners(channelOf(ctx, `sessionChanged:${live.sessionId}`));
  const abandoned = await gql(url, live.tokenA, ABANDON_SESSION, { sessionId: live.sessionId });
  assert.not.ok(abandoned.errors, JSON.stringify(abandoned.errors));
  for (const [role, sub] of Object.entries(parties)) {
    const payload = await sub.next((p) => p.data?.sessionChanged?.status === 'ABANDONED');
    assert.not.ok(payload.errors, JSON.stringify(payload.errors));
    assert.is(payload.data.sessionChanged.id, live.sessionId);
    assert.is(payload.data.sessionChanged.myRole, role, 'each reads it with their own role');
  }
});

test('constatChanged: the parties and their insurers may subscribe and see the claim', async (ctx) => {
  const url = ctx.s1.url;
  const { constatId } = ctx.constat;
  const allowed = {} as Record<'partyA' | 'partyB' | 'insurerA' | 'insurerB', Subscription>;
  for (const who of ['partyA', 'partyB', 'insurerA', 'insurerB'] as const) {
    allowed[who] = await open(ctx, url, ctx.who[who], CONSTAT_CHANGED, constatId);
    assert.is(allowed[who].status, 200, who);
  }
  for (const who of ['otherInsurer', 'stranger'] as const) {
    await assertRefused(
      await open(ctx, url, ctx.who[who], CONSTAT_CHANGED, constatId),
      'NOT_FOUND',
      who,
    );
  }
  for (const id of [randomUUID(), 'not-a-uuid']) {
    await assertRefused(
      await open(ctx, url, ctx.who.partyA, CONSTAT_CHANGED, id),
      'NOT_FOUND',
      `unknown id ${id}`,
    );
  }
  assertUnauthenticated(await open(ctx, url, undefined, CONSTAT_CHANGED, constatId), 'no token');

  await waitForListeners(channelOf(ctx, `constatChanged:${constatId}`));
  const claimNumber = `SAA-${tag()}`;
  const eventId = await produceClaimOpened(ctx.producer, constatId, claimNumber);
  for (const [who, sub] of Object.entries(allowed)) {
    const payload = await sub.next(
      (p) => p.data?.constatChanged?.claims?.some((c: any) => c.claimNumber === claimNumber),
      45_000,
    );
    assert.not.ok(payload.errors, `${who}: ${JSON.stringify(payload.errors)}`);
    const c = payload.data.constatChanged;
    assert.is(c.id, constatId, who);
    assert.is(c.status, 'IN_PROGRESS', who);
    const claim = c.claims.find((x: any) => x.claimNumber === claimNumber);
    assert.equal(claim.insurer, { uid: 'saa' });
    assert.is(claim.status, 'IN_PROGRESS');
    assert.ok(
      claim.events.some((e: any) => e.id === eventId && e.type === 'dz.claim.opened.v1'),
      `${who}: the event is on the timeline`,
    );
  }
});

test('instance 2 tells its subscriber about a finalization that happened on instance 1', async (ctx) => {
  let sub: Subscription | undefined;
  const finalized = await finalizeConstat(ctx.s1, {
    // After A's signature, before B's: subscribe on the other instance.
    beforeSecondSignature: async ({ sessionId, tokenA }) => {
      sub = await open(ctx, ctx.s2.url, tokenA, SESSION_CHANGED, sessionId);
      assert.is(sub.status, 200, JSON.stringify(sub.body));
      await waitForListeners(channelOf(ctx, `sessionChanged:${sessionId}`));
    },
  });
  assert.ok(sub, 'subscribed');
  const payload = await sub!.next((p) => p.data?.sessionChanged?.status === 'FINALIZED', 20_000);
  assert.not.ok(payload.errors, JSON.stringify(payload.errors));
  const s = payload.data.sessionChanged;
  assert.is(s.id, finalized.sessionId);
  assert.is(s.constatId, finalized.constatId);
  assert.equal(
    s.signatures.map((x: any) => x.role),
    ['A', 'B'],
  );
  assert.is(s.myRole, 'A');
});

test('instance 2 tells its subscribers about a claim event consumed on instance 1', async (ctx) => {
  // A constat of the same drivers, written directly: a channel nobody else listens on.
  const constatId = (
    await insertConstats(ctx.sql, [
      { partyA: ctx.constat.userA, partyB: ctx.constat.userB, insurerA: 'saa', insurerB: 'trust' },
    ])
  )[0]!;
  const party = await open(ctx, ctx.s2.url, ctx.who.partyB, CONSTAT_CHANGED, constatId);
  const staff = await open(ctx, ctx.s2.url, ctx.who.insurerA, CONSTAT_CHANGED, constatId);
  assert.is(party.status, 200);
  assert.is(staff.status, 200);
  await waitForListeners(channelOf(ctx, `constatChanged:${constatId}`));
  const claimNumber = `SAA-${tag()}`;
  await produceClaimOpened(ctx.producer, constatId, claimNumber);
  for (const [who, sub] of [
    ['party B', party],
    ['saa staff', staff],
  ] as const) {
    const payload = await sub.next(
      (p) => p.data?.constatChanged?.claims?.some((c: any) => c.claimNumber === claimNumber),
      45_000,
    );
    assert.not.ok(payload.errors, `${who}: ${JSON.stringify(payload.errors)}`);
    const claim = payload.data.constatChanged.claims.find(
      (c: any) => c.claimNumber === claimNumber,
    );
    assert.equal(claim.insurer, { uid: 'saa' }, who);
    assert.is(claim.status, 'IN_PROGRESS', who);
  }
  // What instance 2 reads is in the shared database: a plain query agrees.
  const read = await gql(
    ctx.s2.url,
    ctx.who.partyA,
    `query($id: ID!) { constat(id: $id) { claims { claimNumber } } }`,
    { id: constatId },
  );
  assert.ok(read.data!.constat.claims.some((c: any) => c.claimNumber === claimNumber));
});

test('a subscriber that goes away is let go of', async (ctx) => {
  // A phone loses its connection: the server must end the subscription (and its Redis
  // channel subscription), or every dropped connection leaks one until the process stops.
  const { url } = ctx.s1;
  const live = await openPair(url);
  const channel = channelOf(ctx, `sessionChanged:${live.sessionId}`);
  const sub = await open(ctx, url, live.tokenA, SESSION_CHANGED, live.sessionId);
  assert.is(sub.status, 200);
  await waitForListeners(channel);
  await sub.close(); // the client aborts: its TCP connection is closed
  await waitForNoListeners(channel, 5_000);
});

/**
 * Starts a third instance on the shared database (its own keyspace), opens subscriptions on
 * it, lets `before` happen, stops it, and returns the unhandled rejections seen meanwhile.
 */
async function stopWithSubscriptions(
  ctx: Ctx,
  before: (subs: Subscription[]) => Promise<void>,
): Promise<string[]> {
  const s3 = await startTestServer({
    database: 'postgres',
    hub: 'redis',
    databaseUrl: ctx.s1.databaseUrl!,
  });
  const rejections: string[] = [];
  const record = (reason: unknown) => rejections.push(String((reason as Error)?.message ?? reason));
  process.on('unhandledRejection', record);
  try {
    // Channels of their own: a constat written directly and a fresh session.
    const [constatId] = await insertConstats(ctx.sql, [
      { partyA: ctx.constat.userA, partyB: ctx.constat.userB },
    ]);
    const live = await openPair(s3.url);
    const subs = [
      await open(ctx, s3.url, ctx.who.partyA, CONSTAT_CHANGED, constatId!),
      await open(ctx, s3.url, live.tokenA, SESSION_CHANGED, live.sessionId),
    ];
    for (const sub of subs) assert.is(sub.status, 200);
    await waitForListeners(`${s3.redisPrefix}changes:constatChanged:${constatId}`);
    await waitForListeners(`${s3.redisPrefix}changes:sessionChanged:${live.sessionId}`);
    await before(subs);
    await s3.stopServer();
    // Late callbacks: a stream the server did not end is noticed at its next keep-alive ping,
    // which Yoga sends every 12 s.
    await new Promise((r) => setTimeout(r, 13_000));
    return rejections;
  } finally {
    await s3.stop();
    process.off('unhandledRejection', record);
  }
}

test('an instance stops cleanly while phones are subscribed to it', async (ctx) => {
  // A rolling deploy stops an instance with live subscriptions: their streams end, and no
  // promise is left to reject (an unhandled rejection ends a Node process).
  let streams: Subscription[] = [];
  const rejections = await stopWithSubscriptions(ctx, async (subs) => {
    streams = subs;
  });
  assert.ok(
    streams.every((s) => s.ended),
    'the streams were ended by the server',
  );
  assert.equal(rejections, [], 'no unhandled rejection while stopping');
});

test('an instance stops cleanly after subscribers went away', async (ctx) => {
  const rejections = await stopWithSubscriptions(ctx, async (subs) => {
    for (const sub of subs) await sub.close();
    await new Promise((r) => setTimeout(r, 300));
  });
  assert.equal(rejections, [], 'no unhandled rejection while stopping');
});

test.run();
