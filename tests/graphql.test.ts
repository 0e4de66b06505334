/**
 * The GraphQL API the mobile app reads its history with, on PostgreSQL: cursor pagination,
 * who may see what (parties, their insurers' staff, everybody else), the limits that refuse
 * abusive documents, the number of SQL statements a page costs, and the schema file against
 * the running schema. Subscriptions are in graphql-subscriptions.test.ts.
 *
 * Constats for pagination and the statement count are written straight into `constats` (and
 * claim events into `constat_events`) with a client of the test's own: a real finalization
 * takes two devices and about a second, the pages need dozens of rows, and only direct rows
 * let a test choose `finalized_at` (order, and two constats within one millisecond). The
 * authorization matrix and the statement count start from a constat finalized for real (two
 * stock y-websocket devices, both signatures over GraphQL); the statement count pages through
 * copies of that real row.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { randomBytes, randomUUID } from 'node:crypto';
import postgres from 'postgres';
import { buildClientSchema, buildSchema, getIntrospectionQuery, printSchema } from 'graphql';
import {
  startTestServer,
  openPair,
  gql,
  token,
  type GraphQLResponse,
  type TestServer,
} from './support/server.js';
import {
  ABANDON_SESSION,
  errorCode,
  newDeviceKey,
  registerKey,
  signConstat,
  signHash,
  finalizeConstat,
  type Finalized,
} from './support/signing.js';
import {
  CONSTAT_ALL_FIELDS,
  SESSION_ALL_FIELDS,
  cloneConstat,
  insertConstats,
  insertEvent,
  leaksStack,
  viewersOf,
  type Viewer,
} from './support/graphql.js';
import { setUp } from './support/suite.js';

const PAGE = `query Page($first: Int, $after: String, $status: ConstatStatus) {
  constats(first: $first, after: $after, status: $status) {
    edges { cursor node { id status finalizedAt claims { insurer { uid } status claimNumber } } }
    pageInfo { hasNextPage endCursor }
  }
}`;

interface PageResult {
  ids: string[];
  nodes: Array<{ id: string; status: string; finalizedAt: string; claims: any[] }>;
  hasNextPage: boolean;
  endCursor: string | null;
}

async function page(
  url: string,
  bearer: string,
  vars: { first?: number; after?: string | null; status?: string },
): Promise<PageResult> {
  const res = await gql(url, bearer, PAGE, vars);
  if (res.errors) throw new Error(`constats failed: ${JSON.stringify(res.errors)}`);
  const c = res.data!.constats;
  return {
    ids: c.edges.map((e: any) => e.node.id),
    nodes: c.edges.map((e: any) => e.node),
    hasNextPage: c.pageInfo.hasNextPage,
    endCursor: c.pageInfo.endCursor,
  };
}

/** Every page of `first`, in order; `between(n)` runs after the n-th page (1-based). */
async function walk(
  url: string,
  bearer: string,
  first: number,
  opts: { status?: string; between?: (n: number) => Promise<void> } = {},
): Promise<{ ids: string[]; sizes: number[] }> {
  const ids: string[] = [];
  const sizes: number[] = [];
  let after: string | null = null;
  for (let n = 1; n <= 100; n++) {
    const p: PageResult = await page(url, bearer, {
      first,
      after,
      ...(opts.status ? { status: opts.status } : {}),
    });
    ids.push(...p.ids);
    sizes.push(p.ids.length);
    if (!p.hasNextPage) return { ids, sizes };
    assert.ok(p.endCursor, 'a page with a next page has an end cursor');
    after = p.endCursor;
    await opts.between?.(n);
  }
  throw new Error('more than 100 pages');
}

const tag = () => randomBytes(4).toString('hex');
const minutesAgo = (m: number) => new Date(Date.now() - m * 60_000);

function assertCode(res: GraphQLResponse<unknown>, code: string, what: string) {
  assert.ok(res.errors?.length, `${what}: refused (got ${JSON.stringify(res.data)})`);
  assert.is(errorCode(res), code, `${what}: ${JSON.stringify(res.errors)}`);
}

// =============================================================================================
// Pagination

interface PageCtx {
  server: TestServer;
  sql: postgres.Sql;
}

const pagination = suite<PageCtx>('graphql: pagination', {} as PageCtx);

setUp(pagination, async (ctx) => {
  ctx.server = await startTestServer({ database: 'postgres', hub: 'memory' });
  ctx.sql = postgres(ctx.server.databaseUrl!, { max: 2, onnotice: () => {} });
});
pagination.after(async (ctx) => {
  await ctx.sql?.end({ timeout: 5 });
  await ctx.server?.stop();
});

/**
 * Seven constats of one driver (party A of some, party B of others), a minute apart, plus
 * constats of other drivers around them. Returns the driver's ids newest first.
 */
async function seedDriver(ctx: PageCtx, driver: string, count = 7): Promise<string[]> {
  const rows = Array.from({ length: count }, (_, i) => ({
    partyA: i % 2 === 0 ? driver : `other-${tag()}`,
    partyB: i % 2 === 0 ? `other-${tag()}` : driver,
    finalizedAt: minutesAgo(60 - i),
  }));
  const ids = await insertConstats(ctx.sql, rows);
  // Someone else's constats, interleaved in time: never listed for the driver.
  await insertConstats(
    ctx.sql,
    Array.from({ length: 3 }, (_, i) => ({
      partyA: `noise-${tag()}`,
      partyB: `noise-${tag()}`,
      finalizedAt: minutesAgo(59.5 - i),
    })),
  );
  return ids.reverse();
}

