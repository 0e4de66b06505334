/**
 * Websocket admission at `/v1/sync/:sessionId`: how a token is carried, and the close code a
 * device gets when it may not be there (4401 / 4403 / 4404), with raw sockets and with a stock
 * y-websocket client, which must stop reconnecting on a 44xx. Also the operational endpoints:
 * health, readiness and Prometheus metrics.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, rm } from 'node:fs/promises';
import { randomBytes, randomUUID } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { SignJWT } from 'jose';
import type WebSocket from 'ws';
import {
  openPair,
  spawnServer,
  token,
  TEST_SECRET,
  type ServerProcess,
  type TestServer,
} from './support/server.js';
import { connectDevice, rawSocket, waitFor, connectBoth } from './support/device.js';
import { createTestDatabase, type TestDatabase } from '../persistence/test-database.js';
import { writeSection } from '../client/writer.js';
import { SERVER_VARIANTS, serverSuite, type ServerContext, setUp } from './support/suite.js';

const variants = SERVER_VARIANTS;

type Ctx = ServerContext;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Connects a raw socket, keeps it for cleanup, and resolves with the server's close. */
function attempt(ctx: Ctx, url: string, protocols?: string[]) {
  const socket = rawSocket(url, protocols);
  ctx.sockets.push(socket.ws);
  // A refused handshake rejects `opened`; callers that only look at the close must not crash.
  socket.opened.catch(() => {});
  return socket;
}

async function closeCode(ctx: Ctx, url: string, protocols?: string[]): Promise<number> {
  const { closed } = attempt(ctx, url, protocols);
  const result = await Promise.race([
    closed,
    sleep(5_000).then(() => ({ code: -1, reason: 'not closed within 5 s' })),
  ]);
  return result.code;
}

const syncUrl = (server: TestServer, sessionId: string, bearer?: string) =>
  `${server.wsUrl}/${sessionId}${bearer === undefined ? '' : `?token=${encodeURIComponent(bearer)}`}`;

/** The value of one sample in Prometheus text output; 0 when the sample is absent. */
function sample(text: string, name: string, labels = ''): number {
  const line = text
    .split('\n')
    .find((l) => l.startsWith(labels ? `${name}{${labels}} ` : `${name} `));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

async function metrics(server: TestServer): Promise<string> {
  return (await fetch(`${server.url}/metrics`)).text();
}

/** Waits until the server counts `count` open device connections. */
async function connectionsDrop(server: TestServer, count: number): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (sample(await metrics(server), 'constat_ws_connections') !== count) {
    if (Date.now() > deadline) assert.unreachable(`open connections did not drop to ${count}`);
    await sleep(20);
  }
}

