/**
 * The standing guard of the update gate (docs/security.md): fast-check drives two parties
 * against a real server with random sequences of honest edits (stock y-websocket clients) and
 * crafted updates (hand-encoded, sent from a raw socket of either party): writes into the
 * other party's or the server's roots, Skips and delete sets over future clocks, GC structs
 * under anyone's client id, clock gaps, items placed between two roots, parents inside a
 * forbidden type, nesting past the limit, and valid updates under fresh client ids.
 *
 * After every step, through the endpoint only:
 * - nothing of a root the sender may not write changed (vehicle of the other party,
 *   signatures, meta apart from the client-ownership map the server maintains);
 * - the server holds nothing pending: a device syncing from scratch receives no structs or
 *   deletions it cannot integrate (Yjs sends what is pending along with the state);
 * - both honest devices and the server's copy converge, and honest devices are never closed;
 * - the process answers /healthz.
 *
 * Bounded (SYNC_PROPERTY_MS, 40 s from start by default; the run under way then finishes) and seeded: SYNC_PROPERTY_SEED replays a run;
 * the seed is printed at the start and in the failure report.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import * as Y from 'yjs';
import { startTestServer, openPair, type Pair, type TestServer } from './support/server.js';
import { connectDevice, rawSocket, waitFor, type Device } from './support/device.js';
import { encodeRaw, type RawStruct } from './support/raw-update.js';
import { canonicalJson } from '../constat/canonical-json.js';
import { writeUpdate } from '../sync/protocol.js';

type Party = 'A' | 'B';
const other = (p: Party): Party => (p === 'A' ? 'B' : 'A');
const writable = (p: Party) => ['accident', 'sketch', `vehicle${p}`] as const;

const SEED = Number(process.env.SYNC_PROPERTY_SEED ?? Date.now() % 2 ** 31);
// The whole test, server start included; a run under way at the deadline finishes.
const BUDGET_MS = Number(process.env.SYNC_PROPERTY_MS ?? 40_000);

// ---------------------------------------------------------------------------------------------
// Steps as plain data, so fast-check can print and shrink them.

type Value = null | boolean | number | string | { [k: string]: number };
type HonestOp =
  | { op: 'set'; root: number; key: string; value: Value }
  | { op: 'map'; root: number; key: string; inner: string; value: Value }
  | { op: 'text-insert'; root: number; at: number; text: string }
  | { op: 'text-delete'; root: number; at: number; len: number }
  | { op: 'array-push'; root: number; values: number[] }
  | { op: 'array-delete'; root: number; at: number }
  | { op: 'delete'; root: number; key: string };

type Crafted =
  | { craft: 'forbidden-edit'; target: 'other-vehicle' | 'meta' | 'signatures'; erase: boolean }
  | { craft: 'skip-over-other'; span: number; offset: number }
  | { craft: 'gc'; owner: 'own' | 'other' | 'server' | 'fresh'; ahead: number }
  | { craft: 'clock-gap'; ahead: number }
  | { craft: 'future-delete'; owner: 'own' | 'other'; ahead: number; len: number }
  | { craft: 'between-roots'; forbiddenLeft: boolean }
  | { craft: 'inside-forbidden-type' }
  | { craft: 'too-deep'; levels: number }
  | { craft: 'valid-fresh'; root: number; value: Value };

type Step = { party: Party } & (
  { kind: 'honest'; edit: HonestOp } | { kind: 'crafted'; attack: Crafted }
);

const key = fc.constantFrom('k0', 'k1', 'k2');
const value: fc.Arbitrary<Value> = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.integer({ min: -5, max: 1_000 }),
  fc.string({ maxLength: 6 }),
  fc.dictionary(fc.constantFrom('x', 'y'), fc.integer({ min: 0, max: 9 }), {
    maxKeys: 2,
    noNullPrototype: true,
  }),
);
const root = fc.nat({ max: 2 });

const honest: fc.Arbitrary<HonestOp> = fc.oneof(
  fc.record({ op: fc.constant('set' as const), root, key, value }),
  fc.record({ op: fc.constant('map' as const), root, key, inner: key, value }),
  fc.record({
    op: fc.constant('text-insert' as const),
    root,
    at: fc.nat({ max: 20 }),
    text: fc.string({ minLength: 1, maxLength: 5 }),
  }),
  fc.record({
    op: fc.constant('text-delete' as const),
    root,
    at: fc.nat({ max: 20 }),
    len: fc.integer({ min: 1, max: 4 }),
  }),
  fc.record({
    op: fc.constant('array-push' as const),
    root,
    values: fc.array(fc.nat({ max: 99 }), { minLength: 1, maxLength: 3 }),
  }),
  fc.record({ op: fc.constant('array-delete' as const), root, at: fc.nat({ max: 5 }) }),
  fc.record({ op: fc.constant('delete' as const), root, key }),
);

const crafted: fc.Arbitrary<Crafted> = fc.oneof(
  fc.record({
    craft: fc.constant('forbidden-edit' as const),
    target: fc.constantFrom('other-vehicle' as const, 'meta' as const, 'signatures' as const),
    erase: fc.boolean(),
  }),
  fc.record({
    craft: fc.constant('skip-over-other' as const),
    span: fc.integer({ min: 1, max: 50 }),
    offset: fc.nat({ max: 5 }),
  }),
  fc.record({
    craft: fc.constant('gc' as const),
    owner: fc.constantFrom('own' as const, 'other' as const, 'server' as const, 'fresh' as const),
    ahead: fc.nat({ max: 2 }),
  }),
  fc.record({ craft: fc.constant('clock-gap' as const), ahead: fc.integer({ min: 1, max: 5 }) }),
  fc.record({
    craft: fc.constant('future-delete' as const),
    owner: fc.constantFrom('own' as const, 'other' as const),
    ahead: fc.nat({ max: 3 }),
    len: fc.integer({ min: 1, max: 10 }),
  }),
  fc.record({ craft: fc.constant('between-roots' as const), forbiddenLeft: fc.boolean() }),
  fc.record({ craft: fc.constant('inside-forbidden-type' as const) }),
  fc.record({ craft: fc.constant('too-deep' as const), levels: fc.integer({ min: 33, max: 60 }) }),
  fc.record({ craft: fc.constant('valid-fresh' as const), root, value }),
);

const step: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      party: fc.constantFrom<Party>('A', 'B'),
      kind: fc.constant('honest' as const),
      edit: honest,
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      party: fc.constantFrom<Party>('A', 'B'),
      kind: fc.constant('crafted' as const),
      attack: crafted,
    }),
  },
);

// ---------------------------------------------------------------------------------------------
// Interpreting steps

function applyHonest(doc: Y.Doc, party: Party, e: HonestOp): void {
  const map = doc.getMap<unknown>(writable(party)[e.root]!);
  doc.transact(() => {
    switch (e.op) {
      case 'set':
        map.set(e.key, e.value);
        return;
      case 'map': {
        const existing = map.get(e.key);
        if (existing instanceof Y.Map) existing.set(e.inner, e.value);
        else map.set(e.key, new Y.Map<unknown>([[e.inner, e.value]]));
        return;
      }
      case 'text-insert':
      case 'text-delete': {
        let text = map.get('txt');
        if (!(text instanceof Y.Text)) map.set('txt', (text = new Y.Text()));
        const t = text as Y.Text;
        if (e.op === 'text-insert') t.insert(Math.min(e.at, t.length), e.text);
        else if (t.length > 0) {
          const at = e.at % t.length;
          t.delete(at, Math.min(e.len, t.length - at));
        }
        return;
      }
      case 'array-push':
      case 'array-delete': {
        let array = map.get('arr');
        if (!(array instanceof Y.Array)) map.set('arr', (array = new Y.Array<number>()));
        const a = array as Y.Array<number>;
        if (e.op === 'array-push') a.push(e.values);
        else if (a.length > 0) a.delete(e.at % a.length, 1);
        return;
      }
      case 'delete':
        map.delete(e.key);
        return;
    }
  });
}

let freshClient = 900_000_000;

/** The update a hostile party `p` sends, built from what its own device knows. */
function craft(world: World, p: Party, c: Crafted): Uint8Array {
  const mine = world.devices[p].doc;
  // The attacker's own client id: its own, not its honest phone's (structs under a phone's id
  // sent by someone else make the phone's Yjs pick a new id, which is Yjs's business).
  const own = (world.rawClient[p] ??= freshClient++);
  const q = other(p);
  const theirs = world.devices[q].doc.clientID;
  const state = (client: number) => Y.getState(mine.store, client);
  const serverClient = () => {
    const clients = mine.getMap('meta').get('clients') as Y.Map<string>;
    for (const [id, owner] of clients.entries()) if (owner === 'server') return Number(id);
    throw new Error('no server client id');
  };
  /** Some entry of a root (the latest item of one of its keys). */
  const itemIn = (rootName: string, preferred: string): readonly [number, number] => {
    const map = mine.getMap<unknown>(rootName);
    const item = map._map.get(preferred) ?? map._map.values().next().value;
    if (!item) throw new Error(`root ${rootName} is empty`);
    return [item.id.client, item.id.clock];
  };
  switch (c.craft) {
    case 'forbidden-edit': {
      const clone = new Y.Doc();
      clone.clientID = freshClient++;
      Y.applyUpdate(clone, Y.encodeStateAsUpdate(mine));
      const before = Y.encodeStateVector(clone);
      clone.transact(() => {
        const target =
          c.target === 'other-vehicle'
            ? `vehicle${q}`
            : c.target === 'meta'
              ? 'meta'
              : 'signatures';
        const map = clone.getMap<unknown>(target);
        if (c.erase && target !== 'signatures') {
          const k = [...map.keys()][0];
          if (k) map.delete(k);
          else map.set('x', 1);
        } else if (target === `vehicle${q}` && map.get('remarks') instanceof Y.Text) {
          (map.get('remarks') as Y.Text).insert(0, 'forged ');
        } else map.set(c.target === 'signatures' ? q : 'x', { forged: true });
      });
      return Y.encodeStateAsUpdate(clone, before);
    }
    case 'skip-over-other': {
      const next = state(theirs);
      const ranges: Array<readonly [number, number]> = [[next + c.offset, c.span]];
      return encodeRaw(
        [{ client: theirs, clock: next, structs: [{ skip: c.offset + c.span }] }],
        [{ client: theirs, ranges }],
      );
    }
    case 'gc': {
      const client =
        c.owner === 'own'
          ? own
          : c.owner === 'other'
            ? theirs
            : c.owner === 'server'
              ? serverClient()
              : freshClient++;
      const clock = c.owner === 'fresh' ? 0 : state(client) + c.ahead;
      return encodeRaw([{ client, clock, structs: [{ gc: 3 }] }]);
    }
    case 'clock-gap':
      return encodeRaw([
        {
          client: own,
          clock: state(own) + c.ahead,
          structs: [{ parent: `vehicle${p}`, parentSub: 'gap', content: { any: [1] } }],
        },
      ]);
    case 'future-delete': {
      const client = c.owner === 'own' ? own : theirs;
      return encodeRaw([], [{ client, ranges: [[state(client) + c.ahead, c.len]] }]);
    }
    case 'between-roots': {
      // An entry placed after an item of one root and before an item of another.
      const allowed = itemIn('accident', 'place');
      const forbidden = itemIn(`vehicle${q}`, 'policyholder');
      const struct: RawStruct = {
        origin: c.forbiddenLeft ? forbidden : allowed,
        rightOrigin: c.forbiddenLeft ? allowed : forbidden,
        content: { any: ['between'] },
      };
      return encodeRaw([{ client: freshClient++, clock: 0, structs: [struct] }]);
    }
    case 'inside-forbidden-type': {
      const parent = itemIn(`vehicle${q}`, 'policyholder');
      return encodeRaw([
        {
          client: freshClient++,
          clock: 0,
          structs: [{ parent, parentSub: 'lastName', content: { any: ['forged'] } }],
        },
      ]);
    }
    case 'too-deep': {
      const client = freshClient++;
      const structs: RawStruct[] = [
        { parent: 'sketch', parentSub: 'deep', content: { type: 'map' } },
      ];
      for (let i = 1; i < c.levels; i++)
        structs.push({ parent: [client, i - 1], parentSub: 'd', content: { type: 'map' } });
      return encodeRaw([{ client, clock: 0, structs }]);
    }
    case 'valid-fresh':
      return encodeRaw([
        {
          client: freshClient++,
          clock: 0,
          structs: [
            { parent: writable(p)[c.root]!, parentSub: 'raw', content: { any: [c.value] } },
          ],
        },
      ]);
  }
}

