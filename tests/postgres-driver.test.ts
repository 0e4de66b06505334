/**
 * The PostgreSQL driver as patched (patches/postgres+3.4.9.patch): a bytea parameter goes over
 * the wire in binary, its bytes as they are. In the driver's text format it would be hex text,
 * twice its size, built in several copies on the event loop (80 ms of blocking for 1.7 MB on
 * a slow machine). What crosses the socket is counted through a relay in front of the server.
 */
import net from 'node:net';
import postgres from 'postgres';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createTestDatabase, type TestDatabase } from '../persistence/test-database.js';
import { setUp } from './support/suite.js';

interface Relay {
  port: number;
  /** Bytes the client has sent so far. */
  sent(): number;
  close(): Promise<void>;
}

/** A TCP relay to the database server that counts what the client sends. */
async function relayTo(url: string): Promise<Relay> {
  const target = new URL(url);
  let sent = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(target.port || 5432), target.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => s.destroy());
    }
    client.on('data', (data: Buffer) => (sent += data.byteLength));
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    sent: () => sent,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

const test = suite<{ db?: TestDatabase; relay?: Relay; sql?: postgres.Sql }>('postgres driver');

setUp(test, async (ctx) => {
  ctx.db = await createTestDatabase();
  ctx.relay = await relayTo(ctx.db.url);
  const url = new URL(ctx.db.url);
  url.host = `127.0.0.1:${ctx.relay.port}`;
  ctx.sql = postgres(url.toString(), { max: 1, onnotice: () => {} });
  await ctx.sql`create table blobs (id int, b bytea)`;
});
test.after(async (ctx) => {
  await ctx.sql?.end({ timeout: 5 });
  await ctx.relay?.close();
  await ctx.db?.drop();
});

const MB = 1024 * 1024;

test('a bytea parameter crosses the wire in binary: about its own size, not twice it', async (ctx) => {
  const payload = Uint8Array.from({ length: MB }, (_, i) => (i * 31) % 256);
  for (const prepare of [true, false]) {
    const before = ctx.relay!.sent();
    await ctx.sql!.unsafe('insert into blobs values ($1, $2)', [1, payload], { prepare });
    const sent = ctx.relay!.sent() - before;
    assert.ok(sent >= MB, `${sent} bytes sent for a ${MB}-byte parameter`);
    assert.ok(
      sent < MB + 4096,
      `prepare ${prepare}: ${sent} bytes for ${MB} (hex text: > ${2 * MB})`,
    );
  }
  const rows = await ctx.sql!<Array<{ b: Uint8Array }>>`select b from blobs`;
  assert.is(rows.length, 2);
  for (const row of rows) assert.ok(Buffer.from(row.b).equals(Buffer.from(payload)));
});

test('strings are untouched: text stays text, a string into bytea is stored as its UTF-8 bytes', async (ctx) => {
  const [row] = await ctx.sql!<Array<{ t: string; b: Uint8Array }>>`
    select ${'\\x0102'}::text as t, ${'\\x0102'}::bytea as b`;
  assert.is(row!.t, '\\x0102');
  assert.equal([...row!.b], [...Buffer.from('\\x0102')], 'as the driver always stored strings');
});

test.run();
