/**
 * The liability suggestion (pure): one case per rule of the `dz` table and of the `eu` table,
 * contradictory ticks (both sides claiming the same fault or victim case), ticks that match two
 * rules (the first in table order wins), unknown boxes and form versions, and the labels the
 * report prints (every `dz` box and field in French and Arabic).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  suggestLiability,
  suggestLiabilityFromContent,
  tickedBoxes,
  NO_CASE,
} from '../constat/liability.js';
import { LIABILITY_TABLES } from '../constat/liability-rules.js';
import { FORM_VERSIONS, getFormVersion, labelIn } from '../constat/form-versions.js';
import { FIELD_LABEL_KEYS } from '../constat/form-labels.js';

const test = suite('liability suggestion');

function expect(
  version: string,
  a: number[],
  b: number[],
  shares: [number, number],
  rule: string,
  contradictory = false,
) {
  const s = suggestLiability(version, a, b);
  assert.ok(s, `no suggestion for ${version}`);
  assert.equal(
    [s.shareA, s.shareB, s.rule, s.contradictory],
    [...shares, rule, contradictory],
    `${version} A=${a} B=${b}`,
  );
}

test('dz rear-end: the striking vehicle takes 100 %, whichever side it is', () => {
  expect('dz', [1], [], [100, 0], 'rear-end');
  expect('dz', [], [1], [0, 100], 'rear-end');
});

test('dz lane change: the vehicle changing lane 100 %; neither changed 50/50', () => {
  expect('dz', [2, 14], [2], [100, 0], 'lane-change');
  expect('dz', [2], [2, 14], [0, 100], 'lane-change');
  expect('dz', [2], [2], [50, 50], 'different-lanes');
});

test('dz opposite directions: the one encroaching 100 %; both or neither 50/50', () => {
  expect('dz', [3, 19], [3], [100, 0], 'opposite-directions');
  expect('dz', [3], [3, 19], [0, 100], 'opposite-directions');
  expect('dz', [3, 19], [3, 19], [50, 50], 'opposite-directions', true);
  expect('dz', [3], [3], [50, 50], 'opposite-directions-unknown');
});

test('dz wrong way and irregular overtaking put the fault on who did it', () => {
  expect('dz', [20], [], [100, 0], 'wrong-way');
  expect('dz', [12], [13], [0, 100], 'irregular-overtaking');
});

test('dz priority from the right: the other vehicle 100 %', () => {
  expect('dz', [5], [4], [0, 100], 'priority-right');
  expect('dz', [4], [5], [100, 0], 'priority-right');
  expect('dz', [21], [5], [100, 0], 'priority-sign');
});

test('dz parked vehicle hit: the moving vehicle 100 %', () => {
  expect('dz', [8], [16], [0, 100], 'parked');
  expect('dz', [15], [8], [100, 0], 'parked');
});

test('dz manoeuvring vehicle (reversing, U-turn, parking, door) takes 100 %', () => {
  for (const box of [9, 10, 11, 17, 18, 22, 23]) {
    expect('dz', [box], [], [100, 0], 'manoeuvring');
    expect('dz', [], [box], [0, 100], 'manoeuvring');
  }
});

test('dz roundabout: the vehicle entering 100 %', () => {
  expect('dz', [7], [6], [0, 100], 'roundabout');
});

test('conflicting ticks: a manoeuvre outranks the situation ticked with it', () => {
  // A was parked and opened its door into B's path: the door, not the parking, decides.
  expect('dz', [8, 23], [2], [100, 0], 'manoeuvring');
  // B reversing into A that had struck the rear: reversing comes first in the table.
  expect('dz', [1], [11], [0, 100], 'manoeuvring');
});

test('conflicting ticks: both sides claiming the same case is contradictory, 50/50', () => {
  expect('dz', [1], [1], [50, 50], 'rear-end', true);
  expect('dz', [8], [8], [50, 50], 'parked', true);
  expect('dz', [11], [22], [50, 50], 'manoeuvring', true);
  expect('dz', [5], [5], [50, 50], 'priority-right', true);
});

test('no case: nothing ticked, or boxes no rule names, 50/50', () => {
  expect('dz', [], [], [50, 50], NO_CASE);
  expect('dz', [15], [16], [50, 50], NO_CASE);
  expect('dz', [999], [], [50, 50], NO_CASE);
});

test('eu table uses the eu box numbers', () => {
  expect('eu', [8], [], [100, 0], 'rear-end');
  expect('eu', [9], [9, 10], [0, 100], 'lane-change');
  expect('eu', [1], [12], [0, 100], 'parked');
  expect('eu', [14], [], [100, 0], 'manoeuvring');
  expect('eu', [16], [13], [0, 100], 'priority-right');
  expect('eu', [15], [], [100, 0], 'opposite-directions');
  expect('eu', [17], [], [100, 0], 'priority-sign');
});

test('an unknown form version has no suggestion', () => {
  assert.is(suggestLiability('xx', [1], []), undefined);
});

test('every rule names boxes of its form version', () => {
  for (const table of LIABILITY_TABLES) {
    const version = getFormVersion(table.formVersion);
    assert.ok(version, table.formVersion);
    const ids = new Set(version.circumstances.map((c) => c.id));
    for (const rule of table.rules)
      for (const box of rule.boxes) assert.ok(ids.has(box), `${rule.id}: box ${box}`);
  }
});

test('ticked boxes are read from the stored map, hostile values ignored', () => {
  assert.equal(tickedBoxes({ '14': true, '2': true, x: true, '3': 'yes', '5': false }), [2, 14]);
  assert.equal(tickedBoxes(null), []);
  assert.equal(tickedBoxes(['1']), []);
  const s = suggestLiabilityFromContent('dz', {
    vehicleA: { circumstances: { '1': true } },
    vehicleB: { circumstances: {} },
  });
  assert.equal([s?.shareA, s?.rule, s?.ticksA, s?.ticksB], [100, 'rear-end', [1], []]);
  assert.is(suggestLiabilityFromContent('dz', null)?.rule, NO_CASE);
});

test('dz labels: all 23 boxes and every printed field in French and Arabic', () => {
  const dz = getFormVersion('dz')!;
  assert.is(dz.circumstances.length, 23);
  assert.equal(dz.languages, ['fr', 'ar']);
  assert.match(dz.note ?? '', /unverified/);
  for (const c of dz.circumstances) {
    assert.ok(c.labels.ar && /[\u0600-\u06FF]/.test(c.labels.ar), `box ${c.id} has no Arabic`);
    assert.is(labelIn(c.labels, 'ar'), c.labels.ar);
  }
  for (const key of FIELD_LABEL_KEYS) {
    assert.ok(dz.fields[key].fr, `${key} fr`);
    assert.ok(dz.fields[key].ar && /[\u0600-\u06FF]/.test(dz.fields[key].ar), `${key} ar`);
  }
  for (const version of FORM_VERSIONS) {
    const [, second] = version.languages;
    for (const key of FIELD_LABEL_KEYS) assert.ok(version.fields[key][second], `${key}`);
  }
  // A language the version lacks falls back to French.
  assert.is(labelIn(dz.circumstances[0]!.labels, 'en'), dz.circumstances[0]!.labels.fr);
});

test.run();
