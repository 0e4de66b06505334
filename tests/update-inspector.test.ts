/**
 * inspectUpdate against in-memory documents: a "server" document created the way a session is
 * opened (meta, skeleton, client owners) and loaded into a fresh Y.Doc as a live session does,
 * and "device" documents synced from it. Updates are produced by real Yjs edits where Yjs can
 * produce them, and hand-encoded (update format v1) for what only a hostile client would send:
 * GC structs under someone else's client id, forged parents, impossible origin chains.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as Y from 'yjs';
import { inspectUpdate, type Inspection } from '../sync/update-inspector.js';
import { ownerOf, recordOwners } from '../constat/client-owners.js';
import { createSkeleton, writeMeta, writeSignature } from '../constat/constat-doc.js';
import type { Role } from '../constat/permissions.js';
import { encodeRaw, type RawStruct } from './support/raw-update.js';

const SERVER = Symbol('test-server');
const ROOTS_UNDER_TEST = [
  'meta',
  'accident',
  'vehicleA',
  'vehicleB',
  'sketch',
  'signatures',
  'evil',
] as const;
// Written out rather than taken from permissions.ts, so a change to the rule shows up here.
const EXPECTED_WRITABLE: Record<Role, readonly string[]> = {
  A: ['accident', 'vehicleA', 'sketch'],
  B: ['accident', 'vehicleB', 'sketch'],
};
const other = (role: Role): Role => (role === 'A' ? 'B' : 'A');

// ---------------------------------------------------------------------------------------------
// Harness

class Harness {
  /** The live document, as LiveSession holds it. */
  readonly server = new Y.Doc();
  /** Client id of the document that opened the session (recorded as the server's). */
  readonly creatorClient: number;

  constructor() {
    const created = new Y.Doc();
    created.clientID = 101;
    this.server.clientID = 102;
    writeMeta(
      created,
      { formVersion: 'dz', sessionId: 'inspector-test', createdAt: '2025-03-14T17:45:00.000Z' },
      SERVER,
    );
    createSkeleton(created, SERVER);
    recordOwners(created, [], 'server', SERVER);
    this.creatorClient = created.clientID;
    Y.applyUpdate(this.server, Y.encodeStateAsUpdate(created), SERVER);
    created.destroy();
  }

  inspect(update: Uint8Array, sender: Role): Inspection {
    return inspectUpdate(this.server, update, sender, (client) => ownerOf(this.server, client));
  }

  /** What LiveSession does with an accepted update: record new owners, then apply. */
  accept(update: Uint8Array, sender: Role): Inspection & { kind: 'ok' } {
    const verdict = this.inspect(update, sender);
    if (verdict.kind !== 'ok') {
      throw new Error(`expected the update to be accepted, got ${JSON.stringify(verdict)}`);
    }
    if (verdict.newClients.length > 0)
      recordOwners(this.server, verdict.newClients, sender, SERVER);
    Y.applyUpdate(this.server, update, sender);
    return verdict;
  }

  /** A device document that received the server's whole state. */
  device(clientID?: number): Y.Doc {
    const doc = new Y.Doc();
    this.sync(doc);
    // Set after syncing: Yjs gives a document a new client id when it receives structs under
    // its own (it takes that for another client using the same id).
    if (clientID !== undefined) doc.clientID = clientID;
    return doc;
  }

  /** An edit made on a throwaway copy of a device, so refused trials do not pile up. */
  trial(clientID: number, change: (doc: Y.Doc) => void): Uint8Array {
    const doc = this.device(clientID);
    return edit(doc, () => change(doc));
  }

  /** Brings a device up to date with the server (what sync step 2 does). */
  sync(doc: Y.Doc): void {
    Y.applyUpdate(doc, Y.encodeStateAsUpdate(this.server, Y.encodeStateVector(doc)), SERVER);
  }

  /** A device edits, the server accepts, the device is synced back (owners recorded). */
  commit(doc: Y.Doc, sender: Role, change: () => void): void {
    this.accept(edit(doc, change), sender);
    this.sync(doc);
  }
}

/** The update(s) one device emits for `change`, merged as a device's step 2 would carry them. */
function edit(doc: Y.Doc, change: () => void): Uint8Array {
  const updates: Uint8Array[] = [];
  const listener = (update: Uint8Array) => updates.push(update);
  doc.on('update', listener);
  try {
    doc.transact(change);
  } finally {
    doc.off('update', listener);
  }
  if (updates.length === 0) throw new Error('the edit produced no update');
  return updates.length === 1 ? updates[0]! : Y.mergeUpdates(updates);
}

function yMap(doc: Y.Doc, root: string, ...path: string[]): Y.Map<unknown> {
  let map = doc.getMap<unknown>(root);
  for (const key of path) {
    const next = map.get(key);
    if (!(next instanceof Y.Map)) throw new Error(`no map at ${root}.${path.join('.')}`);
    map = next as Y.Map<unknown>;
  }
  return map;
}

function assertOk(verdict: Inspection, roots: string[], message?: string): void {
  assert.is(verdict.kind, 'ok', `${message ?? ''} ${JSON.stringify(verdict)}`);
  if (verdict.kind === 'ok') assert.equal([...verdict.roots].sort(), [...roots].sort(), message);
}

function assertForbidden(verdict: Inspection, root: string, message?: string): void {
  assert.is(verdict.kind, 'forbidden', `${message ?? ''} ${JSON.stringify(verdict)}`);
  if (verdict.kind === 'forbidden') assert.is(verdict.root, root, message);
}

function decoded(update: Uint8Array): Array<Y.Item | Y.GC | Y.Skip> {
  return Y.decodeUpdate(update).structs as Array<Y.Item | Y.GC | Y.Skip>;
}

