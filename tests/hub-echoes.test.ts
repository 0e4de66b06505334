import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { HubEchoes } from '../sync/hub-echoes.js';

const update = (...bytes: number[]) => ({
  kind: 'update' as const,
  update: Uint8Array.from(bytes),
});

test('a copy of what was appended here is an echo, once', () => {
  const echoes = new HubEchoes();
  echoes.remember(update(1, 2, 3));
  // The hub hands back a different buffer with the same bytes.
  assert.ok(echoes.isEcho({ kind: 'update', update: Buffer.from([1, 2, 3]) }));
  assert.not.ok(echoes.isEcho(update(1, 2, 3)));
});

test('another instance’s message is not an echo, and leaves what is remembered alone', () => {
  const echoes = new HubEchoes();
  echoes.remember(update(1, 2, 3));
  assert.not.ok(echoes.isEcho(update(1, 2, 4)));
  assert.not.ok(echoes.isEcho(update(1, 2)));
  assert.not.ok(echoes.isEcho({ kind: 'awareness', update: Uint8Array.from([1, 2, 3]) }));
  assert.ok(echoes.isEcho(update(1, 2, 3)));
});

test('an echo forgets what was appended before it (the hub delivers those first)', () => {
  const echoes = new HubEchoes();
  echoes.remember(update(1));
  echoes.remember(update(2));
  echoes.remember(update(3));
  assert.ok(echoes.isEcho(update(2)));
  assert.not.ok(echoes.isEcho(update(1)));
  assert.ok(echoes.isEcho(update(3)));
});

test('at most `capacity` are remembered: the oldest ages out', () => {
  const echoes = new HubEchoes(2);
  echoes.remember(update(1));
  echoes.remember(update(2));
  echoes.remember(update(3));
  assert.not.ok(echoes.isEcho(update(1)));
  assert.ok(echoes.isEcho(update(2)));
});

test.run();
