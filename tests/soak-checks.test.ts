/**
 * The pure parts of the soak (scripts/bench/soak.ts) and its load balancer, quickly: the
 * slope it reports, the lost-edit check it relies on (a phone's edit or deletion missing from
 * the snapshot is caught, one that is there is not), and the balancer sending a front door's
 * requests and websocket upgrades elsewhere while its instance is drained or down.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import http from 'node:http';
import type net from 'node:net';
import * as Y from 'yjs';
import WebSocket, { WebSocketServer } from 'ws';
import { lostEdits, slope } from '../scripts/bench/soak.js';
import { startBalancer } from '../scripts/bench/balancer.js';

const test = suite('soak checks');

test('slope: least squares, undefined on too few points', () => {
  assert.is(
    slope([
      [0, 1],
      [1, 3],
      [2, 5],
    ]),
    2,
  );
  assert.ok(
    Math.abs(
      slope([
        [0, 10],
        [60, 10.5],
        [120, 9.5],
        [180, 10],
      ])!,
    ) < 0.01,
  );
  assert.is(
    slope([
      [0, 1],
      [1, 2],
    ]),
    undefined,
  );
  assert.is(
    slope([
      [1, 1],
      [1, 2],
      [1, 3],
    ]),
    undefined,
  );
  assert.is(
    slope([
      [0, 0],
      [1, NaN],
      [2, 4],
      [3, 6],
    ]),
    2,
  );
});

function phoneWith(edit: (doc: Y.Doc) => void, base?: Uint8Array): Y.Doc {
  const doc = new Y.Doc();
  if (base) Y.applyUpdate(doc, base);
  edit(doc);
  return doc;
}

const kept = (doc: Y.Doc) => ({ clientId: doc.clientID, state: Y.encodeStateAsUpdate(doc) });

test('lostEdits: nothing lost when the snapshot holds the phone', () => {
  const phone = phoneWith((d) => d.getMap('vehicleA').set('plate', '123-45'));
  const server = phoneWith(
    (d) => d.getMap('sketch').set('note', 'x'),
    Y.encodeStateAsUpdate(phone),
  );
  assert.equal(lostEdits(Y.encodeStateAsUpdate(server), kept(phone)), []);
});

test('lostEdits: an edit the snapshot lacks is reported', () => {
  const phone = phoneWith((d) => d.getMap('vehicleA').set('plate', '123-45'));
  const snapshot = Y.encodeStateAsUpdate(phone);
  phone.getMap('vehicleA').set('remarks', 'rayure');
  const lost = lostEdits(snapshot, kept(phone));
  assert.is(lost.length, 2, lost.join('; '));
  assert.match(lost[0]!, /1 of the phone's \d+ structs/);
});

test('lostEdits: a deletion the snapshot lacks is reported', () => {
  const phone = phoneWith((d) => d.getMap('accident').set('place', 'Alger'));
  const snapshot = Y.encodeStateAsUpdate(phone);
  phone.getMap('accident').delete('place');
  assert.equal(lostEdits(snapshot, kept(phone)), [
    "the phone's content differs from the snapshot's",
  ]);
});

/** A tiny instance: answers its name over HTTP and echoes it over a websocket. */
async function instance(name: string) {
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => res.end(`${name}:${req.headers.host}:${body}`));
  });
  const wss = new WebSocketServer({ server });
  wss.on('connection', (ws) => ws.send(name));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((r) => {
        for (const c of wss.clients) c.terminate();
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

const post = async (url: string, body: string) =>
  (await fetch(url, { method: 'POST', body })).text();
const wsName = (url: string) =>
  new Promise<string>((resolve, reject) => {
    const ws = new WebSocket(url.replace(/^http/, 'ws'));
    ws.once('message', (m: Buffer) => (resolve(m.toString()), ws.close()));
    ws.once('error', reject);
  });

test('balancer: each front door prefers its instance, and fails over while it is drained or down', async () => {
  const one = await instance('one');
  const two = await instance('two');
  const lb = await startBalancer([one.port, two.port]);
  try {
    const [doorOne, doorTwo] = lb.urls as [string, string];
    const host = new URL(doorTwo).host;
    assert.is(await post(doorOne, 'a'), `one:${new URL(doorOne).host}:a`);
    assert.is(await post(doorTwo, 'b'), `two:${host}:b`, 'the Host header passes through');
    assert.is(await wsName(doorTwo), 'two');
    assert.is(lb.failovers(), 0);
    lb.drain(1);
    assert.is(await post(doorTwo, 'c'), `one:${host}:c`);
    assert.is(await wsName(doorTwo), 'one');
    lb.restore(1);
    await two.close(); // down without being drained: its port refuses
    assert.is(await post(doorTwo, 'd'), `one:${host}:d`);
    assert.is(await wsName(doorTwo), 'one');
    assert.is(lb.failovers(), 4);
  } finally {
    await lb.close();
    await one.close();
    await two.close().catch(() => {});
  }
});

test.run();
