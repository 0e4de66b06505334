/**
 * Group commit's pure logic (finalization/group-commit.ts): a lone item commits at once, items
 * arriving while a commit is in flight share the next one (up to the cap), each caller gets
 * its own item's outcome, and a failed group is retried item by item so one bad item does not
 * hold back the others.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { GroupCommit } from '../finalization/group-commit.js';

/** A commit function that records its groups and finishes when told to. */
function recorder(fail: (item: number) => boolean = () => false) {
  const groups: number[][] = [];
  const pending: Array<() => void> = [];
  const commit = async (items: number[]) => {
    groups.push(items);
    await new Promise<void>((resolve) => pending.push(resolve));
    if (items.some(fail)) throw new Error(`bad item in ${items.join(',')}`);
    return items.map((i) => `done ${i}`);
  };
  const release = async () => {
    while (pending.length > 0) {
      pending.shift()!();
      await new Promise((r) => setImmediate(r));
    }
  };
  return { groups, commit, release };
}

test('a lone item commits at once, without waiting for company', async () => {
  const r = recorder();
  const group = new GroupCommit(r.commit, 8);
  const outcome = group.submit(1);
  assert.equal(r.groups, [[1]]);
  await r.release();
  assert.is(await outcome, 'done 1');
});

test('items arriving during a commit share the next one, each told its own outcome', async () => {
  const r = recorder();
  const group = new GroupCommit(r.commit, 8);
  const outcomes = [group.submit(1), group.submit(2), group.submit(3), group.submit(4)];
  assert.equal(r.groups, [[1]]);
  for (let i = 0; i < 5 && r.groups.length < 2; i++) await r.release();
  await r.release();
  assert.equal(r.groups, [[1], [2, 3, 4]]);
  assert.equal(await Promise.all(outcomes), ['done 1', 'done 2', 'done 3', 'done 4']);
});

test('a group holds at most the cap; the rest go in the following one', async () => {
  const r = recorder();
  const group = new GroupCommit(r.commit, 2);
  const outcomes = [1, 2, 3, 4, 5, 6].map((i) => group.submit(i));
  for (let i = 0; i < 10; i++) await r.release();
  assert.equal(r.groups, [[1], [2, 3], [4, 5], [6]]);
  assert.equal(
    await Promise.all(outcomes),
    [1, 2, 3, 4, 5, 6].map((i) => `done ${i}`),
  );
});

test('a failed group is retried item by item: only the bad item fails', async () => {
  const r = recorder((i) => i === 3);
  const group = new GroupCommit(r.commit, 8);
  const outcomes = [1, 2, 3, 4].map((i) => group.submit(i).catch((err: Error) => err.message));
  for (let i = 0; i < 10; i++) await r.release();
  assert.equal(r.groups, [[1], [2, 3, 4], [2], [3], [4]]);
  assert.equal(await Promise.all(outcomes), ['done 1', 'done 2', 'bad item in 3', 'done 4']);
});

test('a lone item that fails is told so, and the next one still commits', async () => {
  const r = recorder((i) => i === 1);
  const group = new GroupCommit(r.commit, 8);
  const first = group.submit(1).catch((err: Error) => err.message);
  await r.release();
  assert.is(await first, 'bad item in 1');
  const second = group.submit(2);
  await r.release();
  assert.is(await second, 'done 2');
  assert.equal(r.groups, [[1], [2]]);
});

test.run();