// ---------------------------------------------------------------------------------------------
// The world of one run: a session, both honest phones, an attacker socket per party.

interface World {
  server: TestServer;
  pair: Pair;
  devices: Record<Party, Device>;
  raw: Partial<Record<Party, ReturnType<typeof rawSocket>>>;
  /** Each attacker's own client id. */
  rawClient: Partial<Record<Party, number>>;
  /** Every server copy made, destroyed at the end whatever happened. */
  copies: Device[];
}

async function attackerSocket(world: World, p: Party) {
  const existing = world.raw[p];
  if (existing && existing.ws.readyState === existing.ws.OPEN) return existing;
  const token = p === 'A' ? world.pair.tokenA : world.pair.tokenB;
  const socket = rawSocket(`${world.server.wsUrl}/${world.pair.sessionId}?token=${token}`);
  const admitted = new Promise<void>((resolve) => socket.ws.once('message', () => resolve()));
  await socket.opened;
  await admitted;
  world.raw[p] = socket;
  return socket;
}

/** The server's copy, as a device syncing from nothing receives it. */
async function serverCopy(world: World): Promise<Device> {
  const copy = connectDevice(world.server.wsUrl, world.pair.sessionId, world.pair.tokenA);
  world.copies.push(copy);
  await copy.synced();
  return copy;
}

