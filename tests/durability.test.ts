/**
 * An ending document on the Redis hub hands its state to the compactor, waiting for the lease
 * when another instance holds it: with a doubling, jittered wait, not a 50 ms poll; and one
 * unchanged since it was loaded hands nothing (the DraftMerger port here is a stand-in for
 * the compactor: what is tested is the waiting and the skipping).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { pino } from 'pino';
import { compaction, leaseRetryMs } from '../sync/durability.js';
import type { SyncObserver } from '../sync/ports.js';

const test = suite('durability on the Redis hub');

test('the wait doubles from 50 ms to 1 s, jittered down to half', () => {
  assert.is(
    leaseRetryMs(0, () => 1),
    50,
  );
  assert.is(
    leaseRetryMs(0, () => 0),
    25,
  );
  assert.is(
    leaseRetryMs(3, () => 1),
    400,
  );
  assert.is(
    leaseRetryMs(5, () => 1),
    1_000,
  );
  assert.is(
    leaseRetryMs(40, () => 0),
    500,
  );
});

test('a busy lease is asked for a few times while it stays busy, and the state lands once free', async () => {
  const freeAt = Date.now() + 1_500;
  const calls: Array<Uint8Array | undefined> = [];
  const durability = compaction({
    compact: async (_id, extra) => {
      calls.push(extra);
      return Date.now() < freeAt ? 'busy' : 'compacted';
    },
  })({
    sessionId: 's1',
    logger: () => pino({ level: 'silent' }),
    observer: {} as SyncObserver,
  });
  const state = new Uint8Array([1, 2, 3]);
  durability.record(new Uint8Array([0, 0]));
  await durability.persist(async () => state);
  assert.ok(Date.now() >= freeAt, 'it waited for the lease');
  // Polling every 50 ms would have asked about 30 times in 1.5 s.
  assert.ok(calls.length >= 2 && calls.length <= 9, `${calls.length} attempts`);
  assert.ok(
    calls.every((c) => c === state),
    'the whole state goes with every attempt',
  );
});

test('a document unchanged since it was loaded is not merged again; one change is', async () => {
  const calls: Array<Uint8Array | undefined> = [];
  const durability = compaction({
    compact: async (_id, extra) => {
      calls.push(extra);
      return 'compacted';
    },
  })({
    sessionId: 's1',
    logger: () => pino({ level: 'silent' }),
    observer: {} as SyncObserver,
  });
  let encoded = 0;
  const state = async () => {
    encoded++;
    return new Uint8Array([1]);
  };
  await durability.persist(state);
  assert.equal([calls.length, encoded], [0, 0], 'nothing merged, nothing encoded');
  durability.record(new Uint8Array([0, 0]));
  await durability.persist(state);
  assert.equal([calls.length, encoded], [1, 1], 'the changed document is merged');
});

test.run();
