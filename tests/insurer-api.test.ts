/**
 * The insurers' REST API on a real server (PostgreSQL): client credentials with a signed JWT
 * client assertion (made here with `jose` and the private key `constat companies credentials`
 * printed), claim events signed with the `standardwebhooks` reference library, and the
 * polling read API.
 *
 * Proves: a token only for a fresh, well-addressed assertion (replays and other audiences
 * refused); events go through the Kafka consumer's rules — valid (202), duplicate (200), forged
 * or missing signature (401), another company's path or `source` (403), unknown constat (404),
 * a constat the company does not insure (409), bad schema (400 with the errors); a revoked
 * client is refused at once; `GET …/constats?since=` pages the company's own constats with a
 * cursor, and the detail has the content and attachments, for its own constats only.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { randomUUID } from 'node:crypto';
import postgres from 'postgres';
import { importJWK, SignJWT, type JWK } from 'jose';
import { Webhook } from 'standardwebhooks';
import { startTestServer, type TestServer } from './support/server.js';
import { eventually, finalizeConstat, type Finalized } from './support/signing.js';
import { setUp } from './support/suite.js';
import { runCompanies } from '../scripts/companies.js';

interface Client {
  company: string;
  clientId: string;
  secret: string;
  privateJwk: JWK;
}

interface Ctx {
  server: TestServer;
  sql: postgres.Sql;
  constat: Finalized;
  clients: Record<string, Client>;
}

const test = suite<Ctx>('insurer-api', { clients: {} } as Ctx);

async function credentials(ctx: Ctx, company: string): Promise<Client> {
  const lines: string[] = [];
  await runCompanies(['credentials', company], ctx.sql, (l) => lines.push(l));
  const text = lines.join('\n');
  return {
    company,
    clientId: /client_id: (\S+)/.exec(text)![1]!,
    secret: /(whsec_\S+)/.exec(text)![1]!,
    privateJwk: JSON.parse(/private key \(JWK[^:]*: (\{.*\})/.exec(text)![1]!) as JWK,
  };
}

async function assertion(ctx: Ctx, client: Client, opts: { audience?: string; jti?: string } = {}) {
  return new SignJWT({})
    .setProtectedHeader({ alg: 'ES256' })
    .setIssuer(client.clientId)
    .setSubject(client.clientId)
    .setAudience(opts.audience ?? `${ctx.server.url}/v1/oauth/token`)
    .setJti(opts.jti ?? randomUUID())
    .setIssuedAt()
    .setExpirationTime('2m')
    .sign(await importJWK(client.privateJwk, 'ES256'));
}

function requestToken(ctx: Ctx, jwt: string) {
  return fetch(`${ctx.server.url}/v1/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'client_credentials',
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: jwt,
    }),
  });
}

async function token(ctx: Ctx, client: Client): Promise<string> {
  const res = await requestToken(ctx, await assertion(ctx, client));
  assert.is(res.status, 200, await res.clone().text());
  return ((await res.json()) as { access_token: string }).access_token;
}

function claimEvent(constatId: string, source: string, overrides: Record<string, unknown> = {}) {
  return {
    specversion: '1.0',
    id: randomUUID(),
    source,
    type: 'dz.claim.opened.v1',
    subject: constatId,
    time: new Date().toISOString(),
    datacontenttype: 'application/json',
    dataschema: 'urn:constat:schema:dz.claim.opened.v1',
    data: { claimNumber: 'SAA-2026-000001', note: 'Dossier ouvert' },
    ...overrides,
  };
}

/** POSTs an event as the insurer would: bearer token, Standard Webhooks signature on the body. */
async function postEvent(
  ctx: Ctx,
  client: Client,
  event: unknown,
  opts: { path?: string; secret?: string; unsigned?: boolean } = {},
) {
  const body = JSON.stringify(event);
  const id = `msg_${randomUUID()}`;
  const now = new Date();
  const headers: Record<string, string> = {
    authorization: `Bearer ${await token(ctx, client)}`,
    'content-type': 'application/cloudevents+json',
  };
  if (!opts.unsigned) {
    headers['webhook-id'] = id;
    headers['webhook-timestamp'] = String(Math.floor(now.getTime() / 1000));
    headers['webhook-signature'] = new Webhook(opts.secret ?? client.secret).sign(id, now, body);
  }
  const res = await fetch(`${ctx.server.url}/v1/insurers/${opts.path ?? client.company}/events`, {
    method: 'POST',
    headers,
    body,
  });
  return { status: res.status, body: (await res.json()) as Record<string, string> };
}