pagination(
  'pages of 3 list every constat of the driver exactly once, newest first',
  async (ctx) => {
    const driver = `driver-${tag()}`;
    const expected = await seedDriver(ctx, driver);
    const bearer = await token(driver, 'phone');
    const { ids, sizes } = await walk(ctx.server.url, bearer, 3);
    assert.equal(sizes, [3, 3, 1]);
    assert.equal(ids, expected, 'all seven, newest first, none twice');
    const all = await page(ctx.server.url, bearer, { first: 50 });
    assert.equal(all.ids, expected, 'one page of 50 agrees');
    assert.is(all.hasNextPage, false);
    const stamps = all.nodes.map((n) => Date.parse(n.finalizedAt));
    assert.equal(
      stamps,
      [...stamps].sort((a, b) => b - a),
      'finalizedAt decreases',
    );
  },
);

pagination('constats finalized between page requests do not shift the pages', async (ctx) => {
  const driver = `driver-${tag()}`;
  const expected = await seedDriver(ctx, driver);
  const bearer = await token(driver, 'phone');
  const added: string[] = [];
  const { ids } = await walk(ctx.server.url, bearer, 3, {
    between: async (n) => {
      // New constats are finalized now, so they are newer than every page already read.
      added.push(
        ...(await insertConstats(ctx.sql, [
          { partyA: driver, partyB: `late-${n}-${tag()}` },
          { partyA: `late-${n}-${tag()}`, partyB: driver },
        ])),
      );
    },
  });
  assert.is(added.length, 4, 'constats were added after pages 1 and 2');
  assert.equal(ids, expected, 'the walk started before they came: each original once, in order');
  assert.is(new Set(ids).size, ids.length, 'no constat twice');
  const fresh = await page(ctx.server.url, bearer, { first: 4 });
  assert.equal(new Set(fresh.ids), new Set(added), 'a fresh first page starts with the new ones');
  const again = await walk(ctx.server.url, bearer, 3);
  assert.is(again.ids.length, 11);
  assert.is(new Set(again.ids).size, 11, 'a new walk sees all eleven once');
});

pagination('two constats finalized within the same millisecond are both listed', async (ctx) => {
  // finalized_at is a timestamptz (microseconds; the column defaults to now()), so an insurer
  // receiving many constats sees several within one millisecond.
  const driver = `driver-${tag()}`;
  const ids = await insertConstats(ctx.sql, [
    { partyA: driver, partyB: 'x', finalizedAt: '2025-03-14T17:45:00.123700Z' },
    { partyA: driver, partyB: 'y', finalizedAt: '2025-03-14T17:45:00.123400Z' },
    { partyA: driver, partyB: 'z', finalizedAt: '2025-03-14T17:45:00.100000Z' },
  ]);
  const bearer = await token(driver, 'phone');
  const { ids: seen } = await walk(ctx.server.url, bearer, 1);
  assert.equal(seen, ids, 'pages of one list all three, newest first');
});

pagination('a cursor is refused for anyone but the user it was given to', async (ctx) => {
  const driver = `driver-${tag()}`;
  const expected = await seedDriver(ctx, driver);
  const first = await page(ctx.server.url, await token(driver, 'phone'), { first: 3 });
  assert.ok(first.endCursor);
  // The same user on another device may continue.
  const sameUser = await page(ctx.server.url, await token(driver, 'tablet'), {
    first: 3,
    after: first.endCursor,
  });
  assert.equal(sameUser.ids, expected.slice(3, 6));
  for (const [who, bearer] of [
    ['another driver', await token(`other-${tag()}`, 'phone')],
    // Even staff of an insurer that may see the same constats.
    ['insurer staff', await token(`staff-${tag()}`, 'desk', { roles: ['insurer:saa'] })],
  ] as const) {
    const res = await gql(ctx.server.url, bearer, PAGE, { first: 3, after: first.endCursor });
    assertCode(res, 'BAD_USER_INPUT', who);
    assert.is(res.errors![0]!.extensions!.field, 'after', `${who}: names the argument`);
    assert.not.ok(res.data?.constats, `${who}: no page`);
  }
});

pagination('a garbled or tampered cursor is refused', async (ctx) => {
  const driver = `driver-${tag()}`;
  await seedDriver(ctx, driver);
  const bearer = await token(driver, 'phone');
  const { endCursor } = await page(ctx.server.url, bearer, { first: 3 });
  const [body, mac] = endCursor!.split('.') as [string, string];
  const decoded = Buffer.from(body, 'base64url').toString();
  const shifted = Buffer.from(decoded.replace(/^\d{4}/, '2099')).toString('base64url');
  for (const cursor of [
    'garbage',
    'not.base64!',
    '.',
    body, // no MAC
    `${body}.`,
    `${body}.${mac.slice(0, -2)}`, // truncated MAC
    `${shifted}.${mac}`, // another position under the old MAC
    `${body}.${Buffer.from(randomBytes(16)).toString('base64url')}`,
    Buffer.from(`2025-01-01T00:00:00.000Z|${randomUUID()}`).toString('base64url'),
    'x'.repeat(5_000),
  ]) {
    const res = await gql(ctx.server.url, bearer, PAGE, { first: 3, after: cursor });
    assertCode(res, 'BAD_USER_INPUT', `cursor ${cursor.slice(0, 40)}`);
    assert.not.ok(leaksStack(JSON.stringify(res)), 'no stack trace');
  }
});

