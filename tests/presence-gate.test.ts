/**
 * The presence gate's rules as pure logic: what a connection may write, what is dropped, and
 * that a message kept whole is passed on as the very bytes it came as (no re-encoding per
 * renewal), while a filtered one is re-encoded with only what is kept.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as Y from 'yjs';
import { Awareness } from 'y-protocols/awareness';
import { PresenceGate, safePresence } from '../sync/presence-gate.js';
import { readPresenceUpdate, writePresenceUpdate } from '../sync/presence.js';

const entry = (clientID: number, state: unknown, clock = 1) => ({
  clientID,
  clock,
  state: JSON.stringify(state),
});

// An Awareness runs a timer until destroyed.
const made: Awareness[] = [];
test.after(() => made.forEach((a) => a.destroy()));

function gate(): PresenceGate {
  const awareness = new Awareness(new Y.Doc());
  made.push(awareness);
  const g = new PresenceGate(awareness);
  g.connect('a', 'A');
  g.connect('b', 'B');
  return g;
}

test('a renewal whose entries are all the connection’s own is passed on as it came', () => {
  const g = gate();
  const first = writePresenceUpdate([entry(10, { user: { name: 'Amine' } })]);
  const admitted = g.admit('a', first);
  assert.is(admitted.dropped, 0);
  assert.is(admitted.update, first, 'the same bytes, not a copy');
  const renewal = writePresenceUpdate([entry(10, { user: { name: 'Amine' } }, 2)]);
  assert.is(g.admit('a', renewal).update, renewal);
  assert.is(g.announcedBy(10), 'A');
});

test('entries of ids the connection did not claim are dropped, the rest re-encoded', () => {
  const g = gate();
  g.admit('a', writePresenceUpdate([entry(10, { n: 'A' })]));
  g.admit('b', writePresenceUpdate([entry(20, { n: 'B' })]));
  // B echoes A's presence with its own, as stock clients do, and tries to rewrite A's name.
  const mixed = writePresenceUpdate([entry(20, { n: 'B' }, 2), entry(10, { n: 'forged' }, 9)]);
  const admitted = g.admit('b', mixed);
  assert.is(admitted.dropped, 1);
  assert.ok(admitted.update && admitted.update !== mixed);
  assert.equal(readPresenceUpdate(admitted.update), [entry(20, { n: 'B' }, 2)]);
  // Only A's entry: nothing to apply.
  const onlyOther = g.admit('b', writePresenceUpdate([entry(10, { n: 'forged' }, 10)]));
  assert.equal(onlyOther, { dropped: 1 });
});

test('a state too deep is refused whole', () => {
  const g = gate();
  const deep = JSON.parse('['.repeat(40) + ']'.repeat(40)) as unknown;
  assert.throws(() => g.admit('a', writePresenceUpdate([entry(10, deep)])), /deeper/);
});

test('presence from the hub: passed on as it came unless an entry must be dropped', () => {
  const fine = writePresenceUpdate([entry(1, { n: 'x' }), entry(2, null)]);
  assert.is(safePresence(fine), fine);
  const big = 'x'.repeat(9 * 1024);
  const oneTooLarge = writePresenceUpdate([entry(1, { n: 'x' }), entry(2, { big })]);
  assert.equal(readPresenceUpdate(safePresence(oneTooLarge)!), [entry(1, { n: 'x' })]);
  assert.is(safePresence(writePresenceUpdate([entry(2, { big })])), undefined);
  assert.is(safePresence(writePresenceUpdate([])), undefined);
});

test.run();