for (const variant of variants) {
  serverSuite(`connect (${variant.name})`, variant.options, (test) => {
    test('no token: closed with 4401', async (ctx) => {
      const pair = await openPair(ctx.server.url);
      assert.is(await closeCode(ctx, syncUrl(ctx.server, pair.sessionId)), 4401);
      assert.is(await closeCode(ctx, syncUrl(ctx.server, pair.sessionId, '')), 4401);
    });

    test('malformed, foreign-signed, expired or incomplete tokens: closed with 4401', async (ctx) => {
      const pair = await openPair(ctx.server.url);
      const [userA, deviceA] = ['user-a', 'device-a'];
      const noDevice = await new SignJWT({})
        .setProtectedHeader({ alg: 'HS256' })
        .setSubject(userA)
        .setExpirationTime('1h')
        .sign(new TextEncoder().encode(TEST_SECRET));
      const tokens: Record<string, string> = {
        malformed: 'not-a-jwt',
        'three parts': 'a.b.c',
        'other secret': await token(userA, deviceA, {
          secret: 'another-secret-0123456789abcdef-xyz',
        }),
        expired: await token(userA, deviceA, { expiresIn: Math.floor(Date.now() / 1000) - 60 }),
        'no device claim': noDevice,
      };
      for (const [name, bad] of Object.entries(tokens)) {
        assert.is(await closeCode(ctx, syncUrl(ctx.server, pair.sessionId, bad)), 4401, name);
        assert.is(
          await closeCode(ctx, syncUrl(ctx.server, pair.sessionId), [
            'constat.v1',
            `bearer.${bad}`,
          ]),
          4401,
          `${name} (subprotocol)`,
        );
      }
      // The party's real token still gets in.
      const { ws, opened } = attempt(ctx, syncUrl(ctx.server, pair.sessionId, pair.tokenA));
      await opened;
      assert.is(ws.readyState, ws.OPEN);
    });

    test('the server never selects a bearer.* subprotocol, so the token is never echoed', async (ctx) => {
      const pair = await openPair(ctx.server.url);
      const { ws, closed } = attempt(ctx, syncUrl(ctx.server, pair.sessionId), [
        `bearer.${pair.tokenA}`,
      ]);
      const selected = await new Promise<string | undefined>((resolve) => {
        ws.once('upgrade', (res) => resolve(res.headers['sec-websocket-protocol'] as string));
        void closed.then(() => resolve('no upgrade response'));
      });
      assert.is(selected, undefined, 'no subprotocol selected');
    });

    test('a token in Sec-WebSocket-Protocol is accepted; the server selects constat.v1', async (ctx) => {
      const pair = await openPair(ctx.server.url);
      for (const protocols of [
        ['constat.v1', `bearer.${pair.tokenA}`],
        [`bearer.${pair.tokenA}`, 'constat.v1'],
      ]) {
        const { ws, opened, closed } = attempt(ctx, syncUrl(ctx.server, pair.sessionId), protocols);
        const firstMessage = new Promise<Buffer>((resolve) =>
          ws.once('message', (data) => resolve(data as Buffer)),
        );
        await opened;
        assert.is(ws.protocol, 'constat.v1');
        const first = await Promise.race([
          firstMessage,
          closed.then((c) => {
            throw new Error(`closed with ${c.code} ${c.reason}`);
          }),
        ]);
        // The server opens the Yjs handshake: message 0 (sync), step 1.
        assert.is(first[0], 0);
        assert.is(first[1], 0);
        ws.close();
      }
      // And a stock client configured that way syncs.
      const device = connectDevice(ctx.server.wsUrl, pair.sessionId, pair.tokenB, {
        viaSubprotocol: true,
      });
      ctx.devices.push(device);
      await device.synced();
      assert.is(device.closes.length, 0);
    });

    test('an unknown session id: closed with 4404', async (ctx) => {
      const t = await token('someone', 'some-device');
      assert.is(await closeCode(ctx, syncUrl(ctx.server, randomUUID(), t)), 4404);
      assert.is(await closeCode(ctx, syncUrl(ctx.server, 'abcdefgh_valid-format', t)), 4404);
    });

    test('a session id of invalid format: closed with 4404', async (ctx) => {
      const t = await token('someone', 'some-device');
      for (const id of [
        'short',
        'has.dots.in.it',
        'x'.repeat(65),
        'abcd%2Fefghij',
        'abcd%20efgh',
      ]) {
        assert.is(await closeCode(ctx, syncUrl(ctx.server, id, t)), 4404, id);
      }
    });

    test('a device that is not a party: closed with 4403', async (ctx) => {
      const pair = await openPair(ctx.server.url);
      const stranger = await token(`stranger-${randomBytes(3).toString('hex')}`, 'device-x');
      assert.is(await closeCode(ctx, syncUrl(ctx.server, pair.sessionId, stranger)), 4403);
      // Party A's user, on a device other than the one that opened the session.
      const payloadA = Buffer.from(pair.tokenA.split('.')[1]!, 'base64url').toString();
      const { sub } = JSON.parse(payloadA) as { sub: string };
      const secondPhone = await token(sub, 'another-device-of-a');
      assert.is(await closeCode(ctx, syncUrl(ctx.server, pair.sessionId, secondPhone)), 4403);
      // The parties themselves are admitted.
      await connectBoth(ctx.server, pair, ctx.devices);
    });

    test('a stock WebsocketProvider closed with 44xx emits closed and stops reconnecting', async (ctx) => {
      const pair = await openPair(ctx.server.url);
      const cases: Array<[number, string, string]> = [
        [4401, pair.sessionId, 'not-a-jwt'],
        [4403, pair.sessionId, await token('stranger', 'device-x')],
        [4404, randomUUID(), pair.tokenA],
      ];
      for (const [code, sessionId, bearer] of cases) {
        const before = sample(
          await metrics(ctx.server),
          'constat_ws_connections_refused_total',
          `code="${code}"`,
        );
        const device = connectDevice(ctx.server.wsUrl, sessionId, bearer);
        ctx.devices.push(device);
        const closedEvents: Array<{ code: number }> = [];
        device.provider.on('closed', (event) => closedEvents.push(event));
        await waitFor(() => closedEvents.length > 0, 5_000, `no 'closed' event for ${code}`);
        assert.is(closedEvents[0]!.code, code);
        assert.is(device.provider.shouldConnect, false, `${code}: shouldConnect`);
        // Several backoff periods (maxBackoffTime is 300 ms): no further attempt is made.
        await sleep(1_200);
        assert.is(device.closes.length, 1, `${code}: ${JSON.stringify(device.closes)}`);
        assert.is(closedEvents.length, 1);
        assert.is(device.provider.ws, null);
        assert.is(device.provider.wsconnecting, false);
        const after = sample(
          await metrics(ctx.server),
          'constat_ws_connections_refused_total',
          `code="${code}"`,
        );
        assert.is(after - before, 1, `${code}: the server saw one attempt`);
      }
    });

    test('/healthz and /readyz answer 200 with the storage checks', async ({ server }) => {
      const health = await fetch(`${server.url}/healthz`);
      assert.is(health.status, 200);
      assert.equal(await health.json(), { status: 'ok' });
      const ready = await fetch(`${server.url}/readyz`);
      assert.is(ready.status, 200);
      const body = (await ready.json()) as { status: string; checks: Record<string, string> };
      assert.is(body.status, 'ready');
      assert.is(body.checks.database, 'ok');
      if (variant.options.hub === 'redis') assert.is(body.checks.redis, 'ok');
    });

    test('/metrics exposes connection, session and update metrics in Prometheus format', async (ctx) => {
      const res = await fetch(`${ctx.server.url}/metrics`);
      assert.is(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
      const text = await res.text();
      for (const [name, type] of [
        ['constat_ws_connections', 'gauge'],
        ['constat_sessions_opened_total', 'counter'],
        ['constat_updates_total', 'counter'],
        ['constat_rejected_updates_total', 'counter'],
      ]) {
        assert.ok(text.includes(`# HELP ${name} `), `${name} help`);
        assert.ok(text.includes(`# TYPE ${name} ${type}\n`), `${name} type`);
      }

      // The numbers move with what happens on the server. Sockets of earlier tests are gone first.
      await connectionsDrop(ctx.server, 0);
      const opened = sample(text, 'constat_sessions_opened_total');
      const updates = sample(text, 'constat_updates_total');
      const pair = await openPair(ctx.server.url);
      const { a, b } = await connectBoth(ctx.server, pair, ctx.devices);
      let now = await metrics(ctx.server);
      assert.is(sample(now, 'constat_sessions_opened_total'), opened + 1);
      assert.is(sample(now, 'constat_ws_connections'), 2);
      writeSection(a.doc, 'accident', { injuries: false });
      await waitFor(
        () => b.doc.getMap('accident').get('injuries') === false,
        5_000,
        'update never reached B',
      );
      now = await metrics(ctx.server);
      assert.ok(sample(now, 'constat_updates_total') > updates, 'updates counted');
      writeSection(b.doc, 'vehicleA', { remarks: 'not mine to write' });
      await waitFor(() => b.closes.length > 0, 5_000, 'forbidden write not refused');
      now = await metrics(ctx.server);
      const rejected = now
        .split('\n')
        .filter((l) => l.startsWith('constat_rejected_updates_total{'))
        .reduce((n, l) => n + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
      assert.ok(rejected >= 1, 'rejected update counted');
      for (const d of ctx.devices.splice(0)) d.destroy();
      await connectionsDrop(ctx.server, 0);
    });
  });
}

serverSuite(
  'connect, expired session (postgres+redis)',
  { env: { SESSION_TTL_MS: '1000' } },
  (test) => {
    test('a session past its ttl: closed with 4404, and a stock client stops', async (ctx) => {
      const pair = await openPair(ctx.server.url);
      await sleep(1_300);
      assert.is(await closeCode(ctx, syncUrl(ctx.server, pair.sessionId, pair.tokenA)), 4404);
      assert.is(await closeCode(ctx, syncUrl(ctx.server, pair.sessionId, pair.tokenB)), 4404);
      const device = connectDevice(ctx.server.wsUrl, pair.sessionId, pair.tokenA);
      ctx.devices.push(device);
      await waitFor(() => device.closes.length > 0, 5_000, 'device was not closed');
      assert.is(device.closes[0]!.code, 4404);
      assert.is(device.provider.shouldConnect, false);
    });
  },
);

// A malformed id must be refused like any other, not take the process down: this runs against
// a real `constat serve` process so a crash shows up as a failed test, not a dead test runner.
const spawned = suite<{
  proc?: ServerProcess;
  db?: TestDatabase;
  dataDir?: string;
  sockets: WebSocket[];
}>('connect, undecodable session id (server process)', { sockets: [] });

setUp(spawned, async (ctx) => {
  ctx.db = await createTestDatabase();
  ctx.dataDir = await mkdtemp(path.join(os.tmpdir(), 'constat-connect-'));
  ctx.proc = await spawnServer({
    DATABASE_URL: ctx.db.url,
    DATA_DIR: ctx.dataDir,
    REDIS_URL: '', // in-process sessions: nothing lands in a shared Redis keyspace
    LOG_LEVEL: 'warn',
  });
});
spawned.after(async (ctx) => {
  for (const ws of ctx.sockets.splice(0)) ws.terminate();
  await ctx.proc?.kill('SIGKILL');
  await ctx.db?.drop();
  if (ctx.dataDir) await rm(ctx.dataDir, { recursive: true, force: true });
});

spawned(
  'a malformed percent-encoding in the session id: closed with 4404, server stays up',
  async (ctx) => {
    const proc = ctx.proc!;
    const t = await token('someone', 'some-device');
    for (const id of ['%E0%A4%A', 'abcdefgh%', '%zzabcdefgh']) {
      const { ws, closed, opened } = rawSocket(`${proc.wsUrl}/${id}?token=${t}`);
      ctx.sockets.push(ws);
      opened.catch(() => {}); // a dropped connection is reported through `closed`
      const result = await Promise.race([
        closed,
        sleep(5_000).then(() => ({ code: -1, reason: 'not closed within 5 s' })),
      ]);
      const health = await fetch(`${proc.url}/healthz`).then(
        (r) => r.status,
        (err: unknown) =>
          `unreachable (${String(err)}), exit code ${proc.child.exitCode}\n${proc.output().slice(-1500)}`,
      );
      assert.is(result.code, 4404, `${id}: ${JSON.stringify(result)}; /healthz after: ${health}`);
      assert.is(health, 200, `server after ${id}`);
    }
  },
);

spawned.run();
