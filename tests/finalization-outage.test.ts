/**
 * PostgreSQL becomes unreachable at the very moment of finalization. A real `constat serve`
 * process talks to PostgreSQL through a TCP proxy running in this test process; when the
 * proxy sees the server send `insert into constats` it cuts every connection (that statement
 * never reaches PostgreSQL) and drops every new one until the test restores it. The server
 * must not tell the devices anything is finalized while the database is away, must not get
 * stuck, and must finalize exactly once when the database comes back.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import net from 'node:net';
import { once } from 'node:events';
import { openPair, type ServerProcess } from './support/server.js';
import { connectBoth, connectDevice, waitFor, type Device } from './support/device.js';
import { startCluster, type Cluster } from './support/cluster.js';
import { materialise } from '../constat/constat-doc.js';
import { canonicalJson } from '../constat/canonical-json.js';
import { contentHash } from '../constat/content-hash.js';
import {
  eventually,
  fillConstat,
  newDeviceKey,
  registerKey,
  sessionView,
  signConstat,
  signHash,
  sleep,
} from './support/signing.js';
import { setUp } from './support/suite.js';

/**
 * A TCP proxy in front of PostgreSQL that can fail on cue. Armed, it watches the bytes the
 * client sends (the statement text travels in clear in the Parse/Query messages) and, on the
 * trigger text, goes down: every open connection is destroyed, the triggering bytes are never
 * forwarded, and new connections are accepted and dropped at once — what a client sees when
 * the database host goes away. `restore()` lets connections through again.
 */
class OutageProxy {
  readonly #server = net.createServer((client) => this.#accept(client));
  readonly #pairs = new Set<{ client: net.Socket; upstream: net.Socket }>();
  #trigger: string;
  #armed = false;
  #down = false;
  #onTrip: () => void = () => {};
  /** Settles when the trigger is seen (after the latest `arm()`). */
  tripped: Promise<void> = Promise.resolve();
  dropped = 0;

  constructor(
    private readonly target: { host: string; port: number },
    trigger: string,
  ) {
    this.#trigger = trigger.toLowerCase();
  }