pagination('the status filter follows the latest claim event', async (ctx) => {
  const driver = `driver-${tag()}`;
  const ids = await seedDriver(ctx, driver); // newest first
  const [inProgress, settled, aiOnly, rejected] = [ids[1]!, ids[3]!, ids[4]!, ids[6]!];
  const t = (m: number) => minutesAgo(m);
  await insertEvent(ctx.sql, {
    constatId: inProgress,
    type: 'dz.claim.received.v1',
    topic: 'saa',
    time: t(30),
    data: {},
  });
  await insertEvent(ctx.sql, {
    constatId: inProgress,
    type: 'dz.claim.opened.v1',
    topic: 'saa',
    time: t(20),
    data: { claimNumber: 'SAA-1' },
  });
  await insertEvent(ctx.sql, {
    constatId: settled,
    type: 'dz.claim.opened.v1',
    topic: 'saa',
    time: t(30),
    data: { claimNumber: 'SAA-2' },
  });
  await insertEvent(ctx.sql, {
    constatId: settled,
    type: 'dz.claim.settled.v1',
    topic: 'saa',
    time: t(10),
    data: { claimNumber: 'SAA-2', payment: { amount: 120000, currency: 'DZD' } },
  });
  await insertEvent(ctx.sql, {
    constatId: rejected,
    type: 'dz.claim.rejected.v1',
    topic: 'trust',
    time: t(10),
    data: { claimNumber: 'TR-9', reason: 'not covered' },
  });
  // An AI finding is not a claim event: the constat stays FINALIZED.
  await insertEvent(ctx.sql, {
    constatId: aiOnly,
    type: 'dz.ai.fraud_scored.v1',
    topic: 'ai-results',
    source: 'fraud-ai',
    time: t(5),
    data: { score: 0.1, signals: [] },
  });
  const bearer = await token(driver, 'phone');
  const url = ctx.server.url;

  const progress = await page(url, bearer, { first: 20, status: 'IN_PROGRESS' });
  assert.equal(progress.ids, [inProgress]);
  assert.is(progress.nodes[0]!.status, 'IN_PROGRESS');
  assert.equal(progress.nodes[0]!.claims, [
    { insurer: { uid: 'saa' }, status: 'IN_PROGRESS', claimNumber: 'SAA-1' },
  ]);

  const paid = await page(url, bearer, { first: 20, status: 'SETTLED' });
  assert.equal(paid.ids, [settled]);
  assert.equal(paid.nodes[0]!.claims, [
    { insurer: { uid: 'saa' }, status: 'SETTLED', claimNumber: 'SAA-2' },
  ]);

  assert.equal((await page(url, bearer, { first: 20, status: 'REJECTED' })).ids, [rejected]);
  assert.equal((await page(url, bearer, { first: 20, status: 'CLOSED' })).ids, []);

  const untouched = ids.filter((id) => ![inProgress, settled, rejected].includes(id));
  const finalized = await walk(url, bearer, 2, { status: 'FINALIZED' });
  assert.equal(finalized.ids, untouched, 'FINALIZED, paged by two, newest first');
  assert.ok(finalized.ids.includes(aiOnly));

  const everything = await page(url, bearer, { first: 20 });
  assert.equal(everything.ids, ids, 'no filter: all of them');
  const byId = new Map(everything.nodes.map((n) => [n.id, n.status]));
  assert.is(byId.get(inProgress), 'IN_PROGRESS');
  assert.is(byId.get(settled), 'SETTLED');
  assert.is(byId.get(rejected), 'REJECTED');
  assert.is(byId.get(aiOnly), 'FINALIZED');
});

pagination.run();

// =============================================================================================
// Authorization

interface AuthCtx {
  server: TestServer;
  constat: Finalized;
  who: Record<Who, string | undefined>;
}

type Who = Viewer | 'none';

const authz = suite<AuthCtx>('graphql: who sees what', {} as AuthCtx);

setUp(authz, async (ctx) => {
  ctx.server = await startTestServer({ database: 'postgres', hub: 'memory' });
  ctx.constat = await finalizeConstat(ctx.server); // vehicle A: saa, vehicle B: trust
  ctx.who = { ...(await viewersOf(ctx.constat)), none: undefined };
});
authz.after(async (ctx) => {
  await ctx.server?.stop();
});

const SEES_CONSTAT: Who[] = ['partyA', 'partyB', 'insurerA', 'insurerB'];
const NOT_CONSTAT: Who[] = ['otherInsurer', 'stranger'];

