/**
 * The change stream of one subscriber (server/graphql/change-stream.ts), on the in-process
 * pub/sub: a message per change of what the subscriber is told about, none for a notice that
 * changes nothing (several instances announcing one change, a restated state), the latest
 * state for a subscriber that read late, and a cut-off — never an unbounded queue or a crash —
 * for one that stops reading.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createPubSub } from 'graphql-yoga';
import { changeStream } from '../server/graphql/change-stream.js';

const tick = () => new Promise<void>((r) => setTimeout(r, 5));

function setup(maxUnread = 5) {
  const pubsub = createPubSub<{ changed: [id: string, payload: { id: string }] }>();
  let state = 'initial';
  let reads = 0;
  const cuts: number[] = [];
  const stream = changeStream<string>({
    notices: pubsub.subscribe('changed', 'x'),
    read: async () => {
      reads++;
      return { value: state, key: state };
    },
    maxUnread,
    cutOff: (unread) => cuts.push(unread),
  });
  stream.knows('initial');
  return {
    stream,
    set: (s: string) => (state = s),
    notify: () => pubsub.publish('changed', 'x', { id: 'x' }),
    get reads() {
      return reads;
    },
    cuts,
  };
}

test('one message per change; repeated notices of the same state are dropped', async () => {
  const s = setup();
  const next = s.stream.next();
  await tick();
  s.notify(); // nothing changed
  s.notify();
  await tick();
  s.set('A signed');
  s.notify();
  s.notify(); // a second instance announces the same change
  assert.equal(await next, { done: false, value: 'A signed' });
  const second = s.stream.next();
  s.notify();
  await tick();
  s.set('finalized');
  s.notify();
  assert.equal(await second, { done: false, value: 'finalized' });
  await s.stream.return!();
  assert.equal(await s.stream.next(), { done: true, value: undefined });
});

test('a subscriber that reads late gets the latest state, once', async () => {
  const s = setup(100);
  await tick();
  for (const state of ['a', 'b', 'c']) {
    s.set(state);
    s.notify();
  }
  await tick();
  const readsBefore = s.reads;
  assert.equal(await s.stream.next(), { done: false, value: 'c' });
  assert.is(s.reads, readsBefore + 1, 'notices waiting are read once, not once each');
  await s.stream.return!();
});

test('a subscriber that stops reading is cut off after maxUnread notices', async () => {
  const s = setup(5);
  s.set('a');
  s.notify();
  assert.equal(await s.stream.next(), { done: false, value: 'a' });
  // It stops asking: the consumer's connection is full.
  for (let i = 0; i < 1_000; i++) {
    s.set(`s${i}`);
    s.notify();
  }
  await tick();
  assert.equal(s.cuts, [6], 'cut off once, at the first notice past the buffer');
  assert.equal(await s.stream.next(), { done: true, value: undefined }, 'then the stream ends');
});

test('a slow read does not count as not reading', async () => {
  const pubsub = createPubSub<{ changed: [id: string, payload: { id: string }] }>();
  const cuts: number[] = [];
  let n = 0;
  const stream = changeStream<number>({
    notices: pubsub.subscribe('changed', 'x'),
    read: async () => {
      await new Promise((r) => setTimeout(r, 30));
      n++;
      return { value: n, key: String(n) };
    },
    maxUnread: 2,
    cutOff: (unread) => cuts.push(unread),
  });
  stream.knows('0');
  const next = stream.next();
  await tick();
  for (let i = 0; i < 20; i++) pubsub.publish('changed', 'x', { id: 'x' });
  assert.equal(await next, { done: false, value: 1 });
  assert.equal(cuts, [], 'the consumer was waiting for this read');
  await stream.return!();
});

test.run();