setUp(test, async (ctx) => {
  ctx.server = await startTestServer({ database: 'postgres', hub: 'memory' });
  ctx.sql = postgres(ctx.server.databaseUrl!, { max: 3, onnotice: () => {} });
  ctx.constat = await finalizeConstat(ctx.server); // A insured by saa, B by trust
  for (const company of ['saa', 'trust', 'caar'])
    ctx.clients[company] = await credentials(ctx, company);
});

test.after(async (ctx) => {
  await ctx.sql?.end({ timeout: 5 });
  await ctx.server?.stop();
});

test('a token for a fresh assertion only: replays and other audiences are refused', async (ctx) => {
  const saa = ctx.clients.saa!;
  const jwt = await assertion(ctx, saa);
  assert.is((await requestToken(ctx, jwt)).status, 200);
  const replay = await requestToken(ctx, jwt);
  assert.is(replay.status, 401);
  assert.is(((await replay.json()) as { error: string }).error, 'invalid_client');
  const elsewhere = await requestToken(
    ctx,
    await assertion(ctx, saa, { audience: 'https://other.example/token' }),
  );
  assert.is(elsewhere.status, 401);
  // Signed by another client's key under saa's id.
  const forged = await new SignJWT({})
    .setProtectedHeader({ alg: 'ES256' })
    .setIssuer(saa.clientId)
    .setSubject(saa.clientId)
    .setAudience(`${ctx.server.url}/v1/oauth/token`)
    .setJti(randomUUID())
    .setExpirationTime('2m')
    .sign(await importJWK(ctx.clients.trust!.privateJwk, 'ES256'));
  assert.is((await requestToken(ctx, forged)).status, 401);
  const noToken = await fetch(`${ctx.server.url}/v1/insurers/saa/constats`);
  assert.is(noToken.status, 401);
});

test('a valid claim event is accepted once, then answered as a duplicate', async (ctx) => {
  const event = claimEvent(ctx.constat.constatId, 'saa');
  const first = await postEvent(ctx, ctx.clients.saa!, event);
  assert.is(first.status, 202, JSON.stringify(first.body));
  assert.is(first.body.status, 'accepted');
  const rows = await ctx.sql<{ topic: string; source: string }[]>`
    select topic, source from constat_events where event_id = ${event.id}`;
  assert.equal(
    rows.map((r) => ({ ...r })),
    [{ topic: 'saa', source: 'saa' }],
  );
  const again = await postEvent(ctx, ctx.clients.saa!, event);
  assert.is(again.status, 200);
  assert.is(again.body.status, 'duplicate');
});

test('forged or missing body signatures are refused', async (ctx) => {
  const event = claimEvent(ctx.constat.constatId, 'saa');
  const forged = await postEvent(ctx, ctx.clients.saa!, event, {
    secret: ctx.clients.trust!.secret,
  });
  assert.is(forged.status, 401);
  assert.is(forged.body.error && JSON.stringify(forged.body).includes('BAD_SIGNATURE'), true);
  assert.is((await postEvent(ctx, ctx.clients.saa!, event, { unsigned: true })).status, 401);
  const stored = await ctx.sql`select 1 from constat_events where event_id = ${event.id}`;
  assert.is(stored.length, 0);
});

test('another company: its path is 403, a `source` that is not the caller is 403', async (ctx) => {
  const asTrust = await postEvent(
    ctx,
    ctx.clients.saa!,
    claimEvent(ctx.constat.constatId, 'trust'),
    {
      path: 'trust',
    },
  );
  assert.is(asTrust.status, 403);
  const lying = await postEvent(ctx, ctx.clients.saa!, claimEvent(ctx.constat.constatId, 'trust'));
  assert.is(lying.status, 403);
  assert.is(lying.body.reason, 'source-mismatch');
});