authz('constats (the list): the parties and their insurers, nobody else', async (ctx) => {
  for (const who of [...SEES_CONSTAT, ...NOT_CONSTAT]) {
    const res = await gql(
      ctx.server.url,
      ctx.who[who],
      `{ constats(first: 50) { edges { node { id } } } }`,
    );
    assert.not.ok(res.errors, `${who}: ${JSON.stringify(res.errors)}`);
    const ids = res.data!.constats.edges.map((e: any) => e.node.id);
    assert.equal(ids, SEES_CONSTAT.includes(who) ? [ctx.constat.constatId] : [], who);
  }
  const none = await gql(
    ctx.server.url,
    undefined,
    `{ constats(first: 5) { edges { node { id } } } }`,
  );
  assert.is(none.status, 401);
  assertCode(none, 'UNAUTHENTICATED', 'no token');
  assert.not.ok(none.data, 'no token: no data');
  const forged = await gql(
    ctx.server.url,
    await token('u', 'd', { secret: 'x'.repeat(40) }),
    `{ me { id } }`,
  );
  assert.is(forged.status, 401);
  assertCode(forged, 'UNAUTHENTICATED', 'a token signed with another key');
});

authz(
  'constat(id): the whole constat for the parties and their insurers, null for others',
  async (ctx) => {
    const query = `query($id: ID!) { constat(id: $id) { ${CONSTAT_ALL_FIELDS} } }`;
    const { constatId, sessionId, userA, userB } = ctx.constat;
    for (const who of SEES_CONSTAT) {
      const res = await gql(ctx.server.url, ctx.who[who], query, { id: constatId });
      assert.not.ok(res.errors, `${who}: ${JSON.stringify(res.errors)}`);
      const c = res.data!.constat;
      assert.is(c.id, constatId, who);
      assert.is(c.sessionId, sessionId);
      assert.is(c.status, 'FINALIZED');
      assert.match(c.contentHash, /^[0-9a-f]{64}$/);
      assert.equal(
        c.parties.map((p: any) => [p.role, p.userId, p.insurer?.uid]),
        [
          ['A', userA, 'saa'],
          ['B', userB, 'trust'],
        ],
      );
      assert.equal(
        c.vehicles.map((v: any) => v.vehicle.plate),
        ['12345-115-16', '987-114-31'],
      );
      assert.equal(
        c.signatures.map((s: any) => s.role),
        ['A', 'B'],
      );
    }
    for (const who of NOT_CONSTAT) {
      const res = await gql(ctx.server.url, ctx.who[who], query, { id: constatId });
      assert.not.ok(res.errors, `${who}: an unknown id is not an error`);
      assert.is(res.data!.constat, null, `${who}: the same answer as for an unknown id`);
    }
    for (const id of [randomUUID(), 'not-a-uuid', sessionId]) {
      const res = await gql(ctx.server.url, ctx.who.partyA, query, { id });
      assert.not.ok(res.errors, `unknown id ${id}`);
      assert.is(res.data!.constat, null, `unknown id ${id}`);
    }
    const none = await gql(ctx.server.url, undefined, query, { id: constatId });
    assert.is(none.status, 401);
    assertCode(none, 'UNAUTHENTICATED', 'no token');
  },
);

authz('session(id): only the two parties, never their insurers', async (ctx) => {
  const query = `query($id: ID!) { session(id: $id) { ${SESSION_ALL_FIELDS} } }`;
  const { sessionId, constatId } = ctx.constat;
  for (const [who, role] of [
    ['partyA', 'A'],
    ['partyB', 'B'],
  ] as const) {
    const res = await gql(ctx.server.url, ctx.who[who], query, { id: sessionId });
    assert.not.ok(res.errors, `${who}: ${JSON.stringify(res.errors)}`);
    const s = res.data!.session;
    assert.is(s.id, sessionId);
    assert.is(s.status, 'FINALIZED');
    assert.is(s.myRole, role);
    assert.is(s.constatId, constatId);
    assert.equal(
      s.parties.map((p: any) => p.role),
      ['A', 'B'],
    );
  }
  for (const who of ['insurerA', 'insurerB', 'otherInsurer', 'stranger'] as const) {
    const res = await gql(ctx.server.url, ctx.who[who], query, { id: sessionId });
    assert.not.ok(res.errors, `${who}: ${JSON.stringify(res.errors)}`);
    assert.is(res.data!.session, null, `${who}: null, as for an unknown id`);
  }
  // An open session too: only its parties.
  const open = await openPair(ctx.server.url);
  for (const [bearer, visible] of [
    [open.tokenA, true],
    [open.tokenB, true],
    [ctx.who.insurerA, false],
    [ctx.who.stranger, false],
  ] as const) {
    const res = await gql(ctx.server.url, bearer, query, { id: open.sessionId });
    assert.not.ok(res.errors, JSON.stringify(res.errors));
    assert.is(res.data!.session?.id ?? null, visible ? open.sessionId : null);
  }
  const none = await gql(ctx.server.url, undefined, query, { id: sessionId });
  assert.is(none.status, 401);
  assertCode(none, 'UNAUTHENTICATED', 'no token');
});

