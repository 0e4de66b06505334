/**
 * The plain-JSON depth measure the update inspector applies to every embedded value: scalars
 * have depth 0, each object or array one level, a chain too deep for recursion is measured
 * without overflowing the stack, and a negative budget refuses even a scalar (the value sits
 * below a level that is already too deep).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { jsonDepthExceeds } from '../constat/nesting.js';

test('scalars have depth 0; objects and arrays add one level each', () => {
  for (const scalar of [0, 1.5, 'x', true, null, undefined]) {
    assert.is(jsonDepthExceeds(scalar, 0), false, String(scalar));
  }
  assert.is(jsonDepthExceeds({}, 0), true);
  assert.is(jsonDepthExceeds({}, 1), false);
  assert.is(jsonDepthExceeds([1, [2, [3]]], 2), true);
  assert.is(jsonDepthExceeds([1, [2, [3]]], 3), false);
  assert.is(jsonDepthExceeds({ a: { b: [{}] } }, 3), true);
  assert.is(jsonDepthExceeds({ a: { b: [{}] } }, 4), false);
});

test('a negative budget refuses anything, a scalar included', () => {
  assert.is(jsonDepthExceeds(7, -1), true);
  assert.is(jsonDepthExceeds({}, -1), true);
});

test('a chain of 100,000 levels is measured without recursion', () => {
  let value: unknown = 1;
  for (let i = 0; i < 100_000; i++) value = [value];
  assert.is(jsonDepthExceeds(value, 32), true);
  assert.is(jsonDepthExceeds(value, 100_000), false);
});

test.run();
