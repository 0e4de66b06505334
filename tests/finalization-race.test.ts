/**
 * Exactly-once finalization across instances: two real `constat serve` processes on one
 * PostgreSQL database and one Redis (a key prefix of this suite's own, deleted afterwards).
 * Twenty identical signatures of party B hit both instances at once, and in a second case A
 * and B sign at the same moment on different instances. Whatever the interleaving, there must
 * be one constat, one outbox row per topic, a clean answer to every call and the same constat
 * id on both devices.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { GraphQLResponse, ServerProcess } from './support/server.js';
import { waitFor, type Device } from './support/device.js';
import { startCluster, type Cluster } from './support/cluster.js';
import {
  eventually,
  prepareSigning,
  sessionView,
  signConstat,
  type ReadyToSign,
  type SessionView,
} from './support/signing.js';
import { setUp } from './support/suite.js';

interface Ctx {
  cluster: Cluster;
  servers: ServerProcess[];
  devices: Device[];
}

const test = suite<Ctx>('finalization race (2 instances)', {
  servers: [],
  devices: [],
} as unknown as Ctx);

setUp(test, async (ctx) => {
  ctx.cluster = await startCluster('race');
  ctx.servers = await ctx.cluster.start(2);
});
test.after.each((ctx) => {
  for (const d of ctx.devices.splice(0)) d.destroy();
});
test.after(async (ctx) => {
  await ctx.cluster?.stop();
});

type Signed = ReadyToSign;

/**
 * A session with A's device on instance `onA`, B's on `onB`, the form complete and both keys
 * registered, the hash read back from both instances.
 */
const prepare = (ctx: Ctx, onA: ServerProcess, onB: ServerProcess): Promise<Signed> =>
  prepareSigning(ctx.servers, ctx.devices, onA, onB, 5_000);

/** Every answer is FINALIZED/ACTIVE or an error with a code that is not an internal error. */
function tally(
  results: Array<GraphQLResponse<{ signConstat: SessionView }>>,
): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of results) {
    let outcome: string;
    if (r.errors) {
      const code = r.errors[0]?.extensions?.code;
      assert.ok(code, `an error without extensions.code: ${JSON.stringify(r.errors)}`);
      assert.is.not(code, 'INTERNAL_SERVER_ERROR', JSON.stringify(r.errors));
      outcome = code!;
    } else {
      outcome = r.data!.signConstat.status;
      assert.ok(['FINALIZED', 'ACTIVE'].includes(outcome), outcome);
    }
    counts[outcome] = (counts[outcome] ?? 0) + 1;
  }
  return counts;
}

/** One constat for the session, one outbox row per topic, both devices told the same id. */
async function assertFinalizedOnce(ctx: Ctx, s: Signed): Promise<string> {
  const constatId = await eventually(
    () => {
      const event = s.devices.A.events.find((e) => e.type === 'finalized');
      return event?.type === 'finalized' ? event.constatId : undefined;
    },
    10_000,
    'device A was not told the constat is finalized',
  );
  await waitFor(
    () => s.devices.B.events.some((e) => e.type === 'finalized'),
    10_000,
    'device B was not told the constat is finalized',
  );
  for (const role of ['A', 'B'] as const) {
    const d = s.devices[role];
    const told = d.events.filter((e) => e.type === 'finalized');
    assert.is(told.length, 1, `device ${role} told once`);
    assert.is((told[0] as { constatId: string }).constatId, constatId, `device ${role}: same id`);
    await waitFor(() => d.closes.length > 0, 5_000, `device ${role} not closed`);
    assert.is(d.closes[0]!.code, 4409);
  }
  const sql = ctx.cluster.db!.sql;
  const constats = await sql`select id from constats where session_id = ${s.sessionId}`;
  assert.equal(
    constats.map((r) => r.id),
    [constatId],
  );
  const outbox = await sql<{ topic: string; n: number }[]>`
    select topic, count(*)::int as n from outbox
    where payload -> 'data' ->> 'sessionId' = ${s.sessionId}
    group by topic order by topic
  `;
  assert.equal(
    outbox.map((r) => [r.topic, r.n]),
    [
      ['constats', 1],
      ['saa', 1],
      ['trust', 1],
    ],
  );
  for (const server of ctx.servers) {
    const v = await sessionView(server.url, s.tokens.A, s.sessionId);
    assert.is(v!.status, 'FINALIZED');
    assert.is(v!.constatId, constatId);
  }
  return constatId;
}

function assertNoInternalErrors(ctx: Ctx): void {
  for (const server of ctx.servers) {
    assert.not.match(server.output(), /unexpected error in a GraphQL operation/);
  }
}

test('20 concurrent signConstat of B across both instances: exactly one constat', async (ctx) => {
  const [one, two] = ctx.servers as [ServerProcess, ServerProcess];
  const s = await prepare(ctx, one, two);
  const first = await signConstat(one.url, s.tokens.A, s.sessionId, s.hash, s.signature('A'));
  assert.not.ok(first.errors, JSON.stringify(first.errors));
  assert.is(first.data!.signConstat.status, 'ACTIVE');

  const signature = s.signature('B');
  const results = await Promise.all(
    Array.from({ length: 20 }, (_, i) =>
      signConstat((i % 2 === 0 ? one : two).url, s.tokens.B, s.sessionId, s.hash, signature),
    ),
  );
  const counts = tally(results);
  assert.ok((counts.FINALIZED ?? 0) + (counts.ACTIVE ?? 0) >= 1, JSON.stringify(counts));
  const constatId = await assertFinalizedOnce(ctx, s);
  for (const r of results) {
    if (r.data?.signConstat.status === 'FINALIZED')
      assert.is(r.data.signConstat.constatId, constatId);
  }
  console.log(`20 concurrent signatures of B: ${JSON.stringify(counts)}`);
  assertNoInternalErrors(ctx);
});

test('A and B sign at the same moment on different instances (5 sessions)', async (ctx) => {
  const [one, two] = ctx.servers as [ServerProcess, ServerProcess];
  const all: Record<string, number> = {};
  for (let i = 0; i < 5; i++) {
    // Alternate where the devices sit and where each signature is sent.
    const [devA, devB] = i % 2 === 0 ? [one, two] : [two, one];
    const [viaA, viaB] = i % 3 === 0 ? [devA, devB] : [devB, devA];
    const s = await prepare(ctx, devA, devB);
    const results = await Promise.all([
      signConstat(viaA.url, s.tokens.A, s.sessionId, s.hash, s.signature('A')),
      signConstat(viaB.url, s.tokens.B, s.sessionId, s.hash, s.signature('B')),
    ]);
    for (const r of results) assert.not.ok(r.errors, JSON.stringify(r.errors));
    for (const [k, n] of Object.entries(tally(results))) all[k] = (all[k] ?? 0) + n;
    await assertFinalizedOnce(ctx, s);
    for (const d of ctx.devices.splice(0)) d.destroy();
  }
  console.log(`simultaneous A/B signatures, 5 sessions: ${JSON.stringify(all)}`);
  assertNoInternalErrors(ctx);
});

test.run();