authz(
  "an insurer reads the constat but cannot sign or abandon its parties' sessions",
  async (ctx) => {
    const url = ctx.server.url;
    const staff = ctx.who.insurerA!;
    // The staff member even has a registered device key: what stops them is not being a party.
    const key = newDeviceKey();
    await registerKey(url, staff, key);
    const { sessionId, constatId } = ctx.constat;
    const before = await gql(
      url,
      ctx.who.partyA,
      `query($id: ID!) { constat(id: $id) { signatures { role signature } contentHash } }`,
      { id: constatId },
    );

    const hash = before.data!.constat.contentHash as string;
    for (const role of ['A', 'B'] as const) {
      const signed = await signConstat(
        url,
        staff,
        sessionId,
        hash,
        signHash(key, sessionId, role, hash),
      );
      assert.ok(signed.errors, `signing the finalized session as ${role} is refused`);
      assert.ok(
        ['FORBIDDEN', 'NOT_FOUND'].includes(errorCode(signed)!),
        `signConstat: ${JSON.stringify(signed.errors)}`,
      );
    }
    const abandoned = await gql(url, staff, ABANDON_SESSION, { sessionId });
    assertCode(abandoned, 'NOT_FOUND', 'abandonSession on the finalized session');

    // An open session of other drivers: no signing, no abandoning either.
    const open = await openPair(url);
    const openHash = 'a'.repeat(64);
    const signOpen = await signConstat(
      url,
      staff,
      open.sessionId,
      openHash,
      signHash(key, open.sessionId, 'A', openHash),
    );
    assert.ok(
      ['FORBIDDEN', 'NOT_FOUND'].includes(errorCode(signOpen)!),
      JSON.stringify(signOpen.errors),
    );
    assertCode(
      await gql(url, staff, ABANDON_SESSION, { sessionId: open.sessionId }),
      'NOT_FOUND',
      'abandon an open session',
    );
    const still = await gql(
      url,
      open.tokenA,
      `query($id: ID!) { session(id: $id) { status signatures { role } } }`,
      { id: open.sessionId },
    );
    assert.equal(
      still.data!.session,
      { status: 'ACTIVE', signatures: [] },
      'the open session is untouched',
    );

    const after = await gql(
      url,
      ctx.who.partyA,
      `query($id: ID!) { constat(id: $id) { signatures { role signature } contentHash } }`,
      { id: constatId },
    );
    assert.equal(after.data, before.data, 'the constat is unchanged');
  },
);

authz.run();

// =============================================================================================
// Limits

interface LimitCtx {
  server: TestServer;
  bearer: string;
  /** Every error response body seen, checked for stack traces at the end. */
  bodies: string[];
}

const limits = suite<LimitCtx>('graphql: abusive documents are refused', {
  bodies: [],
} as unknown as LimitCtx);

setUp(limits, async (ctx) => {
  ctx.server = await startTestServer({ database: 'postgres', hub: 'memory' });
  ctx.bearer = await token(`user-${tag()}`, 'phone');
});
limits.after(async (ctx) => {
  await ctx.server?.stop();
});

/** POSTs and records the raw body; returns the parsed response. */
async function post(
  ctx: LimitCtx,
  query: string,
  variables: Record<string, unknown> = {},
  bearer: string | undefined = ctx.bearer,
): Promise<GraphQLResponse & { text: string }> {
  const res = await fetch(`${ctx.server.url}/graphql`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(bearer ? { authorization: `Bearer ${bearer}` } : {}),
    },
    body: JSON.stringify({ query, variables }),
  });
  const text = await res.text();
  ctx.bodies.push(text);
  const body = JSON.parse(text) as { data?: any; errors?: GraphQLResponse['errors'] };
  return { status: res.status, data: body.data, errors: body.errors, text };
}

function refused(res: GraphQLResponse, code: string, what: string, message?: RegExp) {
  assertCode(res, code, what);
  assert.not.ok(res.data, `${what}: nothing executed`);
  if (message) assert.match(res.errors![0]!.message, message, what);
}

limits('too deep: a chain of fragments is refused however it is spread', async (ctx) => {
  // The schema itself has no cycle (its deepest selection has 7 levels), so depth needs
  // introspection's types; `ofType` chains are not what graphql-js's own introspection rule
  // counts, so this is the configured depth limit at work.
  const fragments = `
    fragment F1 on __Type { ofType { ofType { ...F2 } } }
    fragment F2 on __Type { ofType { ofType { ...F3 } } }
    fragment F3 on __Type { ofType { ofType { ...F4 } } }
    fragment F4 on __Type { ofType { ofType { ...F5 } } }
    fragment F5 on __Type { ofType { ofType { name } } }`;
  refused(
    await post(ctx, `{ __type(name: "Constat") { ...F1 } } ${fragments}`),
    'BAD_USER_INPUT',
    'fragments',
    /depth/i,
  );
  refused(
    await post(
      ctx,
      `{ t: __type(name: "Constat") { ... on __Type { k: ofType { ...F1 } } } } ${fragments}`,
    ),
    'BAD_USER_INPUT',
    'inline fragment and aliases',
    /depth/i,
  );
  // Within the limit: accepted.
  const ok = await post(
    ctx,
    `{ __type(name: "Constat") { ...F3 } } ${fragments
      .split('\n')
      .filter((l) => /F[345] on/.test(l))
      .join('\n')}`,
  );
  assert.not.ok(ok.errors, JSON.stringify(ok.errors));
  // The deepest real query (7 levels) passes.
  const real = await post(
    ctx,
    `{ constats(first: 1) { edges { node { vehicles { insurer { company { uid } } } } } } }`,
  );
  assert.not.ok(real.errors, JSON.stringify(real.errors));
});

