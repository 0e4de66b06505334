/**
 * The server's side of the reference app: `/app/` is served (bundled on first request) with a
 * strict content security policy and nothing outside the app's files; development tokens are
 * handed out only by a development-mode server, only on loopback, only for well-formed ids.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import http from 'node:http';
import { Hono } from 'hono';
import { setUp } from './support/suite.js';
import { startTestServer, gql, type TestServer } from './support/server.js';
import { createDevTokenRoutes, isLoopback } from '../server/dev-token.js';
import { ConstatError } from '../constat/errors.js';

let dev: TestServer;
let prod: TestServer;

setUp(test, async () => {
  // Development mode (CONSTAT_DEV, no key: the built-in secret) hands out development tokens.
  dev = await startTestServer({ hub: 'memory', env: { AUTH_JWT_SECRET: '', CONSTAT_DEV: '1' } });
  prod = await startTestServer({ hub: 'memory' });
});

test.after(async () => {
  await dev?.stop();
  await prod?.stop();
});

/** A GET with the path sent exactly as written (fetch would normalise `..`). */
function rawGet(base: string, rawPath: string): Promise<{ status: number; body: string }> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const req = http.request({ hostname, port, path: rawPath, method: 'GET' }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('/app/ serves the page with a content security policy; /app redirects there', async () => {
  const res = await fetch(`${dev.url}/app/`);
  assert.is(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /text\/html/);
  assert.match(res.headers.get('content-security-policy') ?? '', /script-src 'self'/);
  assert.match(res.headers.get('content-security-policy') ?? '', /frame-ancestors 'none'/);
  assert.match(await res.text(), /<script type="module" src="\/app\/main.js">/);
  const redirect = await fetch(`${dev.url}/app`, { redirect: 'manual' });
  assert.is(redirect.status, 301);
  assert.is(redirect.headers.get('location'), '/app/');
});

test('the bundle is served with an ETag and answers 304 to a matching If-None-Match', async () => {
  const res = await fetch(`${dev.url}/app/main.js`);
  assert.is(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /javascript/);
  const body = await res.text();
  assert.ok(body.length > 10_000, 'the bundle holds the app and its libraries');
  const etag = res.headers.get('etag');
  assert.ok(etag);
  const again = await fetch(`${dev.url}/app/main.js`, { headers: { 'if-none-match': etag } });
  assert.is(again.status, 304);
});

test('client-side routes get the page; unknown files and paths outside the app do not', async () => {
  const route = await fetch(`${dev.url}/app/session/abc`);
  assert.is(route.status, 200);
  assert.match(route.headers.get('content-type') ?? '', /text\/html/);
  assert.is((await fetch(`${dev.url}/app/nope.js`)).status, 404);
  for (const p of ['/app/../package.json', '/app/%2e%2e/package.json', '/app/..%2fpackage.json']) {
    const res = await rawGet(dev.url, p);
    assert.is.not(res.status, 200, p);
    assert.not.match(res.body, /"name": "constat"/, p);
  }
});

test('a development server hands out a working token on loopback', async () => {
  const res = await fetch(`${dev.url}/v1/dev/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ user: 'dev-amina', device: 'web-1', name: 'Amina' }),
  });
  assert.is(res.status, 200);
  const { token, expiresAt } = (await res.json()) as { token: string; expiresAt: string };
  assert.ok(Date.parse(expiresAt) > Date.now());
  const me = await gql<{ me: { id: string; deviceId: string; name: string } }>(
    dev.url,
    token,
    `{ me { id deviceId name } }`,
  );
  assert.equal(me.data?.me, { id: 'dev-amina', deviceId: 'web-1', name: 'Amina' });
});

test('malformed token requests are refused with a clear error', async () => {
  const cases: Array<[string, RegExp]> = [
    ['not json', /JSON body/],
    [JSON.stringify({ device: 'web-1' }), /"user"/],
    [JSON.stringify({ user: 'a b', device: 'web-1' }), /"user"/],
    [JSON.stringify({ user: 'a', device: 'x'.repeat(101) }), /"device"/],
    [JSON.stringify({ user: 'a', device: 'd', name: 7 }), /"name"/],
  ];
  for (const [body, message] of cases) {
    const res = await fetch(`${dev.url}/v1/dev/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    });
    assert.is(res.status, 400, body);
    const error = ((await res.json()) as { error: { code: string; message: string } }).error;
    assert.is(error.code, 'BAD_USER_INPUT');
    assert.match(error.message, message);
  }
});

test('a server with a configured key has no token endpoint, and still serves the app', async () => {
  const res = await fetch(`${prod.url}/v1/dev/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ user: 'mallory', device: 'd' }),
  });
  assert.is(res.status, 404);
  assert.is((await fetch(`${prod.url}/app/`)).status, 200);
});

test('tokens are refused to a client that is not on loopback', async () => {
  const app = new Hono();
  app.route('/', createDevTokenRoutes('x'.repeat(40)));
  app.onError((err, c) =>
    c.json({ code: err instanceof ConstatError ? err.code : 'INTERNAL' }, 403),
  );
  // An in-memory request has no socket, as a request from elsewhere has no loopback address.
  const res = await app.request('/v1/dev/token', {
    method: 'POST',
    body: JSON.stringify({ user: 'a', device: 'd' }),
  });
  assert.equal(await res.json(), { code: 'FORBIDDEN' });
  assert.ok(isLoopback('127.0.0.1'));
  assert.ok(isLoopback('::1'));
  assert.ok(isLoopback('::ffff:127.0.0.1'));
  for (const address of ['10.0.0.1', '::ffff:10.0.0.1', '192.168.1.127', undefined, '']) {
    assert.not.ok(isLoopback(address), String(address));
  }
});

test.run();
