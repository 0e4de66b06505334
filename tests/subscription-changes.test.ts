/**
 * What a subscriber is sent, and what a subscriber can do to the server, on two instances that
 * share one PostgreSQL database and one Redis keyspace (instance 1 alone consumes Kafka):
 *
 * - `sessionChanged` selecting `{ id status constatId signatures { role hash } }`, open while
 *   both drivers sign, gets one message per real change: A signed, (B signed,) finalized — and
 *   nothing after, however long it stays open. Resolving the payload reads the signatures;
 *   that must never announce a change again (it once did, 50–100 identical FINALIZED messages
 *   a second until the process died). On the instance that finalizes and on the other one.
 * - A subscriber that never reads its stream, while claim events keep changing its constat, is
 *   cut off once its connection is full and it is `GRAPHQL_SUBSCRIPTION_BUFFER` changes behind:
 *   its Redis channel is let go of, the cut is counted, the server keeps answering, and a client
 *   that reads again in time finds the error at the end of its stream.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import net from 'node:net';
import { startTwoInstances, stopTwoInstances, type TwoInstances } from './support/instances.js';
import { claimMessage } from './support/kafka.js';
import { gql, type TestServer } from './support/server.js';
import { finalizeConstat, sleep, type Finalized } from './support/signing.js';
import {
  subscribe,
  insertConstats,
  metric,
  waitForListeners,
  waitForNoListeners,
  viewersOf,
  type Subscription,
} from './support/graphql.js';
import { setUp } from './support/suite.js';

// The selection of the report, exactly.
const SESSION_CHANGED = `subscription($id: ID!) {
  sessionChanged(id: $id) { id status constatId signatures { role hash } }
}`;

const BUFFER = 16;

interface Ctx extends TwoInstances {
  subscriptions: Subscription[];
  sockets: net.Socket[];
}

const test = suite<Ctx>('subscription changes (two instances, Redis, Kafka)', {
  subscriptions: [],
  sockets: [],
} as unknown as Ctx);

const env = { GRAPHQL_SUBSCRIPTION_BUFFER: String(BUFFER) };

setUp(test, (ctx) => startTwoInstances(ctx, env));
test.after.each(async (ctx) => {
  for (const s of ctx.sockets.splice(0)) s.destroy();
  await Promise.all(ctx.subscriptions.splice(0).map((s) => s.close()));
});
test.after(async (ctx) => {
  for (const s of ctx.sockets.splice(0)) s.destroy();
  await Promise.all(ctx.subscriptions.splice(0).map((s) => s.close()));
  await stopTwoInstances(ctx);
});

const channelOf = (ctx: Ctx, topic: string) => `${ctx.s1.redisPrefix}changes:${topic}`;

async function assertUp(server: TestServer, bearer: string): Promise<void> {
  const health = await fetch(`${server.url}/healthz`);
  assert.is(health.status, 200, 'the server still answers');
  const me = await gql(server.url, bearer, '{ me { id } }');
  assert.not.ok(me.errors, JSON.stringify(me.errors));
}

/** Signs through instance 1 with a subscriber on `subscribeOn`, and checks what it was sent. */
async function throughFinalization(ctx: Ctx, subscribeOn: TestServer): Promise<void> {
  let sub: Subscription | undefined;
  const finalized: Finalized = await finalizeConstat(ctx.s1, {
    beforeSigning: async ({ sessionId, tokenA }) => {
      sub = await subscribe(subscribeOn.url, tokenA, SESSION_CHANGED, { id: sessionId });
      ctx.subscriptions.push(sub);
      assert.is(sub.status, 200, JSON.stringify(sub.body));
      await waitForListeners(channelOf(ctx, `sessionChanged:${sessionId}`));
    },
    // Drivers sign seconds apart; a subscriber reading after both would see them as one change.
    beforeSecondSignature: async () => {
      await sub!.next((p) => p.data?.sessionChanged?.signatures?.length === 1, 10_000);
    },
  });
  await sub!.next((p) => p.data?.sessionChanged?.status === 'FINALIZED', 20_000);
  // The report's stream went on for as long as it stayed open: give it time to show.
  await sleep(3_000);
  const { sessionId, constatId, hash } = finalized;
  const seen = sub!.messages.map((m) => m.data);
  const state = (status: string, id: string | null, roles: string[]) => ({
    data: {
      sessionChanged: {
        id: sessionId,
        status,
        constatId: id,
        signatures: roles.map((role) => ({ role, hash })),
      },
    },
  });
  const aSigned = state('ACTIVE', null, ['A']);
  const bothSigned = state('ACTIVE', null, ['A', 'B']);
  const done = state('FINALIZED', constatId, ['A', 'B']);
  // B's signature and the finalization it starts are two changes a few milliseconds apart: a
  // subscriber sees the second alone when it reads after both.
  const expected = [
    [aSigned, bothSigned, done],
    [aSigned, done],
  ];
  assert.ok(
    expected.some((e) => JSON.stringify(e) === JSON.stringify(seen)),
    `expected A signed, (B signed,) finalized; got ${seen.length}: ${JSON.stringify(seen).slice(0, 2_000)}`,
  );
  assert.ok(
    sub!.messages.every((m) => m.event === 'next'),
    'the stream is still open, not ended',
  );
  await assertUp(subscribeOn, finalized.tokenA);
}