limits('too deep: an introspection bomb is refused', async (ctx) => {
  let nested = 'name';
  for (let i = 0; i < 4; i++) nested = `name fields { type { ofType { ofType { ${nested} } } } }`;
  refused(
    await post(ctx, `{ __schema { types { ${nested} } } }`),
    'BAD_USER_INPUT',
    'introspection bomb',
  );
});

limits('too costly: many pages of every field are refused', async (ctx) => {
  const pages = Array.from(
    { length: 3 },
    (_, i) => `p${i}: constats(first: 50) { edges { node { ...All } } }`,
  ).join(' ');
  refused(
    await post(ctx, `{ ${pages} } fragment All on Constat { ${CONSTAT_ALL_FIELDS} }`),
    'BAD_USER_INPUT',
    'three full pages, literal page size',
    /cost/i,
  );
});

limits(
  'too costly: a page size passed as a variable costs as much as a literal one',
  async (ctx) => {
    // The same document as above with `first: $n`: what it makes the server do is the same.
    const pages = Array.from(
      { length: 3 },
      (_, i) => `p${i}: constats(first: $n) { edges { node { ...All } } }`,
    ).join(' ');
    refused(
      await post(
        ctx,
        `query($n: Int) { ${pages} } fragment All on Constat { ${CONSTAT_ALL_FIELDS} }`,
        { n: 50 },
      ),
      'BAD_USER_INPUT',
      'three full pages, page size in a variable',
      /cost/i,
    );
  },
);

limits(
  'a single page of 50 with every field is within the limits (literal page size)',
  async (ctx) => {
    // What the history screen may ask for: the schema allows 50 a page.
    const res = await post(
      ctx,
      `{ constats(first: 50) { edges { cursor node { ${CONSTAT_ALL_FIELDS} } } pageInfo { hasNextPage endCursor } } }`,
    );
    assert.not.ok(res.errors, JSON.stringify(res.errors));
    assert.ok(res.data?.constats);
  },
);

limits('too many aliases, directly or through fragments', async (ctx) => {
  const aliases = (n: number, p = 'a') =>
    Array.from({ length: n }, (_, i) => `${p}${i}: me { id }`).join(' ');
  refused(await post(ctx, `{ ${aliases(16)} }`), 'BAD_USER_INPUT', '16 aliases', /alias/i);
  refused(
    await post(
      ctx,
      `{ ...F ...G } fragment F on Query { ${aliases(8)} } fragment G on Query { ${aliases(8, 'b')} }`,
    ),
    'BAD_USER_INPUT',
    '16 aliases in two fragments',
    /alias/i,
  );
  const ok = await post(ctx, `{ ${aliases(15)} }`);
  assert.not.ok(ok.errors, '15 aliases are allowed');
});

limits('too many tokens', async (ctx) => {
  refused(
    await post(ctx, `{ ${'__typename '.repeat(2_100)} }`),
    'BAD_USER_INPUT',
    '2,100 tokens',
    /token/i,
  );
});

limits('a huge page is refused, whether literal or in a variable', async (ctx) => {
  refused(
    await post(ctx, `{ constats(first: 1000) { edges { node { id } } } }`),
    'BAD_USER_INPUT',
    'first: 1000',
  );
  for (const first of [1000, 51, 0, -1]) {
    const res = await post(
      ctx,
      `query($n: Int) { constats(first: $n) { edges { node { id } } } }`,
      { n: first },
    );
    refused(res, 'BAD_USER_INPUT', `first = ${first}`);
    assert.is(res.errors![0]!.extensions!.field, 'first');
  }
  const max = await post(ctx, `query($n: Int) { constats(first: $n) { edges { node { id } } } }`, {
    n: 50,
  });
  assert.not.ok(max.errors, '50 is allowed');
});

limits('an oversized document is refused with 413 TOO_LARGE, however it is sent', async (ctx) => {
  const url = `${ctx.server.url}/graphql`;
  const filler = 'x'.repeat(70_000); // GRAPHQL_MAX_BODY_BYTES defaults to 64 KiB
  const check = async (res: Response, what: string) => {
    const text = await res.text();
    ctx.bodies.push(text);
    assert.is(res.status, 413, what);
    const body = JSON.parse(text);
    assert.is(body.errors?.[0]?.extensions?.code, 'TOO_LARGE', `${what}: ${text}`);
  };
  const headers = { 'content-type': 'application/json', authorization: `Bearer ${ctx.bearer}` };
  await check(
    await fetch(url, {
      method: 'POST',
      headers,
      body: JSON.stringify({ query: `{ me { id } } # ${filler}` }),
    }),
    'with Content-Length',
  );
  const chunks = [
    `{"query":"{ me { id } } #`,
    ...Array.from({ length: 7 }, () => 'x'.repeat(10_000)),
    '"}',
  ];
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      for (const c of chunks) controller.enqueue(new TextEncoder().encode(c));
      controller.close();
    },
  });
  await check(
    await fetch(url, { method: 'POST', headers, body: stream, duplex: 'half' } as RequestInit),
    'chunked, without Content-Length',
  );
  // Just under the limit: parsed and run.
  const near = await post(ctx, `{ me { id } } # ${'x'.repeat(60_000)}`);
  assert.not.ok(near.errors, JSON.stringify(near.errors));
});

