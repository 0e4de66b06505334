/**
 * Write permissions end to end, with stock y-websocket clients: a party writing (inserting or
 * deleting) where it may not is told why (`rejected-update`), closed with 4403, and nothing of
 * the write reaches the server's copy or the other device; the other device keeps editing.
 * The whole matrix runs on the embedded defaults (PGlite, in-process sessions); the main cases
 * also on PostgreSQL + Redis.
 */
import { type Test } from 'uvu';
import * as assert from 'uvu/assert';
import * as Y from 'yjs';
import { openPair, type Pair } from './support/server.js';
import { connectDevice, waitFor, type Device, connectBoth } from './support/device.js';
import { writeSection } from '../client/writer.js';
import type { Role } from '../constat/permissions.js';
import { serverSuite, type ServerContext } from './support/suite.js';

type Ctx = ServerContext;

const ALL_ROOTS = ['meta', 'accident', 'vehicleA', 'vehicleB', 'sketch', 'signatures', 'evil'];
// Long enough for a forwarded update to reach a device on loopback many times over.
const SETTLE_MS = 300;

const other = (role: Role): Role => (role === 'A' ? 'B' : 'A');

/** Every root as JSON; roots that do not exist in the document read as absent. */
function snapshot(doc: Y.Doc): Record<string, unknown> {
  const result: Record<string, unknown> = {};
  for (const name of ALL_ROOTS) {
    if (doc.share.has(name)) result[name] = doc.getMap(name).toJSON();
  }
  return result;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Session {
  pair: Pair;
  devices: Record<Role, Device>;
  tokens: Record<Role, string>;
}

async function session(ctx: Ctx): Promise<Session> {
  const pair = await openPair(ctx.server.url);
  const { a, b } = await connectBoth(ctx.server, pair, ctx.devices);
  return { pair, devices: { A: a, B: b }, tokens: { A: pair.tokenA, B: pair.tokenB } };
}

/** A fresh connection of `role` that reads the server's copy. */
async function probe(ctx: Ctx, s: Session, role: Role): Promise<Device> {
  const device = connectDevice(ctx.server.wsUrl, s.pair.sessionId, s.tokens[role]);
  ctx.devices.push(device);
  await device.synced();
  return device;
}

interface Attack {
  name: string;
  /** What the legitimate party (or the server) has written there first, if anything. */
  prepare?: (victim: Y.Doc, victimRole: Role) => void;
  /** Whether the offender's copy must hold the prepared content before it can delete it. */
  ready?: (offender: Y.Doc, victimRole: Role) => boolean;
  offend: (offender: Y.Doc, victimRole: Role) => void;
}

const INSERTS: Attack[] = [
  { name: 'insert into meta', offend: (doc) => doc.getMap('meta').set('formVersion', 'eu') },
  {
    name: 'insert into meta.clients',
    offend: (doc) =>
      (doc.getMap('meta').get('clients') as Y.Map<string>).set(String(doc.clientID), 'server'),
  },
  {
    name: 'insert into signatures',
    offend: (doc, victim) =>
      doc.getMap('signatures').set(other(victim), { hash: 'forged', signature: 'forged' }),
  },
  {
    name: "insert into the other party's vehicle",
    offend: (doc, victim) =>
      writeSection(doc, `vehicle${victim}`, { remarks: 'not mine to write' }),
  },
  { name: 'insert into an unknown root', offend: (doc) => doc.getMap('evil').set('x', 1) },
];

const vehicleOf = (doc: Y.Doc, role: Role) => doc.getMap<unknown>(`vehicle${role}`);

const DELETES: Attack[] = [
  {
    name: "delete a key of the other party's vehicle",
    prepare: (doc, role) =>
      writeSection(doc, `vehicle${role}`, { vehicle: { plate: '0012311616' } }),
    ready: (doc, role) => (vehicleOf(doc, role).get('vehicle') as Y.Map<unknown>).has('plate'),
    offend: (doc, role) => (vehicleOf(doc, role).get('vehicle') as Y.Map<unknown>).delete('plate'),
  },
  {
    name: "delete text of the other party's vehicle",
    prepare: (doc, role) => writeSection(doc, `vehicle${role}`, { remarks: 'hello world' }),
    ready: (doc, role) => String(vehicleOf(doc, role).get('remarks')) === 'hello world',
    offend: (doc, role) => (vehicleOf(doc, role).get('remarks') as Y.Text).delete(0, 6),
  },
  {
    name: "delete array items of the other party's vehicle",
    prepare: (doc, role) => {
      doc.transact(() => {
        const photos = new Y.Array<string>();
        vehicleOf(doc, role).set('photos', photos);
        photos.push(['front.jpg', 'rear.jpg', 'side.jpg']);
      });
    },
    ready: (doc, role) => (vehicleOf(doc, role).get('photos') as Y.Array<string>)?.length === 3,
    offend: (doc, role) => (vehicleOf(doc, role).get('photos') as Y.Array<string>).delete(0, 2),
  },
  {
    name: 'delete a key of meta',
    offend: (doc) => doc.getMap('meta').delete('sessionId'),
  },
  {
    name: 'delete a client owner in meta.clients',
    offend: (doc) => {
      const clients = doc.getMap('meta').get('clients') as Y.Map<string>;
      if (clients.size === 0) throw new Error('premise: meta.clients is empty');
      clients.delete([...clients.keys()][0]!);
    },
  },
  // Nothing legitimate can put content into `signatures` yet (signing is not implemented) or
  // into an unknown root, so deletions there are covered by the unit tests only.
];

function registerAttack(test: Test<Ctx>, offenderRole: Role, attack: Attack): void {
  const victimRole = other(offenderRole);
  test(`party ${offenderRole}: ${attack.name} is rejected with 4403 and never spreads`, async (ctx) => {
    const s = await session(ctx);
    const offender = s.devices[offenderRole];
    const victim = s.devices[victimRole];
    if (attack.prepare) {
      attack.prepare(victim.doc, victimRole);
      await waitFor(
        () => attack.ready!(offender.doc, victimRole),
        5_000,
        'the legitimate content never reached the offender',
      );
    }
    // The victim's copy, and the server's, as they must stay.
    const expected = snapshot(victim.doc);
    const deletesOnly = attack.name.startsWith('delete');
    const updates: Uint8Array[] = [];
    offender.doc.on('update', (u: Uint8Array) => updates.push(u));
    attack.offend(offender.doc, victimRole);
    if (deletesOnly) {
      const merged = Y.decodeUpdate(Y.mergeUpdates(updates));
      assert.is(merged.structs.length, 0, 'premise: the offending update only deletes');
    }

    await waitFor(() => offender.closes.length > 0, 5_000, 'the offender was not closed');
    assert.is(offender.closes[0]!.code, 4403, JSON.stringify(offender.closes));
    const rejected = offender.events.find((e) => e.type === 'rejected-update');
    assert.ok(
      rejected,
      `a rejected-update event before the close: ${JSON.stringify(offender.events)}`,
    );
    assert.is(rejected!.type === 'rejected-update' && rejected!.code, 'FORBIDDEN');

    await sleep(SETTLE_MS);
    assert.equal(snapshot(victim.doc), expected, "the victim's copy changed");
    const server = await probe(ctx, s, victimRole);
    assert.equal(snapshot(server.doc), expected, "the server's copy changed");
    // The stock client stops on a 44xx instead of retrying the same write.
    await sleep(SETTLE_MS);
    assert.is(offender.closes.length, 1, 'the offender reconnected');

    // The legitimate device goes on editing, and its edits are served.
    writeSection(victim.doc, `vehicle${victimRole}`, { comingFrom: 'Alger centre' });
    writeSection(victim.doc, 'accident', { time: '17:45' });
    await waitFor(
      () =>
        String(server.doc.getMap(`vehicle${victimRole}`).get('comingFrom')) === 'Alger centre' &&
        server.doc.getMap('accident').get('time') === '17:45',
      5_000,
      "the legitimate device's later edits were not served",
    );
    assert.equal(victim.closes, [], 'the legitimate device was never closed');
  });
}

serverSuite('permissions (embedded)', { database: 'pglite', hub: 'memory' }, (test) => {
  for (const offender of ['A', 'B'] as const) {
    for (const attack of [...INSERTS, ...DELETES]) registerAttack(test, offender, attack);
  }

  test('allowed writes by both parties are served and never refused', async (ctx) => {
    const s = await session(ctx);
    const { A: a, B: b } = s.devices;
    writeSection(a.doc, 'vehicleA', { remarks: 'A' });
    writeSection(b.doc, 'vehicleB', { remarks: 'B' });
    writeSection(a.doc, 'accident', { date: '2025-03-14' });
    writeSection(b.doc, 'accident', { time: '17:45' });
    b.doc.transact(() => {
      const elements = b.doc.getMap('sketch').get('elements') as Y.Map<unknown>;
      elements.set('car-b', new Y.Map<unknown>([['kind', 'vehicle']]));
    });
    const server = await probe(ctx, s, 'A');
    await waitFor(
      () => {
        const json = snapshot(server.doc) as Record<string, Record<string, unknown>>;
        return (
          json.vehicleA!.remarks === 'A' &&
          json.vehicleB!.remarks === 'B' &&
          json.accident!.date === '2025-03-14' &&
          json.accident!.time === '17:45' &&
          (json.sketch!.elements as Record<string, unknown>)['car-b'] !== undefined
        );
      },
      5_000,
      'allowed writes were not all served',
    );
    assert.equal([...a.closes, ...b.closes], []);
    assert.equal([...a.events, ...b.events], []);
  });

  test('an edit that lands in content the other party deleted meanwhile is not refused', async (ctx) => {
    // B moves a sketch element while offline; A erases the element. Yjs drops B's move when it
    // merges (it lands inside deleted, collected content), which is fine, but B's later edits
    // must still be taken: B did nothing wrong.
    const s = await session(ctx);
    const { A: a, B: b } = s.devices;
    a.doc.transact(() => {
      const elements = a.doc.getMap('sketch').get('elements') as Y.Map<unknown>;
      elements.set(
        'car-a',
        new Y.Map<unknown>([
          ['kind', 'vehicle'],
          ['x', 1],
          ['y', 2],
        ]),
      );
    });
    writeSection(b.doc, 'vehicleB', { remarks: 'B was here' }); // B's client id is now B's
    const carOf = (doc: Y.Doc) =>
      (doc.getMap('sketch').get('elements') as Y.Map<unknown>).get('car-a') as
        Y.Map<unknown> | undefined;
    await waitFor(() => carOf(b.doc) !== undefined, 5_000, 'B never saw the element');
    const server = await probe(ctx, s, 'A');
    await waitFor(
      () => String(server.doc.getMap('vehicleB').get('remarks')) === 'B was here',
      5_000,
      "B's first edit was not served",
    );

    b.provider.disconnect();
    carOf(b.doc)!.set('x', 5);
    (a.doc.getMap('sketch').get('elements') as Y.Map<unknown>).delete('car-a');
    await waitFor(() => carOf(server.doc) === undefined, 5_000, "A's erase was not served");
    b.provider.connect();
    await waitFor(() => b.provider.synced, 5_000, 'B did not re-sync');
    await sleep(SETTLE_MS);
    writeSection(b.doc, 'vehicleB', { comingFrom: 'Oran' });
    await waitFor(
      () => String(server.doc.getMap('vehicleB').get('comingFrom')) === 'Oran',
      10_000,
      "B's edit after the merge never reached the server",
    );
    assert.equal(b.events, [], 'B was sent no session event');
    assert.equal(b.closes, [], 'B was never closed');
  });
});

serverSuite('permissions (postgres+redis)', { database: 'postgres', hub: 'redis' }, (test) => {
  registerAttack(
    test,
    'B',
    INSERTS.find((a) => a.name.includes('vehicle'))!,
  );
  registerAttack(test, 'B', DELETES[0]!);
  registerAttack(test, 'A', DELETES[1]!);
  registerAttack(
    test,
    'A',
    INSERTS.find((a) => a.name.includes('meta.clients'))!,
  );
});