  listen(): Promise<number> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(0, '127.0.0.1', () =>
        resolve((this.#server.address() as net.AddressInfo).port),
      );
    });
  }

  /** Watches for `trigger` (default: the one given to the constructor) from now on. */
  arm(trigger?: string): void {
    if (trigger) this.#trigger = trigger.toLowerCase();
    this.#armed = true;
    this.tripped = new Promise((resolve) => (this.#onTrip = resolve));
  }

  get down(): boolean {
    return this.#down;
  }

  restore(): void {
    this.#down = false;
  }

  #accept(client: net.Socket): void {
    client.on('error', () => {});
    if (this.#down) {
      this.dropped++;
      client.destroy();
      return;
    }
    const upstream = net.connect(this.target);
    upstream.on('error', () => {});
    const pair = { client, upstream };
    this.#pairs.add(pair);
    // The trigger may straddle two chunks: keep the end of the previous one.
    let tail = '';
    client.on('data', (chunk: Buffer) => {
      if (this.#down) return void client.destroy();
      const text = tail + chunk.toString('latin1').toLowerCase();
      if (this.#armed && text.includes(this.#trigger)) {
        this.#goDown();
        return;
      }
      tail = text.slice(-this.#trigger.length);
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => client.write(chunk));
    const end = () => {
      this.#pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.once('close', end);
    upstream.once('close', end);
  }

  #goDown(): void {
    this.#down = true;
    this.#armed = false;
    for (const { client, upstream } of this.#pairs) {
      client.destroy();
      upstream.destroy();
    }
    this.#pairs.clear();
    this.#onTrip();
  }

  close(): Promise<void> {
    this.#goDown();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }
}

interface Ctx {
  cluster: Cluster;
  proxy: OutageProxy;
  /** Reaches PostgreSQL through the proxy. */
  server: ServerProcess;
  /** A second instance sharing Redis, connected to PostgreSQL directly. */
  direct: ServerProcess;
  devices: Device[];
}

const test = suite<Ctx>('finalization during a PostgreSQL outage', {
  devices: [],
} as unknown as Ctx);

setUp(test, async (ctx) => {
  ctx.cluster = await startCluster('outage');
  const db = ctx.cluster.db!;
  const direct = new URL(db.url);
  ctx.proxy = new OutageProxy(
    { host: direct.hostname, port: Number(direct.port || 5432) },
    'insert into constats',
  );
  const proxied = new URL(db.url);
  proxied.hostname = '127.0.0.1';
  proxied.port = String(await ctx.proxy.listen());
  ctx.server = (await ctx.cluster.start(1, { DATABASE_URL: proxied.toString() }))[0]!;
  ctx.direct = (await ctx.cluster.start(1))[0]!;
});
test.after.each((ctx) => {
  for (const d of ctx.devices.splice(0)) d.destroy();
});
test.after(async (ctx) => {
  await ctx.cluster?.killAll();
  await ctx.proxy?.close();
  await ctx.cluster?.stop();
});

const content = (d: Device) => canonicalJson(materialise(d.doc));

function assertAlive(server: ServerProcess): void {
  const died = server.child.exitCode !== null || server.child.signalCode !== null;
  assert.not.ok(
    died,
    `the server process died during the outage; its last output:\n${server.output().split('\n').slice(-12).join('\n')}`,
  );
}

// Long enough to outlast the signing request's own wait for finalization.
const OUTAGE_MS = 4_000;

test('the database goes away at "insert into constats": nothing is announced, then exactly one constat once it is back', async (ctx) => {
  const { server, proxy } = ctx;
  const sql = ctx.cluster.db!.sql; // direct connection, not through the proxy
  const pair = await openPair(server.url);
  const { a, b } = await connectBoth(server, pair, ctx.devices);
  await fillConstat(a, b, (x, y) => content(x) === content(y));
  const hash = contentHash(a.doc);
  const keys = { A: newDeviceKey(), B: newDeviceKey() };
  await registerKey(server.url, pair.tokenA, keys.A);
  await registerKey(server.url, pair.tokenB, keys.B);
  const first = await signConstat(
    server.url,
    pair.tokenA,
    pair.sessionId,
    hash,
    signHash(keys.A, pair.sessionId, 'A', hash),
  );
  assert.not.ok(first.errors, JSON.stringify(first.errors));
  assert.is(first.data!.signConstat.status, 'ACTIVE');

  proxy.arm();
  const second = signConstat(
    server.url,
    pair.tokenB,
    pair.sessionId,
    hash,
    signHash(keys.B, pair.sessionId, 'B', hash),
  );
  await Promise.race([
    proxy.tripped,
    sleep(10_000).then(() => {
      throw new Error('finalization never sent "insert into constats"');
    }),
  ]);
  const trippedAt = performance.now();

  // The server process must live through the outage: a failed request is only a symptom.
  const res = await second.catch(async (err: unknown) => {
    await Promise.race([once(server.child, 'exit'), sleep(1_000)]);
    assertAlive(server);
    throw err;
  });
  assertAlive(server);
  // The second signature is accepted: it is on the document and finalization will complete
  // on its own; the caller is not told FINALIZED (nor given an internal error).
  assert.not.ok(res.errors, `signConstat during the outage: ${JSON.stringify(res.errors)}`);
  assert.is(res.data!.signConstat.status, 'ACTIVE');
  assert.is(res.data!.signConstat.constatId, null);
  assert.equal(
    res.data!.signConstat.signatures.map((s) => s.role),
    ['A', 'B'],
  );

  await sleep(Math.max(0, OUTAGE_MS - (performance.now() - trippedAt)));
  assert.ok(proxy.down, 'the database is still unreachable');
  assert.ok(proxy.dropped > 0, 'the server did try to reach the database during the outage');
  for (const d of [a, b]) {
    assert.not.ok(
      d.events.some((e) => e.type === 'finalized'),
      'no device is told finalized during the outage',
    );
    assert.equal(d.closes, [], 'devices stay connected during the outage');
  }
  assert.is((await sql`select 1 from constats where session_id = ${pair.sessionId}`).length, 0);
  assert.is(
    (await sql`select 1 from outbox where payload -> 'data' ->> 'sessionId' = ${pair.sessionId}`)
      .length,
    0,
  );
  assertAlive(server);

  proxy.restore();
  const restoredAt = performance.now();
  const constatId = await eventually(
    () => {
      const e = a.events.find((x) => x.type === 'finalized');
      return e?.type === 'finalized' ? e.constatId : undefined;
    },
    15_000,
    'not finalized within 15 s of the database coming back',
  );
  const recoveredMs = performance.now() - restoredAt;
  await waitFor(() => b.events.some((e) => e.type === 'finalized'), 5_000, 'B not told');
  for (const d of [a, b]) {
    const told = d.events.filter((e) => e.type === 'finalized');
    assert.is(told.length, 1);
    assert.is((told[0] as { constatId: string }).constatId, constatId);
    await waitFor(() => d.closes.length > 0, 5_000, 'device not closed after finalization');
    assert.is(d.closes[0]!.code, 4409);
  }

  const rows = await sql<{ id: string; content_hash: string }[]>`
    select id, content_hash from constats where session_id = ${pair.sessionId}
  `;
  assert.equal(
    rows.map((r) => [r.id, r.content_hash]),
    [[constatId, hash]],
  );
  const outbox = await sql<{ topic: string; n: number }[]>`
    select topic, count(*)::int as n from outbox where message_key = ${constatId}
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
  const v = await sessionView(server.url, pair.tokenA, pair.sessionId);
  assert.is(v!.status, 'FINALIZED');
  assert.is(v!.constatId, constatId);
  console.log(
    `outage of ${Math.round(restoredAt - trippedAt)} ms; finalized ${Math.round(recoveredMs)} ms after the database came back`,
  );
});

test('the instance that completed the pair loses the database: another instance holding the session finalizes instead', async (ctx) => {
  const { server, direct, proxy } = ctx;
  const sql = ctx.cluster.db!.sql;
  const pair = await openPair(direct.url);
  // A's phone on the instance with the database, B's on the one about to lose it.
  const a = connectDevice(direct.wsUrl, pair.sessionId, pair.tokenA);
  const b = connectDevice(server.wsUrl, pair.sessionId, pair.tokenB);
  ctx.devices.push(a, b);
  await Promise.all([a.synced(), b.synced()]);
  await fillConstat(a, b, (x, y) => content(x) === content(y));
  const hash = contentHash(a.doc);
  const keys = { A: newDeviceKey(), B: newDeviceKey() };
  await registerKey(direct.url, pair.tokenA, keys.A);
  await registerKey(server.url, pair.tokenB, keys.B);
  const sign = (on: ServerProcess, role: 'A' | 'B', token: string) =>
    signConstat(
      on.url,
      token,
      pair.sessionId,
      hash,
      signHash(keys[role], pair.sessionId, role, hash),
    );
  const first = await sign(direct, 'A', pair.tokenA);
  assert.not.ok(first.errors, JSON.stringify(first.errors));

  // The finalize statement is already prepared on this instance's connections (the first test
  // ran it), so its text may not be sent again: trip on B's signature instead, which only the
  // finalize statement's parameters carry (in the constat's signatures).
  const signatureB = signHash(keys.B, pair.sessionId, 'B', hash);
  proxy.arm(signatureB);
  const second = signConstat(server.url, pair.tokenB, pair.sessionId, hash, signatureB);
  await Promise.race([
    proxy.tripped,
    sleep(10_000).then(() => {
      throw new Error('the completing instance never sent the finalize statement');
    }),
  ]);
  const trippedAt = performance.now();
  const constatId = await eventually(
    () => {
      const e = a.events.find((x) => x.type === 'finalized');
      return e?.type === 'finalized' ? e.constatId : undefined;
    },
    15_000,
    'the other instance did not take over',
  );
  const tookMs = performance.now() - trippedAt;
  assert.ok(proxy.down, 'finalized while the completing instance still had no database');
  await waitFor(() => b.events.some((e) => e.type === 'finalized'), 5_000, 'B not told');
  const answered = await second;
  assert.not.ok(answered.errors, JSON.stringify(answered.errors));
  const rows = await sql<
    { id: string }[]
  >`select id from constats where session_id = ${pair.sessionId}`;
  assert.equal(
    rows.map((r) => r.id),
    [constatId],
  );
  assertAlive(server);
  proxy.restore();
  console.log(`taken over and finalized ${Math.round(tookMs)} ms after the outage began`);
});

test.run();