limits('GRAPHQL_MAX_BODY_BYTES sets the limit, for a POST body and for a GET URL', async () => {
  const server = await startTestServer({
    database: 'postgres',
    hub: 'memory',
    env: { GRAPHQL_MAX_BODY_BYTES: '2048' },
  });
  try {
    const bearer = await token('someone', 'phone');
    const query = (pad: number) => `{ me { id } } # ${'x'.repeat(pad)}`;
    const get = (q: string) =>
      fetch(`${server.url}/graphql?query=${encodeURIComponent(q)}`, {
        headers: { authorization: `Bearer ${bearer}` },
      });
    for (const [what, res] of [
      ['POST', await gql(server.url, bearer, query(2_500))],
      [
        'GET',
        await get(query(2_500)).then(async (r) => ({ status: r.status, ...(await r.json()) })),
      ],
    ] as const) {
      assert.is(res.status, 413, what);
      assert.is(res.errors?.[0]?.extensions?.code, 'TOO_LARGE', `${what}: ${JSON.stringify(res)}`);
    }
    const small = await get(query(100));
    assert.is(small.status, 200);
    assert.equal(await small.json(), { data: { me: { id: 'someone' } } });
  } finally {
    await server.stop();
  }
});

limits('syntax errors, unknown fields and bad variables are BAD_USER_INPUT', async (ctx) => {
  refused(await post(ctx, `{ me { id `), 'BAD_USER_INPUT', 'unterminated', /Syntax Error/);
  refused(
    await post(ctx, `query { constats(first: ) { edges } }`),
    'BAD_USER_INPUT',
    'missing value',
  );
  refused(await post(ctx, `{ me { password } }`), 'BAD_USER_INPUT', 'unknown field', /password/);
  refused(
    await post(ctx, `{ constats(last: 3) { edges { node { id } } } }`),
    'BAD_USER_INPUT',
    'unknown argument',
  );
  refused(await post(ctx, `{ constat(id: "x") }`), 'BAD_USER_INPUT', 'object without selection');
  refused(
    await post(ctx, `query($id: ID!) { constat(id: $id) { id } }`),
    'BAD_USER_INPUT',
    'missing variable',
  );
  refused(
    await post(ctx, `query($n: Int) { constats(first: $n) { edges { node { id } } } }`, {
      n: 'many',
    }),
    'BAD_USER_INPUT',
    'a variable of the wrong type',
  );
  refused(
    await post(ctx, `query($s: ConstatStatus) { constats(status: $s) { edges { node { id } } } }`, {
      s: 'PAID',
    }),
    'BAD_USER_INPUT',
    'an unknown enum value in a variable',
  );
});

limits('malformed requests carry a contract code too', async (ctx) => {
  const url = `${ctx.server.url}/graphql`;
  const headers = { 'content-type': 'application/json', authorization: `Bearer ${ctx.bearer}` };
  for (const [what, body] of [
    ['invalid JSON', '{"query": '],
    ['no query', '{"nope": 1}'],
    [
      'two operations, none named',
      JSON.stringify({ query: 'query A { me { id } } query B { me { id } }' }),
    ],
  ] as const) {
    const res = await fetch(url, { method: 'POST', headers, body });
    const text = await res.text();
    ctx.bodies.push(text);
    assert.ok(res.status < 500, `${what}: a client error (${res.status})`);
    const error = JSON.parse(text).errors?.[0];
    // The contract lists the codes a client must handle; Yoga's own ones are not among them.
    assert.is(error?.extensions?.code, 'BAD_USER_INPUT', `${what}: ${text}`);
    assert.not.ok(error?.extensions?.originalError, `${what}: no internals (${text})`);
  }
});

limits('no error response carries a stack trace', (ctx) => {
  assert.ok(ctx.bodies.length > 20, `errors were collected (${ctx.bodies.length})`);
  for (const body of ctx.bodies) {
    assert.not.ok(leaksStack(body), `no stack trace or source path in ${body.slice(0, 300)}`);
  }
});

limits('introspection is on by default outside production', async (ctx) => {
  const res = await post(
    ctx,
    `{ __schema { queryType { name } } __type(name: "Constat") { name } }`,
  );
  assert.not.ok(res.errors, JSON.stringify(res.errors));
  assert.equal(res.data, {
    __schema: { queryType: { name: 'Query' } },
    __type: { name: 'Constat' },
  });
});

limits(
  'introspection is off with GRAPHQL_INTROSPECTION=false and with NODE_ENV=production',
  async () => {
    // Production also asks for the expected issuer and audience, and a public URL.
    const issued = { issuer: 'https://id.example', audience: 'constat' };
    const envs: Array<Record<string, string>> = [
      { GRAPHQL_INTROSPECTION: 'false' },
      {
        NODE_ENV: 'production',
        AUTH_JWT_ISSUER: issued.issuer,
        AUTH_JWT_AUDIENCE: issued.audience,
        PUBLIC_URL: 'https://constat.example',
      },
    ];
    for (const env of envs) {
      const server = await startTestServer({ database: 'postgres', hub: 'memory', env });
      try {
        const bearer = await token('someone', 'phone', issued);
        for (const query of [
          `{ __schema { queryType { name } } }`,
          `{ __type(name: "Constat") { name } }`,
          getIntrospectionQuery(),
        ]) {
          const res = await gql(server.url, bearer, query);
          assertCode(res, 'BAD_USER_INPUT', `${JSON.stringify(env)}: ${query.slice(0, 30)}`);
          assert.not.ok(res.data, 'nothing returned');
          assert.not.ok(leaksStack(JSON.stringify(res)));
        }
        // Ordinary queries (and __typename) still work.
        const ok = await gql(server.url, bearer, `{ __typename me { id } }`);
        assert.not.ok(ok.errors, JSON.stringify(ok.errors));
        assert.equal(ok.data, { __typename: 'Query', me: { id: 'someone' } });
      } finally {
        await server.stop();
      }
    }
  },
);