test('an unknown constat is 404; a constat the company does not insure is 409', async (ctx) => {
  const unknown = await postEvent(ctx, ctx.clients.saa!, claimEvent(randomUUID(), 'saa'));
  assert.is(unknown.status, 404);
  assert.is(unknown.body.reason, 'unknown-constat');
  const notInsured = await postEvent(
    ctx,
    ctx.clients.caar!,
    claimEvent(ctx.constat.constatId, 'caar'),
  );
  assert.is(notInsured.status, 409);
  assert.is(notInsured.body.reason, 'not-an-insurer-of-the-constat');
});

test('a bad schema is 400 with the errors', async (ctx) => {
  const bad = await postEvent(
    ctx,
    ctx.clients.saa!,
    claimEvent(ctx.constat.constatId, 'saa', { data: { note: 42 } }),
  );
  assert.is(bad.status, 400);
  assert.is(bad.body.reason, 'schema-violation');
  assert.match(bad.body.error!, /claimNumber|note/);
  const notJson = await postEvent(ctx, ctx.clients.saa!, 'not an event');
  assert.is(notJson.status, 400);
});

test('polling: the company pages its own constats with a cursor; the detail has the content', async (ctx) => {
  const bearer = { authorization: `Bearer ${await token(ctx, ctx.clients.trust!)}` };
  const page = await eventually(
    async () => {
      const res = await fetch(`${ctx.server.url}/v1/insurers/trust/constats?limit=10`, {
        headers: bearer,
      });
      const body = (await res.json()) as { constats: Array<{ id: string }>; next: string | null };
      return body.constats.some((c) => c.id === ctx.constat.constatId) ? body : undefined;
    },
    30_000,
    'the constat never appeared in the feed',
  );
  assert.ok(page.next);
  const after = (await (
    await fetch(
      `${ctx.server.url}/v1/insurers/trust/constats?since=${encodeURIComponent(page.next!)}`,
      {
        headers: bearer,
      },
    )
  ).json()) as { constats: unknown[]; next: string };
  assert.equal(after.constats, [], 'nothing after the last position');
  assert.is(after.next, page.next, 'the position stays where it was');
  const detail = await fetch(
    `${ctx.server.url}/v1/insurers/trust/constats/${ctx.constat.constatId}`,
    { headers: bearer },
  );
  assert.is(detail.status, 200);
  const constat = (await detail.json()) as {
    contentHash: string;
    attachments: unknown[];
    content: object;
  };
  assert.is(constat.contentHash, ctx.constat.hash);
  assert.ok(Array.isArray(constat.attachments));
  assert.ok('vehicleB' in constat.content);

  const caar = { authorization: `Bearer ${await token(ctx, ctx.clients.caar!)}` };
  const theirs = await fetch(
    `${ctx.server.url}/v1/insurers/caar/constats/${ctx.constat.constatId}`,
    {
      headers: caar,
    },
  );
  assert.is(theirs.status, 404, 'another insurer’s constat is not found');
  const list = (await (
    await fetch(`${ctx.server.url}/v1/insurers/caar/constats`, { headers: caar })
  ).json()) as {
    constats: unknown[];
  };
  assert.equal(list.constats, []);
  // A cursor sealed for trust means nothing to caar.
  const stolen = await fetch(
    `${ctx.server.url}/v1/insurers/caar/constats?since=${encodeURIComponent(page.next!)}`,
    { headers: caar },
  );
  assert.is(stolen.status, 400);
});

test('a revoked client is refused at once, its token included', async (ctx) => {
  const client = await credentials(ctx, 'saa');
  const bearer = await token(ctx, client);
  await runCompanies(['revoke-client', client.clientId], ctx.sql, () => {});
  const res = await fetch(`${ctx.server.url}/v1/insurers/saa/constats`, {
    headers: { authorization: `Bearer ${bearer}` },
  });
  assert.is(res.status, 401);
  assert.is((await requestToken(ctx, await assertion(ctx, client))).status, 401);
});

test.run();
