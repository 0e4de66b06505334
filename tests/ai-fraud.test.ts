/**
 * The fraud scorer, pure: each signal fires on the pattern it names (with its values in the
 * reason) and stays quiet on a clean constat; the score is the logistic of the weighted sum,
 * banded by the rule set's thresholds; a trained model's coefficients replace the weights; the
 * feature extraction normalises identifiers; a bad rule set fails naming the field.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { viewOf } from '../ai/constat-view.js';
import { extractFeatures, normalisePhone } from '../ai/fraud/features.js';
import { checkRuleSet, FraudDataError, loadRuleSet, type TrainedModel } from '../ai/fraud/rules.js';
import { scoreFraud, sigmoid } from '../ai/fraud/scorer.js';
import { SIGNALS, type FraudInput, type SeenBefore } from '../ai/fraud/signals.js';
import { finalizedData, type FinalizedOverrides } from './fixtures/finalized.js';

const rules = loadRuleSet();
const p = rules.params;
const input = (o: FinalizedOverrides = {}, extra: Partial<FraudInput> = {}): FraudInput => ({
  view: viewOf(finalizedData(o)),
  history: [],
  ...extra,
});
const fire = (name: string, i: FraudInput) => SIGNALS[name]!(i, p);
const daysBefore = (iso: string, days: number) => new Date(Date.parse(iso) - days * 86_400_000);
const FINALIZED = '2025-03-14T18:10:00.000Z';
const seen = (kind: SeenBefore['kind'], ...days: number[]): SeenBefore => ({
  kind,
  value: 'X1234',
  role: kind === 'pair' || kind === 'place' ? null : 'A',
  earlier: days.map((d) => daysBefore(FINALIZED, d)),
});

test('a clean constat: every signal but "no injuries" is quiet, the band is low', () => {
  const result = scoreFraud(input(), rules);
  assert.equal(
    result.signals.map((s) => s.name),
    ['no_injuries'],
  );
  assert.is(result.band, 'low');
  assert.is(result.ruleSet, rules.id);
  assert.is(result.model, rules.id);
  assert.ok(Math.abs(result.score - sigmoid(rules.intercept + 0.1)) < 0.001);
});

for (const [name, kind] of [
  ['plate_repeat', 'plate'],
  ['licence_repeat', 'licence'],
  ['device_key_repeat', 'device_key'],
  ['phone_repeat', 'phone'],
  ['policy_repeat', 'policy'],
  ['parties_repeat', 'pair'],
  ['place_repeat', 'place'],
] as const) {
  test(`${name}: earlier constats with the same ${kind} within the window`, () => {
    assert.is(fire(name, input()), null);
    const hit = fire(name, input({}, { history: [seen(kind, 10, 40)] }));
    assert.ok(hit, 'did not fire');
    assert.is(hit!.values.count, 2);
    assert.is(hit!.values.lastDaysBefore, 10);
    assert.match(hit!.reason, /2 earlier constats within \d+ days, the last 10 days before/);
    // Outside the window it is not counted.
    const window =
      name === 'parties_repeat'
        ? p.pairWindowDays
        : name === 'place_repeat'
          ? p.placeWindowDays
          : p.repeatWindowDays;
    assert.is(fire(name, input({}, { history: [seen(kind, window + 5)] })), null);
  });
}

test('repeat reasons mask identifiers to their last characters', () => {
  const hit = fire(
    'plate_repeat',
    input({}, { history: [{ ...seen('plate', 3), value: '12345-115-16' }] }),
  );
  assert.match(hit!.reason, /…5-16/);
  assert.not.match(hit!.reason, /12345/);
});

test('policy_recent: the policy started days before the accident', () => {
  assert.is(fire('policy_recent', input()), null);
  const hit = fire('policy_recent', input({ vehicleB: { insurer: { validFrom: '2025-03-10' } } }));
  assert.equal(hit!.values, { role: 'B', daysSincePolicyStart: 4, limitDays: p.policyRecentDays });
});

test('certificate_expired: before validFrom or after validTo on the accident date', () => {
  assert.is(fire('certificate_expired', input()), null);
  const after = fire(
    'certificate_expired',
    input({ vehicleB: { insurer: { validTo: '2025-03-01' } } }),
  );
  assert.match(after!.reason, /party B's certificate expired on 2025-03-01/);
  const before = fire(
    'certificate_expired',
    input({ vehicleA: { insurer: { validFrom: '2025-04-01' } } }),
  );
  assert.match(before!.reason, /party A's certificate starts on 2025-04-01/);
});

test('late_declaration: signed past the 7-day deadline', () => {
  assert.is(fire('late_declaration', input()), null);
  assert.is(
    fire(
      'late_declaration',
      input({ signedAt: '2025-03-20T17:00:00Z', finalizedAt: '2025-03-20T17:00:00Z' }),
    ),
    null,
  );
  const hit = fire(
    'late_declaration',
    input({ signedAt: '2025-03-25T17:45:00Z', finalizedAt: '2025-03-25T17:46:00Z' }),
  );
  assert.equal(hit!.values, { delayDays: 11, deadlineDays: 7 });
});

test('night_time, no_witness, no_injuries', () => {
  assert.is(fire('night_time', input()), null);
  assert.is(fire('night_time', input({ accident: { time: '23:30' } }))!.values.time, '23:30');
  assert.ok(fire('night_time', input({ accident: { time: '03:05' } })));
  assert.is(fire('night_time', input({ accident: { time: '05:00' } })), null);
  assert.is(fire('no_witness', input()), null);
  assert.ok(fire('no_witness', input({ accident: { witnesses: [] } })));
  assert.ok(fire('no_injuries', input()));
  assert.is(fire('no_injuries', input({ accident: { injuries: true } })), null);
});

test('parked_vehicle_hit: a party declares being parked', () => {
  assert.is(fire('parked_vehicle_hit', input()), null);
  const hit = fire('parked_vehicle_hit', input({ vehicleB: { circumstances: { '8': true } } }));
  assert.equal(hit!.values, { parked: 'B', otherBoxes: 1 });
  // The European form numbers it 1.
  assert.ok(
    fire(
      'parked_vehicle_hit',
      input({ formVersion: 'eu', vehicleA: { circumstances: { '1': true } } }),
    ),
  );
});

test('impact_box_mismatch: the rear-end box with an impact that is not at the front', () => {
  assert.is(fire('impact_box_mismatch', input()), null);
  const hit = fire('impact_box_mismatch', input({ vehicleA: { impactPoint: { side: 'left' } } }));
  assert.equal(hit!.values, { role: 'A', box: '1', impactSide: 'left' });
});

const photo = (id: string, lat: number, lon: number, takenAt = '2025-03-14T17:50:00Z') => ({
  [id]: {
    id,
    kind: 'damage',
    contentType: 'image/jpeg',
    byteSize: 1,
    sha256: 'x',
    takenAt,
    gps: { lat, lon },
  },
});

test('gps_far_apart and gps_far_from_place: photo fixes of the two phones and the declared place', () => {
  const near = input({
    vehicleA: { attachments: photo('pa', 36.7207, 3.1823) },
    vehicleB: { attachments: photo('pb', 36.7209, 3.1826) },
  });
  assert.is(fire('gps_far_apart', near), null);
  assert.is(fire('gps_far_from_place', near), null);
  // No attachments yet: nothing to compare.
  assert.is(fire('gps_far_apart', input()), null);
  const far = input({
    vehicleA: { attachments: photo('pa', 36.7207, 3.1823) },
    vehicleB: { attachments: photo('pb', 35.6971, -0.6308) }, // Oran, ~330 km away
  });
  const apart = fire('gps_far_apart', far);
  assert.ok((apart!.values.km as number) > 300, String(apart!.values.km));
  const place = fire('gps_far_from_place', far);
  assert.ok((place!.values.km as number) > 300);
});

test('photo_time_inconsistent: a photo taken days from the declared time', () => {
  assert.is(
    fire('photo_time_inconsistent', input({ vehicleA: { attachments: photo('pa', 36.72, 3.18) } })),
    null,
  );
  const hit = fire(
    'photo_time_inconsistent',
    input({ vehicleA: { attachments: photo('pa', 36.72, 3.18, '2025-03-09T10:00:00Z') } }),
  );
  assert.is(hit!.values.hours, 128);
});

test('estimate_above_model and ocr_mismatch: fed when those inputs exist', () => {
  const model = { A: { amount: 20_000, high: 24_000 } };
  assert.is(fire('estimate_above_model', input({}, { modelEstimates: model })), null);
  assert.is(
    fire(
      'estimate_above_model',
      input({}, { modelEstimates: model, providedEstimates: { A: 30_000 } }),
    ),
    null,
  );
  const hit = fire(
    'estimate_above_model',
    input({}, { modelEstimates: model, providedEstimates: { A: 90_000 } }),
  );
  assert.equal(hit!.values, { role: 'A', given: 90_000, modelHigh: 24_000, ratio: 3.75 });
  assert.is(fire('ocr_mismatch', input()), null);
  assert.match(
    fire('ocr_mismatch', input({}, { ocrMismatches: ['plate: 987-114-31 vs 987-114-13'] }))!.reason,
    /987-114-13/,
  );
});

test('every signal of the code has a weight in the shipped rule set, and the reverse', () => {
  assert.equal(Object.keys(SIGNALS).sort(), Object.keys(rules.signals).sort());
});

test('the score adds the weights of what fired; bands follow the thresholds', () => {
  const suspicious = input(
    {
      accident: { time: '02:10', witnesses: [] },
      vehicleB: { insurer: { validFrom: '2025-03-12' }, circumstances: { '8': true } },
    },
    { history: [seen('pair', 30), seen('plate', 30, 90)] },
  );
  const r = scoreFraud(suspicious, rules);
  const names = r.signals.map((s) => s.name).sort();
  assert.equal(names, [
    'night_time',
    'no_injuries',
    'no_witness',
    'parked_vehicle_hit',
    'parties_repeat',
    'plate_repeat',
    'policy_recent',
  ]);
  const z = rules.intercept + r.signals.reduce((s, x) => s + x.weight * x.value, 0);
  assert.ok(Math.abs(r.score - sigmoid(z)) < 0.001);
  assert.is(r.band, 'high');
  // Strongest first.
  assert.is(r.signals[0]!.name, 'parties_repeat');
  const review = scoreFraud(
    input({ vehicleB: { insurer: { validFrom: '2025-03-12' } } }, { history: [seen('plate', 30)] }),
    rules,
  );
  assert.is(review.band, 'review', `score ${review.score}`);
});

test('a trained model replaces the weights and the intercept, and is named in the result', () => {
  const model: TrainedModel = {
    id: 'fraud-logistic-test',
    kind: 'logistic',
    trainedAt: '2026-12-01T00:00:00Z',
    ruleSet: rules.id,
    intercept: -1,
    coefficients: { no_injuries: 0.5 },
    metrics: { auc: 0.8, precision: 0.5, recall: 0.5, threshold: 0.3, rows: 100 },
  };
  const r = scoreFraud(input(), rules, model);
  assert.is(r.model, 'fraud-logistic-test');
  assert.is(r.ruleSet, rules.id);
  assert.ok(Math.abs(r.score - sigmoid(-0.5)) < 0.001);
});

test('features: identifiers normalised, the pair sorted, one row per value', () => {
  assert.is(normalisePhone('+213 550 12 34 56'), '550123456');
  assert.is(normalisePhone('0550-12-34-56'), '550123456');
  assert.is(normalisePhone('12'), undefined);
  const view = viewOf(finalizedData({ vehicleB: { policyholder: { phone: '+213661234567' } } }));
  const features = extractFeatures(view, p.placeCellDegrees);
  const kinds = features.map((f) => `${f.kind}:${f.role ?? '-'}`).sort();
  // A's and B's phones are now the same number: one row.
  assert.equal(kinds, [
    'device_key:A',
    'device_key:B',
    'licence:A',
    'licence:B',
    'pair:-',
    'phone:A',
    'place:-',
    'plate:A',
    'plate:B',
    'policy:A',
    'policy:B',
  ]);
  assert.is(features.find((f) => f.kind === 'pair')!.value, 'L:160123456|L:310987654');
  assert.is(features.find((f) => f.kind === 'plate' && f.role === 'A')!.value, '1234511516');
});

test('hostile content never throws: wrong types everywhere', () => {
  const view = viewOf({
    ...finalizedData(),
    content: {
      accident: { date: 5, time: [], witnesses: 'none', place: { gps: { lat: 'x' } } },
      vehicleA: 'x',
      vehicleB: null,
    },
    signatures: 'nope' as unknown as [],
  });
  const r = scoreFraud({ view, history: [] }, rules);
  assert.ok(r.score >= 0 && r.score <= 1);
  assert.ok(extractFeatures(view, p.placeCellDegrees).length >= 0);
});

test('a rule set with a bad field fails naming it', () => {
  const good = JSON.parse(JSON.stringify(rules)) as Record<string, unknown>;
  assert.throws(
    () => checkRuleSet({ ...good, bands: { review: 0.7, high: 0.5 } }),
    (e: Error) => e instanceof FraudDataError && /bands/.test(e.message),
  );
  assert.throws(
    () => checkRuleSet({ ...good, params: { ...(good.params as object), gpsApartKm: 'far' } }),
    /params.gpsApartKm/,
  );
  assert.throws(
    () => checkRuleSet({ ...good, signals: { night_time: { weight: null } } }),
    /signals.night_time.weight/,
  );
});

test.run();
