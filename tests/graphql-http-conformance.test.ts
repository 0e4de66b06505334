/**
 * GraphQL over HTTP conformance of `/graphql`, checked by the reference audit suite
 * (`graphql-http`'s `serverAudits`, every MUST and SHOULD) against a real server, with a valid
 * bearer token on every request (the API has no anonymous access). A failing audit is reported
 * with its name and reason. Also the media type rules the audits do not cover.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { serverAudits } from 'graphql-http';
import { startTestServer, token, type TestServer } from './support/server.js';
import { setUp } from './support/suite.js';

interface Ctx {
  server: TestServer;
  bearer: string;
}

const test = suite<Ctx>('GraphQL over HTTP conformance', {} as Ctx);

setUp(test, async (ctx) => {
  ctx.server = await startTestServer({ database: 'postgres', hub: 'memory' });
  ctx.bearer = await token('auditor', 'desk');
});
test.after(async (ctx) => {
  await ctx.server?.stop();
});

test('every audit of graphql-http passes (MUST and SHOULD)', async (ctx) => {
  const fetchFn = (input: RequestInfo | URL, init: RequestInit = {}) => {
    const headers = new Headers(init.headers);
    headers.set('authorization', `Bearer ${ctx.bearer}`);
    return fetch(input, { ...init, headers });
  };
  const audits = serverAudits({ url: `${ctx.server.url}/graphql`, fetchFn });
  assert.ok(audits.length > 50, `the suite has its audits (${audits.length})`);
  const failed: string[] = [];
  for (const audit of audits) {
    const result = await audit.fn();
    if (result.status !== 'ok') failed.push(`${result.status} ${audit.name}: ${result.reason}`);
  }
  assert.equal(failed, [], failed.join('\n'));
});

async function post(ctx: Ctx, body: string, headers: Record<string, string>) {
  const res = await fetch(`${ctx.server.url}/graphql`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ctx.bearer}`, ...headers },
    body,
  });
  return {
    status: res.status,
    type: res.headers.get('content-type') ?? '',
    text: await res.text(),
  };
}

test('application/graphql-response+json: 4xx for a request that cannot run, 200 for one that ran', async (ctx) => {
  const accept = {
    accept: 'application/graphql-response+json',
    'content-type': 'application/json',
  };
  const cases = [
    { what: 'unparseable JSON', body: '{"query": ', status: 400 },
    { what: 'no query', body: '{}', status: 400 },
    { what: 'a syntax error', body: JSON.stringify({ query: '{ me {' }), status: 400 },
    { what: 'an unknown field', body: JSON.stringify({ query: '{ nope }' }), status: 400 },
    { what: 'a query that ran', body: JSON.stringify({ query: '{ me { id } }' }), status: 200 },
    {
      what: 'a query whose field failed',
      body: JSON.stringify({ query: '{ constats(first: 0) { edges { cursor } } }' }),
      status: 200,
    },
  ];
  for (const c of cases) {
    const res = await post(ctx, c.body, accept);
    assert.is(res.status, c.status, `${c.what}: ${res.text}`);
    assert.match(res.type, /^application\/graphql-response\+json/, `${c.what}: media type`);
    const body = JSON.parse(res.text);
    if (c.status === 400) {
      assert.not.ok('data' in body, `${c.what}: no data entry`);
      assert.is(body.errors?.[0]?.extensions?.code, 'BAD_USER_INPUT', `${c.what}: the code`);
    } else assert.ok('data' in body, `${c.what}: data`);
  }
  // A legacy client (application/json) gets 200 for errors of a request that was valid JSON,
  // and 400 for a body that is not JSON at all.
  const legacy = { accept: 'application/json', 'content-type': 'application/json' };
  assert.is((await post(ctx, JSON.stringify({ query: '{ nope }' }), legacy)).status, 200);
  const broken = await post(ctx, '{"query": ', legacy);
  assert.is(broken.status, 400, broken.text);
  assert.match(broken.type, /^application\/json/);
});

test.run();