test('sessionChanged selecting signatures, on the finalizing instance: one message per change', async (ctx) => {
  await throughFinalization(ctx, ctx.s1);
});

test('sessionChanged selecting signatures, on the other instance through Redis', async (ctx) => {
  await throughFinalization(ctx, ctx.s2);
});

/** A claim event as the insurer `saa` sends it, with a note long enough to fill a buffer. */
const claimEvent = (constatId: string, n: number) =>
  claimMessage(constatId, 'dz.claim.documents_requested.v1', {
    claimNumber: 'SAA-1',
    documents: ['photos'],
    note: `pièce ${n} `.padEnd(400, '·'),
  }).message;

/**
 * Opens an SSE subscription on a raw socket and never reads from it: the kernel's buffers fill,
 * then the server's.
 */
function silentSubscriber(url: string, bearer: string, query: string, id: string) {
  const { hostname, port } = new URL(url);
  const body = JSON.stringify({ query, variables: { id } });
  const socket = net.connect(Number(port), hostname);
  socket.on('error', () => {});
  socket.write(
    `POST /graphql HTTP/1.1\r\nhost: ${hostname}:${port}\r\naccept: text/event-stream\r\n` +
      `content-type: application/json\r\nauthorization: Bearer ${bearer}\r\n` +
      `content-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
  socket.pause();
  return socket;
}

async function neverReads(ctx: Ctx, subscribeOn: TestServer): Promise<void> {
  const constat = await finalizeConstat(ctx.s1);
  const who = await viewersOf(constat);
  const [constatId] = await insertConstats(ctx.sql, [
    { partyA: constat.userA, partyB: constat.userB },
  ]);
  // Every event is sent again with every message: a few hundred fill the connection.
  const events = 'events { id type source time data }';
  const query = `subscription($id: ID!) { constatChanged(id: $id) {
    id a: claims { ${events} } b: claims { ${events} } c: claims { ${events} } } }`;
  const channel = channelOf(ctx, `constatChanged:${constatId}`);
  const silent = silentSubscriber(subscribeOn.url, who.partyA, query, constatId!);
  ctx.sockets.push(silent);
  // A reading subscriber of the same constat, with a small selection, keeps up throughout.
  const reader = await subscribe(
    subscribeOn.url,
    who.partyB,
    `subscription($id: ID!) { constatChanged(id: $id) { id claims { events { id } } } }`,
    { id: constatId },
  );
  ctx.subscriptions.push(reader);
  await waitForListeners(channel);
  const cutBefore = await metric(subscribeOn.url, 'constat_subscriptions_cut_off_total');
  const total = 400;
  for (let sent = 0; sent < total; sent += 50) {
    await ctx.producer.send({
      topic: 'saa',
      acks: -1,
      messages: Array.from({ length: 50 }, (_, i) => claimEvent(constatId!, sent + i)),
    });
  }
  const deadline = Date.now() + 60_000;
  while ((await metric(subscribeOn.url, 'constat_subscriptions_cut_off_total')) === cutBefore) {
    assert.ok(Date.now() < deadline, 'the silent subscriber was never cut off');
    await sleep(100);
  }
  // Reading again within the grace period: the stream ends with the reason.
  let text = '';
  silent.setEncoding('utf8');
  silent.on('data', (chunk: string) => (text += chunk));
  const ended = new Promise<void>((resolve) => silent.once('close', () => resolve()));
  silent.resume();
  await Promise.race([ended, sleep(20_000)]);
  assert.match(
    text.slice(-1_000),
    /SUBSCRIBER_TOO_SLOW/,
    `the last event names the reason: ${text.slice(-300)}`,
  );
  assert.match(text.slice(-200), /event: complete/, 'then the stream completes');
  await assertUp(subscribeOn, who.partyA);
  // The reader was not cut off: it receives the last event.
  const last = await reader.next(
    (p) => p.data?.constatChanged?.claims?.[0]?.events?.length === total,
    60_000,
  );
  assert.not.ok(last.errors, JSON.stringify(last.errors));
  assert.not.ok(reader.ended, 'the reading subscriber stays subscribed');
  await reader.close();
  await waitForNoListeners(channel, 10_000);
}

test('a subscriber that never reads is cut off; the server stays up', async (ctx) => {
  await neverReads(ctx, ctx.s1);
});

test('the same on the other instance, the changes coming through Redis', async (ctx) => {
  await neverReads(ctx, ctx.s2);
});

test.run();