/** Fresh client ids that cannot collide with Yjs's random ones in these tests. */
let nextRawClient = 7_000_001;
const rawClient = () => nextRawClient++;

// ---------------------------------------------------------------------------------------------
// Inserts, per party and root

test('hand encoder: Yjs decodes and integrates what it writes', () => {
  const h = new Harness();
  const client = rawClient();
  const update = encodeRaw([
    {
      client,
      clock: 0,
      structs: [
        { parent: 'sketch', parentSub: 'title', content: { any: ['hi'] } },
        { parent: 'sketch', parentSub: 'n', content: { any: [1, 'x'] } },
        { parent: 'sketch', parentSub: 'inner', content: { type: 'map' } },
        { parent: [client, 3], parentSub: 'k', content: { any: [true] } },
      ],
    },
  ]);
  const doc = h.device();
  Y.applyUpdate(doc, update);
  assert.equal(doc.getMap('sketch').get('title'), 'hi');
  assert.equal((doc.getMap('sketch').get('inner') as Y.Map<unknown>).toJSON(), { k: true });
  assert.is(doc.store.pendingStructs, null);
});

for (const role of ['A', 'B'] as const) {
  for (const root of ROOTS_UNDER_TEST) {
    const allowed = EXPECTED_WRITABLE[role].includes(root);
    test(`party ${role}: a key set on root "${root}" is ${allowed ? 'ok' : 'forbidden'}`, () => {
      const h = new Harness();
      const device = h.device();
      const update = edit(device, () => device.getMap(root).set('probe', 'value'));
      const verdict = h.inspect(update, role);
      if (allowed) {
        assertOk(verdict, [root]);
        assert.equal(verdict.kind === 'ok' && verdict.newClients, [device.clientID]);
      } else {
        assertForbidden(verdict, root);
      }
    });
  }

  // Inserts into containers the server created (their items have an id as parent, not a name).
  const nested: Array<[root: string, path: string[]]> = [
    ['meta', ['clients']],
    ['accident', ['place']],
    ['vehicleA', ['driver']],
    ['vehicleB', ['insurer']],
    ['sketch', ['elements']],
  ];
  for (const [root, path] of nested) {
    const allowed = EXPECTED_WRITABLE[role].includes(root);
    test(`party ${role}: a key set in ${root}.${path.join('.')} is ${allowed ? 'ok' : 'forbidden'}`, () => {
      const h = new Harness();
      const device = h.device();
      // In meta.clients this is a device claiming a client id as the server's.
      const update = edit(device, () =>
        yMap(device, root, ...path).set(String(device.clientID), 'server'),
      );
      assert.ok(
        decoded(update).every((s) => !(s instanceof Y.Item) || typeof s.parent !== 'string'),
        'premise: the struct names its parent by id',
      );
      const verdict = h.inspect(update, role);
      if (allowed) assertOk(verdict, [root]);
      else assertForbidden(verdict, root);
    });
  }

  test(`party ${role}: typing into server-created texts follows the root`, () => {
    const h = new Harness();
    for (const [root, path, field] of [
      ['accident', ['place'], 'address'],
      ['vehicleA', ['policyholder'], 'lastName'],
      ['vehicleB', [], 'remarks'],
    ] as const) {
      const device = h.device();
      const text = yMap(device, root, ...path).get(field);
      assert.instance(text, Y.Text, `${root} skeleton text`);
      const update = edit(device, () => (text as Y.Text).insert(0, 'Rue'));
      const verdict = h.inspect(update, role);
      if (EXPECTED_WRITABLE[role].includes(root)) assertOk(verdict, [root], root);
      else assertForbidden(verdict, root, root);
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Deletions

/**
 * A session where each party has put a key, a text and an array into its own vehicle, both into
 * the accident and the sketch, and the server has written meta, a signature and a root outside
 * the layout.
 */
function filledSession(): { h: Harness; devices: Record<Role, Y.Doc> } {
  const h = new Harness();
  const devices = { A: h.device(1_001), B: h.device(1_002) };
  for (const role of ['A', 'B'] as const) {
    const doc = devices[role];
    h.commit(doc, role, () => {
      const vehicle = doc.getMap<unknown>(`vehicle${role}`);
      vehicle.set('note', 'written by its owner');
      (vehicle.get('remarks') as Y.Text).insert(0, 'hello world');
      const tags = new Y.Array<number>();
      vehicle.set('tags', tags);
      tags.push([1, 2, 3, 4]);
      doc.getMap('accident').set(`note${role}`, role);
      yMap(doc, 'sketch', 'elements').set(`car-${role}`, new Y.Map([['kind', 'vehicle']]));
    });
  }
  writeSignature(
    h.server,
    'A',
    {
      hash: 'ab'.repeat(32),
      signature: 'c2lnbmF0dXJl',
      deviceId: 'device-a',
      userId: 'user-a',
      signedAt: '2025-03-14T18:00:00.000Z',
    },
    SERVER,
  );
  h.server.transact(() => h.server.getMap('evil').set('left', 'by the server'), SERVER);
  h.sync(devices.A);
  h.sync(devices.B);
  return { h, devices };
}

for (const role of ['A', 'B'] as const) {
  const deletions: Array<[root: string, what: string, change: (doc: Y.Doc) => void]> = [
    ['meta', 'a map key', (doc) => doc.getMap('meta').delete('sessionId')],
    ['meta', 'a client owner', (doc) => yMap(doc, 'meta', 'clients').clear()],
    ['signatures', 'a map key', (doc) => doc.getMap('signatures').delete('A')],
    ['evil', 'a map key', (doc) => doc.getMap('evil').delete('left')],
    ['accident', 'a map key', (doc) => doc.getMap('accident').delete(`note${other(role)}`)],
    ['sketch', 'a map key', (doc) => yMap(doc, 'sketch', 'elements').delete(`car-${other(role)}`)],
  ];
  for (const owner of ['A', 'B'] as const) {
    const root = `vehicle${owner}`;
    deletions.push(
      [root, 'a map key', (doc) => doc.getMap(root).delete('note')],
      [root, 'text', (doc) => (doc.getMap(root).get('remarks') as Y.Text).delete(2, 5)],
      [
        root,
        'array items',
        (doc) => (doc.getMap(root).get('tags') as Y.Array<number>).delete(1, 2),
      ],
    );
  }
  for (const [root, what, change] of deletions) {
    const allowed = EXPECTED_WRITABLE[role].includes(root);
    test(`party ${role}: deleting ${what} in "${root}" is ${allowed ? 'ok' : 'forbidden'}`, () => {
      const { h, devices } = filledSession();
      const update = edit(devices[role], () => change(devices[role]));
      assert.is(decoded(update).length, 0, 'premise: the update carries deletions only');
      const verdict = h.inspect(update, role);
      if (allowed) assertOk(verdict, [root]);
      else assertForbidden(verdict, root);
    });
  }
}

test('a forbidden deletion is refused even next to allowed inserts', () => {
  const { h, devices } = filledSession();
  const b = devices.B;
  const update = edit(b, () => {
    b.getMap('vehicleB').set('plate', '00123-116-16');
    b.getMap('vehicleA').delete('note');
  });
  assertForbidden(h.inspect(update, 'B'), 'vehicleA');
});

test('a resent deletion of content already deleted changes nothing', () => {
  const { h, devices } = filledSession();
  const a = devices.A;
  h.commit(a, 'A', () => a.getMap('vehicleA').delete('note'));
  // B's copy learns of the deletion, then B resends its whole state: A's deletion in vehicleA
  // is part of B's delete set and must not count as B deleting there.
  h.sync(devices.B);
  assertOk(h.inspect(Y.encodeStateAsUpdate(devices.B), 'B'), []);
});

// ---------------------------------------------------------------------------------------------
// Nested types

test('items inside nested types created in the same update follow the root', () => {
  for (const role of ['A', 'B'] as const) {
    for (const root of ['sketch', 'vehicleA', 'vehicleB']) {
      const h = new Harness();
      const device = h.device();
      const update = edit(device, () => {
        const element = new Y.Map<unknown>();
        const container =
          root === 'sketch' ? yMap(device, 'sketch', 'elements') : yMap(device, root, 'vehicle');
        container.set('nested', element);
        element.set('kind', 'stroke');
        const points = new Y.Array<number>();
        element.set('points', points);
        points.push([0, 0, 10, 10]);
        const label = new Y.Text();
        element.set('text', label);
        label.insert(0, 'A → B');
      });
      const verdict = h.inspect(update, role);
      if (EXPECTED_WRITABLE[role].includes(root)) assertOk(verdict, [root], `${role} ${root}`);
      else assertForbidden(verdict, root, `${role} ${root}`);
    }
  }
});

test('items inside a type created by another client of the same update follow its root', () => {
  // Two client ids of one phone (the app restarted while offline), merged into one step 2. The
  // higher id is decoded first, so its items are resolved through structs not yet seen.
  for (const [role, root] of [
    ['A', 'sketch'],
    ['B', 'vehicleA'],
  ] as const) {
    const h = new Harness();
    const first = h.device(1_000_001);
    const second = h.device(9_000_001);
    const created = edit(first, () => {
      const container =
        root === 'sketch' ? yMap(first, 'sketch', 'elements') : yMap(first, root, 'driver');
      container.set('made-offline', new Y.Map());
    });
    Y.applyUpdate(second, created);
    const filled = edit(second, () => {
      const container =
        root === 'sketch' ? yMap(second, 'sketch', 'elements') : yMap(second, root, 'driver');
      const map = container.get('made-offline') as Y.Map<unknown>;
      map.set('kind', 'arrow');
      const points = new Y.Array<number>();
      map.set('points', points);
      points.push([1, 2]);
    });
    const update = Y.mergeUpdates([created, filled]);
    assert.is(decoded(update)[0]!.id.client, 9_000_001, 'premise: the inner client comes first');
    const verdict = h.inspect(update, role);
    if (role === 'A') {
      assertOk(verdict, ['sketch']);
      assert.equal(verdict.kind === 'ok' && [...verdict.newClients].sort(), [1_000_001, 9_000_001]);
    } else {
      assertForbidden(verdict, 'vehicleA');
    }
  }
});

test('items inside nested types created in an earlier update follow the root', () => {
  const h = new Harness();
  const a = h.device();
  const b = h.device();
  h.commit(a, 'A', () => {
    const stroke = new Y.Map<unknown>([['kind', 'stroke']]);
    yMap(a, 'sketch', 'elements').set('stroke-1', stroke);
    stroke.set('points', new Y.Array<number>());
    stroke.set('text', new Y.Text());
    const extra = new Y.Map<unknown>();
    yMap(a, 'vehicleA', 'vehicle').set('extra', extra);
    extra.set('points', new Y.Array<number>());
    extra.set('text', new Y.Text());
    extra.set('inner', new Y.Map());
  });
  h.sync(b);
  for (const role of ['A', 'B'] as const) {
    const client = (role === 'A' ? a : b).clientID;
    for (const [root, container] of [
      ['sketch', (doc: Y.Doc) => yMap(doc, 'sketch', 'elements', 'stroke-1')],
      ['vehicleA', (doc: Y.Doc) => yMap(doc, 'vehicleA', 'vehicle', 'extra')],
    ] as const) {
      const changes: Array<[string, (doc: Y.Doc) => void]> = [
        ['array', (doc) => (container(doc).get('points') as Y.Array<number>).push([5, 6])],
        ['text', (doc) => (container(doc).get('text') as Y.Text).insert(0, 'x')],
        ['map', (doc) => container(doc).set('rotation', 90)],
      ];
      if (root === 'vehicleA') {
        changes.push([
          'inner map',
          (doc) => (container(doc).get('inner') as Y.Map<unknown>).set('k', 1),
        ]);
      }
      for (const [kind, change] of changes) {
        const update = h.trial(client, change);
        const struct = decoded(update)[0] as Y.Item;
        assert.ok(struct.parent instanceof Y.ID, `premise: ${kind} item names its parent by id`);
        const verdict = h.inspect(update, role);
        const message = `${role} ${kind} in ${root}`;
        if (EXPECTED_WRITABLE[role].includes(root)) assertOk(verdict, [root], message);
        else assertForbidden(verdict, root, message);
      }
    }
  }
});

test('an insert in the middle of a text or array inherits its root from its neighbours', () => {
  const { h, devices } = filledSession();
  for (const role of ['A', 'B'] as const) {
    const text = (doc: Y.Doc) => doc.getMap('vehicleA').get('remarks') as Y.Text;
    const tags = (doc: Y.Doc) => doc.getMap('vehicleA').get('tags') as Y.Array<number>;
    const cases: Array<[string, (doc: Y.Doc) => void, 'origin' | 'rightOrigin' | 'both']> = [
      ['text, middle', (doc) => text(doc).insert(5, ','), 'both'],
      ['text, start', (doc) => text(doc).insert(0, '> '), 'rightOrigin'],
      ['text, end', (doc) => text(doc).insert(text(doc).length, '!'), 'origin'],
      ['array, middle', (doc) => tags(doc).insert(2, [9]), 'both'],
      ['array, start', (doc) => tags(doc).insert(0, [0]), 'rightOrigin'],
    ];
    for (const [name, change, neighbours] of cases) {
      const update = h.trial(devices[role].clientID, change);
      const struct = decoded(update)[0] as Y.Item;
      assert.is(struct.parent, null, `premise: ${name} carries no parent`);
      assert.is(struct.origin !== null, neighbours !== 'rightOrigin', `premise: ${name} origin`);
      assert.is(struct.rightOrigin !== null, neighbours !== 'origin', `premise: ${name} right`);
      const verdict = h.inspect(update, role);
      if (role === 'A') assertOk(verdict, ['vehicleA'], `${role} ${name}`);
      else assertForbidden(verdict, 'vehicleA', `${role} ${name}`);
    }
  }
});

test('a forged item naming an allowed parent but placed next to forbidden content is refused', () => {
  // Yjs places an item after its origin and takes the origin's parent when none is given; a
  // hand-made item with an origin in vehicleA lands in vehicleA whatever else it claims.
  const { h } = filledSession();
  const text = h.server.getMap('vehicleA').get('remarks') as Y.Text;
  const first = text._start!;
  const update = encodeRaw([
    {
      client: rawClient(),
      clock: 0,
      structs: [
        {
          origin: [first.id.client, first.id.clock + 2],
          content: { string: 'injected' },
        },
      ],
    },
  ]);
  assertForbidden(h.inspect(update, 'B'), 'vehicleA');
});

// ---------------------------------------------------------------------------------------------
// Duplicates, client ids, GC structs

test('a resent full update changes nothing', () => {
  const { h, devices } = filledSession();
  for (const role of ['A', 'B'] as const) {
    const verdict = h.inspect(Y.encodeStateAsUpdate(devices[role]), role);
    assertOk(verdict, []);
    assert.equal(verdict.kind === 'ok' && verdict.newClients, []);
  }
});

test("an update under the other party's client id is refused as transient", () => {
  const { h, devices } = filledSession();
  const aClient = devices.A.clientID;
  assert.is(ownerOf(h.server, aClient), 'A', 'premise: A owns its client id');
  const forger = h.device(aClient); // B's phone posing as A's client
  const update = edit(forger, () => forger.getMap('sketch').set('forged', true));
  assert.is(decoded(update)[0]!.id.clock, Y.getState(h.server.store, aClient), 'premise: no gap');
  const verdict = h.inspect(update, 'B');
  assert.is(verdict.kind, 'retry', JSON.stringify(verdict));
  // The same edit from A (a second phone of A restoring its state) is A's to make.
  assertOk(h.inspect(update, 'A'), ['sketch']);
});

test("an update under the server's client id is forbidden", () => {
  const { h } = filledSession();
  for (const client of [h.creatorClient, h.server.clientID]) {
    const forger = h.device(client);
    const update = edit(forger, () => forger.getMap('sketch').set('forged', true));
    for (const role of ['A', 'B'] as const) {
      const verdict = h.inspect(update, role);
      assert.is(verdict.kind, 'forbidden', `${client}: ${JSON.stringify(verdict)}`);
    }
  }
});

test('GC structs: refused under the other party or the server, accepted under own or new ids', () => {
  const { h, devices } = filledSession();
  const gcAt = (client: number, clock = Y.getState(h.server.store, client)) =>
    encodeRaw([{ client, clock, structs: [{ gc: 5 }] }]);
  const a = devices.A.clientID;
  const b = devices.B.clientID;
  const byB = (client: number, clock?: number) => h.inspect(gcAt(client, clock), 'B');

  assert.is(byB(a).kind, 'retry', "GC under A's client id, at A's next clock");
  assert.is(byB(a, Y.getState(h.server.store, a) + 3).kind, 'retry', 'and past it');
  assert.is(byB(h.creatorClient).kind, 'forbidden', "GC under the session creator's id");
  assert.is(byB(h.server.clientID).kind, 'forbidden', "GC under the live document's id");
  assertOk(byB(b), [], "GC under B's own id");
  const fresh = rawClient();
  const verdict = byB(fresh, 0);
  assertOk(verdict, [], 'GC under a new id');
  assert.equal(verdict.kind === 'ok' && verdict.newClients, [fresh]);
  // Applying B's GC structs must leave A's next edits intact.
  h.accept(gcAt(b), 'B');
  const next = edit(devices.A, () => devices.A.getMap('vehicleA').set('after', 1));
  h.accept(next, 'A');
  assert.is(h.server.getMap('vehicleA').get('after'), 1);
});

// ---------------------------------------------------------------------------------------------
// Nothing left pending (issue 11, items 1 and 3)

/** B's attack: a Skip over A's next clocks, a delete set over them, one real deletion of B's. */
function parkedDeletion(h: Harness, devices: Record<Role, Y.Doc>, skip = 50): Uint8Array {
  const a = devices.A.clientID;
  const b = devices.B.clientID;
  const next = Y.getState(h.server.store, a);
  return encodeRaw(
    [{ client: a, clock: next, structs: [{ skip }] }],
    [
      { client: a, ranges: [[next, skip]] },
      { client: b, ranges: [[0, 1]] },
    ],
  );
}

test("parked deletions: a Skip and a delete set over A's future clocks are refused", () => {
  const { h, devices } = filledSession();
  const attack = parkedDeletion(h, devices);
  const verdict = h.inspect(attack, 'B');
  assert.is(verdict.kind, 'retry', JSON.stringify(verdict));
  // Whatever the verdict, applying what was accepted must never park anything: A's next edits
  // reach the server intact.
  const next = edit(devices.A, () => devices.A.getMap('vehicleA').set('after', 'kept'));
  h.accept(next, 'A');
  assert.is(h.server.getMap('vehicleA').get('after'), 'kept');
  assert.is(h.server.store.pendingDs, null);
});

test('a Skip is owned like any struct, and one past the known clocks is a gap', () => {
  const { h, devices } = filledSession();
  const skipAt = (client: number, clock = Y.getState(h.server.store, client), len = 3) =>
    encodeRaw([{ client, clock, structs: [{ skip: len }] }]);
  assert.is(h.inspect(skipAt(devices.A.clientID), 'B').kind, 'retry', "under A's id");
  assert.is(h.inspect(skipAt(h.creatorClient), 'B').kind, 'forbidden', "under the server's id");
  assert.is(h.inspect(skipAt(devices.B.clientID), 'B').kind, 'retry', 'own id, past its clocks');
  assert.is(h.inspect(skipAt(rawClient(), 0), 'B').kind, 'retry', 'a new id');
  // A Skip over clocks the server already has is a hole in a merged update: harmless.
  assertOk(h.inspect(skipAt(devices.A.clientID, 0, 2), 'B'), [], 'over known clocks');
  // A Skip between two structs of one's own: the second would be parked.
  const b = devices.B.clientID;
  const start = Y.getState(h.server.store, b);
  const gap = encodeRaw([
    {
      client: b,
      clock: start,
      structs: [
        { parent: 'vehicleB', parentSub: 'x', content: { any: [1] } },
        { skip: 2 },
        { parent: 'vehicleB', parentSub: 'y', content: { any: [2] } },
      ],
    },
  ]);
  assert.is(h.inspect(gap, 'B').kind, 'retry', 'a struct after a hole');
});

test('a deletion may name clocks the update itself fills, not clocks past them', () => {
  const { h, devices } = filledSession();
  const b = devices.B.clientID;
  const start = Y.getState(h.server.store, b);
  const item: RawStruct = { parent: 'vehicleB', parentSub: 'z', content: { any: [1] } };
  const insertAndDelete = (len: number) =>
    encodeRaw(
      [{ client: b, clock: start, structs: [item] }],
      [{ client: b, ranges: [[start, len]] }],
    );
  assertOk(h.inspect(insertAndDelete(1), 'B'), ['vehicleB'], 'inserted and deleted at once');
  assert.is(h.inspect(insertAndDelete(5), 'B').kind, 'retry', 'and four clocks beyond');
  // What Yjs emits for the same thing: type and erase in one transaction.
  const doc = devices.B;
  const both = edit(doc, () => {
    const text = doc.getMap('vehicleB').get('remarks') as Y.Text;
    text.insert(0, 'oops');
    text.delete(0, 4);
  });
  assertOk(h.inspect(both, 'B'), ['vehicleB'], 'a stock edit');
});

test('an accepted update never leaves anything pending on the server', () => {
  const { h, devices } = filledSession();
  const doc = devices.B;
  for (let i = 0; i < 20; i++) {
    h.commit(doc, 'B', () => {
      const text = doc.getMap('vehicleB').get('remarks') as Y.Text;
      text.insert(i % 3, `w${i}`);
      if (i % 4 === 0) text.delete(0, 2);
    });
    assert.is(h.server.store.pendingStructs, null);
    assert.is(h.server.store.pendingDs, null);
  }
});

test('a client id the other party announced in its presence cannot be introduced first', () => {
  const h = new Harness();
  const announced = rawClient();
  const gc = encodeRaw([{ client: announced, clock: 0, structs: [{ gc: 2 }] }]);
  const announcedBy = (client: number) => (client === announced ? ('A' as const) : undefined);
  const inspect = (sender: Role) =>
    inspectUpdate(h.server, gc, sender, (c) => ownerOf(h.server, c), announcedBy);
  assert.is(inspect('B').kind, 'retry', 'B pre-claiming A’s announced id');
  const byA = inspect('A');
  assert.is(byA.kind, 'ok');
  assert.equal(byA.kind === 'ok' && byA.newClients, [announced], 'A introduces it as its own');
});

// ---------------------------------------------------------------------------------------------
// Nesting depth (issue 11, item 2)

/** A chain of `depth` nested maps under accident.chain, as one update of one client. */
function nestedMaps(client: number, clock: number, depth: number): Uint8Array {
  const structs: Parameters<typeof encodeRaw>[0][number]['structs'] = [
    { parent: 'accident', parentSub: 'chain', content: { type: 'map' } },
  ];
  for (let i = 1; i < depth; i++) {
    structs.push({ parent: [client, clock + i - 1], parentSub: 'k', content: { type: 'map' } });
  }
  return encodeRaw([{ client, clock, structs }]);
}

test('nesting: 32 levels are accepted, 33 and a 20,000-deep chain are refused', () => {
  const h = new Harness();
  assertOk(h.inspect(nestedMaps(rawClient(), 0, 32), 'B'), ['accident'], '32 levels');
  assert.is(h.inspect(nestedMaps(rawClient(), 0, 33), 'B').kind, 'too-deep', '33 levels');
  const started = performance.now();
  const chain = nestedMaps(rawClient(), 0, 20_000);
  assert.is(h.inspect(chain, 'B').kind, 'too-deep', '20,000 levels');
  assert.ok(performance.now() - started < 2_000, 'inspected in reasonable time');
});

test('nesting: JSON values count their own levels, and growing an existing chain counts', () => {
  const h = new Harness();
  const client = rawClient();
  h.accept(nestedMaps(client, 0, 30), 'A');
  const deepJson = (levels: number): unknown => {
    let v: unknown = 1;
    for (let i = 0; i < levels; i++) v = i % 2 ? [v] : { v };
    return v;
  };
  const at = (value: unknown) =>
    encodeRaw([
      {
        client,
        clock: 30,
        structs: [{ parent: [client, 29], parentSub: 'j', content: { any: [value] } }],
      },
    ]);
  // Entries of the 30th map sit at level 31: a two-level value reaches 32, three reach 33.
  assertOk(h.inspect(at(deepJson(2)), 'A'), ['accident']);
  assert.is(h.inspect(at(deepJson(3)), 'A').kind, 'too-deep');
  assertOk(h.inspect(at('a string at any level'), 'A'), ['accident']);
  // Maps inside the 30th: the 31st and 32nd are fine, a 33rd is not.
  const more = (n: number) =>
    encodeRaw([
      {
        client,
        clock: 30,
        structs: Array.from({ length: n }, (_, i) => ({
          parent: [client, 29 + i] as const,
          parentSub: 'm',
          content: { type: 'map' as const },
        })),
      },
    ]);
  assertOk(h.inspect(more(2), 'A'), ['accident'], 'two more maps');
  assert.is(h.inspect(more(3), 'A').kind, 'too-deep', 'three more maps');
});

// ---------------------------------------------------------------------------------------------
// Missing dependencies and garbage

test('an update depending on an earlier update the server lacks is refused as transient', () => {
  const h = new Harness();
  const a = h.device();
  edit(a, () => a.getMap('sketch').set('first', 1)); // never reaches the server
  const second = edit(a, () => a.getMap('sketch').set('second', 2));
  assert.is(h.inspect(second, 'A').kind, 'retry', 'clock gap');

  const text = h.device();
  edit(text, () =>
    (yMap(text, 'vehicleA', 'policyholder').get('lastName') as Y.Text).insert(0, 'Had'),
  );
  const typed = edit(text, () =>
    (yMap(text, 'vehicleA', 'policyholder').get('lastName') as Y.Text).insert(3, 'dad'),
  );
  assert.is(h.inspect(typed, 'A').kind, 'retry', 'origin the server does not have');
});

test('a deletion of content the server does not have is refused as transient', () => {
  const h = new Harness();
  const a = h.device();
  edit(a, () => a.getMap('sketch').set('drawn', 1)); // never reaches the server
  const erased = edit(a, () => a.getMap('sketch').delete('drawn'));
  assert.is(decoded(erased).length, 0);
  assert.is(h.inspect(erased, 'A').kind, 'retry', 'deletion of an unknown item');

  const known = h.creatorClient;
  const beyond = encodeRaw(
    [],
    [{ client: known, ranges: [[Y.getState(h.server.store, known), 4]] }],
  );
  assert.is(h.inspect(beyond, 'A').kind, 'retry', 'deletion past a known client state');
  const stranger = encodeRaw([], [{ client: rawClient(), ranges: [[0, 1]] }]);
  assert.is(h.inspect(stranger, 'A').kind, 'retry', 'deletion for an unknown client');
});

test('garbage is malformed, and no prefix of a valid update is accepted', () => {
  const h = new Harness();
  const garbage = [
    new Uint8Array([]),
    new Uint8Array([0xff]),
    new Uint8Array(16).fill(0xff),
    new Uint8Array([1, 1, 5, 0, 0xde, 0xad, 0xbe, 0xef]),
    new TextEncoder().encode('{"not":"yjs"}'),
  ];
  for (const bytes of garbage) {
    assert.is(h.inspect(bytes, 'A').kind, 'malformed', `[${[...bytes].join(',')}]`);
  }
  const a = h.device();
  const update = edit(a, () => {
    a.getMap('sketch').set('k', 'v');
    (yMap(a, 'accident', 'place').get('address') as Y.Text).insert(0, 'Alger');
  });
  for (let length = 0; length < update.byteLength; length++) {
    const verdict = h.inspect(update.subarray(0, length), 'A');
    assert.is(verdict.kind, 'malformed', `prefix of ${length} bytes: ${JSON.stringify(verdict)}`);
  }
});

test('updates Yjs cannot integrate are refused, without throwing', () => {
  // Structs of one client integrate in clock order, so a parent or neighbour at a later clock of
  // the same client can never be found: Yjs throws on such an update or leaves it pending. The
  // inspector must refuse these (retry or malformed), never accept them, and never throw: a
  // throw reaches the device as 1011, and an accepted update has already gone to the hub by
  // the time Yjs fails on it.
  const h = new Harness();
  const cases: Array<[string, (client: number) => Parameters<typeof encodeRaw>[0]]> = [
    [
      'origin inside itself',
      (c) => [{ client: c, clock: 0, structs: [{ origin: [c, 1], content: { string: 'abc' } }] }],
    ],
    [
      'parent is itself',
      (c) => [
        {
          client: c,
          clock: 0,
          structs: [{ parent: [c, 0], parentSub: 'k', content: { type: 'map' } }],
        },
      ],
    ],
    [
      'parent at a later clock',
      (c) => [
        {
          client: c,
          clock: 0,
          structs: [
            { parent: [c, 1], parentSub: 'k', content: { any: [1] } },
            { parent: 'sketch', parentSub: 'm', content: { type: 'map' } },
          ],
        },
      ],
    ],
    [
      'origin at a later clock',
      (c) => [
        {
          client: c,
          clock: 0,
          structs: [
            { origin: [c, 1], content: { any: [1] } },
            { parent: 'sketch', parentSub: 'm', content: { any: [2] } },
          ],
        },
      ],
    ],
    [
      'right origin at a later clock',
      (c) => [
        {
          client: c,
          clock: 0,
          structs: [
            { rightOrigin: [c, 1], content: { any: [1] } },
            { parent: 'sketch', parentSub: 'm', content: { any: [2] } },
          ],
        },
      ],
    ],
    [
      'right origin at a later clock, origin known',
      (c) => [
        {
          client: c,
          clock: 0,
          structs: [
            { parent: 'sketch', parentSub: 'm', content: { any: [1] } },
            { origin: [c, 0], rightOrigin: [c, 2], content: { any: [2] } },
            { parent: 'sketch', parentSub: 'n', content: { any: [3] } },
          ],
        },
      ],
    ],
    [
      'two clients parenting each other',
      (c) => [
        {
          client: c + 1,
          clock: 0,
          structs: [{ parent: [c, 0], parentSub: 'k', content: { type: 'map' } }],
        },
        {
          client: c,
          clock: 0,
          structs: [{ parent: [c + 1, 0], parentSub: 'k', content: { type: 'map' } }],
        },
      ],
    ],
    [
      'a chain of 20,000 origins, each at the next clock, ending in vehicleA',
      (c) => [
        {
          client: c,
          clock: 0,
          structs: [
            ...Array.from({ length: 20_000 }, (_, i): RawStruct => ({
              origin: [c, i + 1],
              content: { any: [i] },
            })),
            { parent: 'vehicleA', parentSub: 'end', content: { any: [0] } },
          ],
        },
      ],
    ],
    [
      'a chain of 20,000 parents, each at the next clock, ending in vehicleA',
      (c) => [
        {
          client: c,
          clock: 0,
          structs: [
            ...Array.from({ length: 20_000 }, (_, i): RawStruct => ({
              parent: [c, i + 1],
              parentSub: 'm',
              content: { type: 'map' },
            })),
            { parent: 'vehicleA', parentSub: 'end', content: { type: 'map' } },
          ],
        },
      ],
    ],
  ];
  const failures: string[] = [];
  for (const [name, build] of cases) {
    const client = rawClient();
    rawClient(); // the two-client case uses client + 1
    const update = encodeRaw(build(client));
    let verdict: Inspection;
    try {
      verdict = h.inspect(update, 'B');
    } catch (err) {
      failures.push(`${name} (${update.byteLength} bytes): threw ${String(err)}`);
      continue;
    }
    if (verdict.kind === 'ok') failures.push(`${name}: accepted`);
  }
  assert.equal(failures, []);
});

// ---------------------------------------------------------------------------------------------
// Differential fuzzing: whatever the inspector accepts, Yjs must apply without touching a root
// the sender may not write.

/** Roots whose content changed between two states of one document (new or newly deleted items). */
function changedRoots(before: Y.Doc, after: Y.Doc): Set<string> {
  const roots = new Set<string>();
  const deletedBefore = Y.createDeleteSetFromStructStore(before.store);
  for (const [client, structs] of after.store.clients) {
    const known = Y.getState(before.store, client);
    for (const struct of structs) {
      if (!(struct instanceof Y.Item)) continue;
      let changed = struct.id.clock + struct.length > known;
      if (!changed && struct.deleted) {
        for (let clock = struct.id.clock; clock < struct.id.clock + struct.length; clock++) {
          if (!Y.isDeleted(deletedBefore, new Y.ID(client, clock))) {
            changed = true;
            break;
          }
        }
      }
      if (!changed) continue;
      let type = struct.parent as Y.AbstractType<unknown>;
      while (type._item !== null) type = type._item.parent as Y.AbstractType<unknown>;
      roots.add(Y.findRootTypeKey(type));
    }
  }
  return roots;
}

function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test('fuzz: accepted updates never change a root the sender may not write', () => {
  const { h, devices } = filledSession();
  // Each seed is one edit by B from the same server state, into every kind of place.
  const seedChanges: Array<(doc: Y.Doc) => void> = [
    (doc) => doc.getMap('vehicleB').set('plate', '00123-116-16'),
    (doc) => (doc.getMap('vehicleB').get('remarks') as Y.Text).insert(5, 'and more'),
    (doc) => (doc.getMap('vehicleA').get('remarks') as Y.Text).insert(5, 'forged'),
    (doc) => (doc.getMap('vehicleA').get('tags') as Y.Array<number>).delete(0, 2),
    (doc) => (doc.getMap('vehicleB').get('tags') as Y.Array<number>).insert(1, [7, 8]),
    (doc) => yMap(doc, 'sketch', 'elements').set('x', new Y.Map([['kind', 'sign']])),
    (doc) => yMap(doc, 'vehicleA', 'driver').set('x', new Y.Map([['kind', 'sign']])),
    (doc) => doc.getMap('meta').delete('sessionId'),
    (doc) => doc.getMap('vehicleA').delete('note'),
  ];
  const seeds = seedChanges.map((change) => {
    const doc = h.device(devices.B.clientID);
    return edit(doc, () => change(doc));
  });

  const baseline = Y.encodeStateAsUpdate(h.server);
  const random = prng(20250314);
  const writable = new Set(EXPECTED_WRITABLE.B);
  const kinds: Record<string, number> = {};
  const violations: string[] = [];
  const thrown: string[] = [];
  const applyFailed: string[] = [];
  for (let i = 0; i < 4_000; i++) {
    const bytes = Uint8Array.from(seeds[Math.floor(random() * seeds.length)]!);
    const mutations = 1 + Math.floor(random() * 3);
    for (let m = 0; m < mutations; m++) {
      const at = Math.floor(random() * bytes.length);
      const r = random();
      if (r < 0.5) bytes[at]! ^= 1 << Math.floor(random() * 8);
      else if (r < 0.8) bytes[at] = Math.floor(random() * 256);
      else bytes[at] = [0, 1, 0x7f, 0x80, 0xff][Math.floor(random() * 5)]!;
    }
    let verdict: Inspection;
    try {
      verdict = h.inspect(bytes, 'B');
    } catch (err) {
      thrown.push(`${String(err)} on [${bytes.join(',')}]`);
      continue;
    }
    kinds[verdict.kind] = (kinds[verdict.kind] ?? 0) + 1;
    // LiveSession applies an accepted update only when it brings roots or client ids.
    if (verdict.kind !== 'ok' || (verdict.roots.size === 0 && verdict.newClients.length === 0))
      continue;
    const before = new Y.Doc();
    Y.applyUpdate(before, baseline);
    const after = new Y.Doc();
    Y.applyUpdate(after, baseline);
    try {
      Y.applyUpdate(after, bytes);
    } catch (err) {
      // The live session applies what the inspector accepts after handing it to the hub.
      applyFailed.push(`${String(err)} on [${bytes.join(',')}]`);
      continue;
    }
    for (const root of changedRoots(before, after)) {
      if (!writable.has(root)) violations.push(`${root}: [${bytes.join(',')}]`);
    }
  }
  console.log(`  fuzz verdicts: ${JSON.stringify(kinds)}`);
  // One assertion, so a failure reports every kind of problem at once (with a few examples).
  assert.equal(
    { thrown: thrown.length, violations: violations.length, applyFailed: applyFailed.length },
    { thrown: 0, violations: 0, applyFailed: 0 },
    [...thrown.slice(0, 2), ...violations.slice(0, 2), ...applyFailed.slice(0, 2)].join('\n'),
  );
  assert.ok((kinds.ok ?? 0) > 0 && (kinds.forbidden ?? 0) > 0, 'the fuzz reached both outcomes');
});

// ---------------------------------------------------------------------------------------------
// Cost per sketch stroke update (printed, not asserted)

test('timing: inspecting a one-point stroke update on a 2,000-point sketch', () => {
  const measure = (label: string, interleaved: boolean) => {
    const h = new Harness();
    const a = h.device();
    const b = h.device();
    h.commit(a, 'A', () => {
      const stroke = new Y.Map<unknown>([['kind', 'stroke']]);
      yMap(a, 'sketch', 'elements').set('stroke', stroke);
      stroke.set('points', new Y.Array<number>());
    });
    h.sync(b);
    const points = (doc: Y.Doc) =>
      yMap(doc, 'sketch', 'elements', 'stroke').get('points') as Y.Array<number>;
    for (let i = 0; i < 2_000; i++) {
      // One point per update, as a finger moves; alternating phones defeat Yjs's merging of
      // consecutive items and leave 2,000 separate structs (the worst case for lookups).
      const [doc, role] = interleaved && i % 2 === 1 ? [b, 'B' as const] : [a, 'A' as const];
      h.commit(doc, role, () => points(doc).push([i, i * 2]));
      h.sync(interleaved ? (doc === a ? b : a) : b);
    }
    const update = edit(a, () => points(a).push([2_000, 4_000]));
    for (let i = 0; i < 200; i++) h.inspect(update, 'A'); // warm-up
    const runs = 5_000;
    const started = performance.now();
    for (let i = 0; i < runs; i++) h.inspect(update, 'A');
    const micros = ((performance.now() - started) / runs) * 1000;
    const structs = h.server.store.clients.size;
    console.log(
      `  inspection of a one-point stroke update, ${label}: ${micros.toFixed(1)} µs ` +
        `(${update.byteLength}-byte update, ${structs} clients, ${Y.encodeStateAsUpdate(h.server).byteLength}-byte document)`,
    );
    assertOk(h.inspect(update, 'A'), ['sketch']);
  };
  measure('2,000 points from one phone', false);
  measure('2,000 points alternating between two phones', true);
});

test.run();
