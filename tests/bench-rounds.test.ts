/**
 * The benchmark's rounds, pure: each figure is the median of the rounds that produced it,
 * failed rounds are left out, ratios are taken to the reference of the same round, and a
 * round waits for a quiet machine only as long as it is told.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import os from 'node:os';
import { combineRounds, type TargetResult } from '../scripts/bench/report.js';
import { deepMedian, median, spreadOf, waitForQuiet } from '../scripts/bench/rounds.js';
import type { Percentiles } from '../scripts/bench/stats.js';

const test = suite('bench rounds');

const latency = (p50: number, p99: number): Percentiles => ({ p50, p95: p99, p99, max: p99 });

function round(
  id: TargetResult['id'],
  n: number,
  p99: number,
  extra: Partial<TargetResult> = {},
): TargetResult {
  return {
    id,
    label: id,
    fanout: { updates: 100, ratePerSecond: 50, latencyMs: latency(p99 / 4, p99) },
    rounds: [{ round: n, loadBefore: n, waitedSeconds: 0, busy: n > 2 }],
    ...extra,
  };
}

test('median of odd and even counts, NaN ignored', () => {
  assert.is(median([3, 1, 2]), 2);
  assert.is(median([4, 1, 3, 2]), 2.5);
  assert.is(median([NaN, 5]), 5);
  assert.ok(Number.isNaN(median([])));
  assert.equal(spreadOf([3, undefined, 1, 7]), { median: 3, min: 1, max: 7, n: 3 });
  assert.is(spreadOf([undefined]), undefined);
});

test('deepMedian folds objects and arrays element by element, strings by majority', () => {
  const folded = deepMedian([
    { a: 1, steps: [{ s: 10, p: 1 }], stop: 'latency' },
    {
      a: 5,
      steps: [
        { s: 10, p: 3 },
        { s: 20, p: 9 },
      ],
      stop: 'end',
    },
    { a: 3, steps: [{ s: 10, p: 2 }], stop: 'latency' },
  ]);
  assert.equal(folded, {
    a: 3,
    // The second step only one round reached: its own figures.
    steps: [
      { s: 10, p: 2 },
      { s: 20, p: 9 },
    ],
    stop: 'latency',
  });
});

test('combineRounds: medians, spread, ratio to the same round of the reference', () => {
  const reference = [round('reference', 1, 2), round('reference', 2, 4), round('reference', 3, 8)];
  const ours = [round('ours-redis', 1, 3), round('ours-redis', 2, 4), round('ours-redis', 3, 24)];
  const combined = combineRounds(ours, reference);
  assert.is(combined.fanout!.latencyMs.p99, 4);
  assert.equal(combined.spread!['fan-out p99 (ms)'], { median: 4, min: 3, max: 24, n: 3 });
  // Per round: 1.5, 1, 3 — not the ratio of the medians (4 / 4 = 1).
  assert.equal(combined.ratioSpread!['fan-out p99 (ms)'], { median: 1.5, min: 1, max: 3, n: 3 });
  assert.equal(
    combined.rounds!.map((r) => [r.round, r.busy]),
    [
      [1, false],
      [2, false],
      [3, true],
    ],
  );
  const ref = combineRounds(reference, reference);
  assert.equal(ref.ratioSpread, {});
});

test('combineRounds leaves a failed round out, and reports an error only if all failed', () => {
  const failed = round('ours-embedded', 2, 1000, { error: 'server did not start' });
  delete failed.fanout;
  const combined = combineRounds([
    round('ours-embedded', 1, 6),
    failed,
    round('ours-embedded', 3, 8),
  ]);
  assert.is(combined.error, undefined);
  assert.is(combined.fanout!.latencyMs.p99, 7);
  assert.is(combined.rounds!.length, 3);
  assert.is(combined.rounds![1]!.round, 2);
  const allFailed = combineRounds([failed]);
  assert.is(allFailed.error, 'server did not start');
});

test('waitForQuiet: starts at once when the load is low enough, flags it otherwise', async () => {
  const quiet = await waitForQuiet(Number.POSITIVE_INFINITY, 60_000);
  assert.is(quiet.busy, false);
  assert.ok(quiet.waitedSeconds < 1);
  // A threshold no machine is under, no time to wait: flagged at once.
  const busy = await waitForQuiet(-1, 0);
  assert.is(busy.busy, true);
  assert.ok(busy.loadBefore >= 0 && busy.loadBefore <= os.cpus().length * 100);
});

test.run();