const json = (doc: Y.Doc, rootName: string) => canonicalJson(doc.getMap(rootName).toJSON());
/** What party `p` may never change, as the server holds it. */
function untouchable(doc: Y.Doc, p: Party): string {
  const meta = doc.getMap('meta').toJSON() as Record<string, unknown>;
  delete meta['clients']; // the server records new client owners there
  return canonicalJson({
    vehicle: json(doc, `vehicle${other(p)}`),
    signatures: json(doc, 'signatures'),
    meta,
  });
}
const content = (doc: Y.Doc) =>
  canonicalJson(['accident', 'sketch', 'vehicleA', 'vehicleB'].map((r) => json(doc, r)));

async function runSteps(server: TestServer, steps: Step[]): Promise<void> {
  const pair = await openPair(server.url);
  const a = connectDevice(server.wsUrl, pair.sessionId, pair.tokenA);
  const b = connectDevice(server.wsUrl, pair.sessionId, pair.tokenB);
  const world: World = {
    server,
    pair,
    devices: { A: a, B: b },
    raw: {},
    rawClient: {},
    copies: [],
  };
  try {
    await Promise.all([a.synced(), b.synced()]);
    let before = await serverCopy(world);
    for (const [index, s] of steps.entries()) {
      const where = `step ${index} ${JSON.stringify(s)}`;
      const guarded = untouchable(before.doc, s.party);
      before.destroy();
      world.copies.splice(world.copies.indexOf(before), 1);
      if (s.kind === 'honest') applyHonest(world.devices[s.party].doc, s.party, s.edit);
      else {
        const socket = await attackerSocket(world, s.party);
        socket.ws.send(writeUpdate(craft(world, s.party, s.attack)));
        // Answered (closed) or applied: either way the next frames of that socket queue behind it.
        await Promise.race([socket.closed, new Promise((r) => setTimeout(r, 40))]);
      }
      const copy = await serverCopy(world);
      before = copy;
      await waitFor(
        () => content(copy.doc) === content(a.doc) && content(a.doc) === content(b.doc),
        5_000,
        `${where}: devices and server did not converge`,
      );
      assert.is(copy.doc.store.pendingStructs, null, `${where}: server holds pending structs`);
      assert.is(copy.doc.store.pendingDs, null, `${where}: server holds a pending delete set`);
      if (s.kind === 'crafted')
        assert.is(untouchable(copy.doc, s.party), guarded, `${where}: a forbidden root changed`);
      assert.equal([...a.closes, ...b.closes], [], `${where}: an honest device was closed`);
      assert.is((await fetch(`${server.url}/healthz`)).status, 200, `${where}: server down`);
    }
  } finally {
    // A failure to tear a client down must not hide the failure of the step that ran.
    for (const d of [...world.copies, a, b]) {
      try {
        d.destroy();
      } catch (err) {
        console.warn(`  teardown: ${String(err)}`);
      }
    }
    for (const s of Object.values(world.raw)) s.ws.terminate();
  }
}

test('property: two parties, honest and crafted updates, against the real endpoint', async () => {
  const started = Date.now();
  console.log(`  seed ${SEED} (replay with SYNC_PROPERTY_SEED=${SEED})`);
  const server = await startTestServer({ database: 'postgres', hub: 'memory' });
  try {
    const details = await fc.check(
      fc.asyncProperty(fc.array(step, { minLength: 4, maxLength: 10 }), (steps) =>
        runSteps(server, steps),
      ),
      {
        seed: SEED,
        numRuns: 40,
        interruptAfterTimeLimit: Math.max(5_000, BUDGET_MS - (Date.now() - started)),
        markInterruptAsFailure: false,
      },
    );
    console.log(
      `  ${details.numRuns} runs${details.interrupted ? ' (stopped at the time limit)' : ''}`,
    );
    if (details.failed) {
      const error = details.errorInstance;
      throw new Error(
        `seed ${SEED}, path ${details.counterexamplePath ?? '?'}: ` +
          `${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n` +
          `counterexample: ${JSON.stringify(details.counterexample)}`,
      );
    }
  } finally {
    await server.stop();
  }
});

test.run();
