/**
 * The background poll loop (outbox relay, webhook channel, embedded AI feed): a wake that comes
 * while a step runs is not lost, a wake cuts a sleep short, failures back off, close ends it.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { PollLoop, type PollLoopOptions } from '../integrations/poll-loop.js';
import { waitFor } from './support/device.js';

const test = suite('poll loop');

const HOUR = 3_600_000;
const noErrors = () => {};
/** A loop that, unless told otherwise, polls and backs off only after an hour. */
const loopOf = (step: () => Promise<number>, options: Partial<PollLoopOptions> = {}): PollLoop =>
  new PollLoop({
    step,
    pollMs: HOUR,
    backoff: { firstMs: HOUR, maxMs: HOUR },
    onError: noErrors,
    ...options,
  });

test('a wake during a step runs another step at once, not after the poll interval', async () => {
  let steps = 0;
  const loop: PollLoop = loopOf(async () => {
    steps++;
    // Work arrives after this step looked (its query found nothing) but before it ended.
    if (steps === 1) loop.wake();
    await new Promise((r) => setTimeout(r, 5));
    return 0;
  });
  loop.start();
  try {
    await waitFor(() => steps === 2, 2_000, 'the wake during the first step was lost');
    await new Promise((r) => setTimeout(r, 100));
    assert.is(steps, 2, 'one wake, one more step: then it sleeps');
  } finally {
    await loop.close();
  }
});

test('a wake while it sleeps ends the sleep', async () => {
  let steps = 0;
  const loop = loopOf(async () => (steps++, 0));
  loop.start();
  try {
    await waitFor(() => steps === 1, 1_000, 'no first step');
    await new Promise((r) => setTimeout(r, 20));
    loop.wake();
    await waitFor(() => steps === 2, 1_000, 'the wake did not end the sleep');
  } finally {
    await loop.close();
  }
});

test('a failing step backs off, a wake during it does not skip the back-off', async () => {
  let steps = 0;
  const failures: number[] = [];
  const loop: PollLoop = loopOf(
    async () => {
      steps++;
      loop.wake();
      throw new Error('down');
    },
    { pollMs: 1, onError: (_err, n) => failures.push(n) },
  );
  loop.start();
  try {
    await waitFor(() => failures.length === 1, 1_000, 'the failure was not reported');
    await new Promise((r) => setTimeout(r, 100));
    assert.is(steps, 1, 'retried before its back-off');
  } finally {
    await loop.close();
  }
});

test('close ends the loop and resolves once the step under way is done', async () => {
  let finished = false;
  const loop = loopOf(async () => {
    await new Promise((r) => setTimeout(r, 50));
    finished = true;
    return 1;
  });
  loop.start();
  await new Promise((r) => setTimeout(r, 10));
  await loop.close();
  assert.ok(finished, 'close returned while a step ran');
});

test.run();