limits('the schema file is the schema the server runs', async (ctx) => {
  const res = await gql(ctx.server.url, ctx.bearer, getIntrospectionQuery());
  assert.not.ok(res.errors, JSON.stringify(res.errors));
  const running = printSchema(buildClientSchema(res.data as any));
  const file = printSchema(
    buildSchema(readFileSync(new URL('../server/graphql/schema.graphql', import.meta.url), 'utf8')),
  );
  assert.fixture(running, file);
});

limits.run();

// =============================================================================================
// SQL statements per page

interface SqlCtx {
  server: TestServer;
  sql: postgres.Sql;
  bearer: string;
}

const statements = suite<SqlCtx>('graphql: SQL statements per page', {} as SqlCtx);

setUp(statements, async (ctx) => {
  // The in-process hub: no compactor writing drafts in the background.
  ctx.server = await startTestServer({ database: 'postgres', hub: 'memory' });
  ctx.sql = postgres(ctx.server.databaseUrl!, { max: 2, onnotice: () => {} });
  const real = await finalizeConstat(ctx.server);
  await cloneConstat(ctx.sql, real.constatId, 59); // 60 constats of the same two drivers
  const ids = (await ctx.sql<{ id: string }[]>`select id from constats`).map((r) => r.id);
  // A timeline on every third: claim events from both insurers and AI findings.
  for (const [i, id] of ids.entries()) {
    if (i % 3 !== 0) continue;
    await insertEvent(ctx.sql, {
      constatId: id,
      type: 'dz.claim.opened.v1',
      topic: 'saa',
      data: { claimNumber: `S-${i}` },
    });
    await insertEvent(ctx.sql, {
      constatId: id,
      type: 'dz.claim.received.v1',
      topic: 'trust',
      data: {},
    });
    // A finding drivers may see (fraud scores are for insurers only).
    await insertEvent(ctx.sql, {
      constatId: id,
      type: 'dz.ai.cost_estimated.v1',
      topic: 'ai-results',
      source: 'constat-ai-cost',
      data: { estimates: [{ vehicle: 'A', amount: 42_000, currency: 'DZD' }] },
    });
  }
  ctx.bearer = real.tokenA;
});
statements.after(async (ctx) => {
  await ctx.sql?.end({ timeout: 5 });
  await ctx.server?.stop();
});

// The page size as a variable: with a literal `first: 50` this document is refused by the cost
// limit (see the limits suite).
const FULL_PAGE = `query($n: Int) { constats(first: $n) { edges { cursor node { ${CONSTAT_ALL_FIELDS} } } pageInfo { hasNextPage endCursor } } }`;

/**
 * Statements one request costs: the smallest of three differences of the server's counter
 * around it (the minimum dodges background work: expiry sweeps, registry refreshes). The
 * counter is read in process: a scrape of /metrics runs queries of its own, counted or not in
 * the same scrape depending on how its collectors interleave.
 */
async function statementsFor(ctx: SqlCtx, n: number): Promise<number> {
  const counter = async () =>
    (await ctx.server.server.metrics.sqlStatements.get()).values[0]!.value;
  const counts: number[] = [];
  for (let i = 0; i < 3; i++) {
    const before = await counter();
    const res = await gql(ctx.server.url, ctx.bearer, FULL_PAGE, { n });
    const after = await counter();
    if (res.errors) throw new Error(`page of ${n} failed: ${JSON.stringify(res.errors)}`);
    assert.is(res.data!.constats.edges.length, n, `a page of ${n}`);
    counts.push(after - before);
  }
  return Math.min(...counts);
}

statements('a page of 50 with every field costs at most 3 SQL statements', async (ctx) => {
  const res = await gql(ctx.server.url, ctx.bearer, FULL_PAGE, { n: 50 });
  assert.not.ok(res.errors, JSON.stringify(res.errors));
  const nodes = res.data!.constats.edges.map((e: any) => e.node);
  assert.is(nodes.length, 50);
  assert.ok(
    nodes.some((n: any) => n.claims.length === 2 && n.aiFindings.length === 1),
    'timelines are read',
  );
  assert.ok(
    nodes.every((n: any) => n.vehicles[0].circumstances.length === 1),
    'labels are resolved',
  );
  const count = await statementsFor(ctx, 50);
  console.log(`  SQL statements for a page of 50 constats with every field: ${count}`);
  assert.ok(count >= 1, 'the counter counts');
  assert.ok(count <= 3, `at most 3 statements, got ${count}`);
});

statements('the statement count does not grow with the page size', async (ctx) => {
  const five = await statementsFor(ctx, 5);
  const fifty = await statementsFor(ctx, 50);
  console.log(`  SQL statements: page of 5 → ${five}, page of 50 → ${fifty}`);
  assert.is(fifty, five);
});

statements.run();
