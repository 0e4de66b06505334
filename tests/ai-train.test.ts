/**
 * `constat ai train`: on a generated history with planted effects (three signals raise the
 * odds of fraud by known amounts, two do nothing), the fitted coefficients recover them, the
 * held-out AUC is high, and the model file written loads into the scorer. Bad CSVs are refused
 * with the row and column named. The command itself runs as a real process.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { auc, parseCsv, train, TrainingError } from '../ai/fraud/train.js';
import { loadModel, loadRuleSet } from '../ai/fraud/rules.js';
import { scoreFraud } from '../ai/fraud/scorer.js';
import { viewOf } from '../ai/constat-view.js';
import { finalizedData } from './fixtures/finalized.js';

const rules = loadRuleSet();
const PLANTED: Record<string, number> = {
  parties_repeat: 2.5,
  late_declaration: 1.5,
  policy_recent: 1.0,
  night_time: 0,
  no_witness: 0,
};
const INTERCEPT = -2.5;

/** Rows with independent 0/1 signals (30 % each) and a label drawn from the planted model. */
function plantedCsv(rows: number, seed: number): string {
  let s = seed;
  const rand = () => (s = (s * 1_103_515_245 + 12_345) % 2_147_483_648) / 2_147_483_648;
  const names = Object.keys(PLANTED);
  const lines = [['constat_id', ...names, 'label'].join(',')];
  for (let i = 0; i < rows; i++) {
    const x = names.map(() => (rand() < 0.3 ? 1 : 0));
    const z = INTERCEPT + names.reduce((sum, n, j) => sum + PLANTED[n]! * x[j]!, 0);
    const label = rand() < 1 / (1 + Math.exp(-z)) ? 1 : 0;
    lines.push([`c${i}`, ...x, label].join(','));
  }
  return lines.join('\n') + '\n';
}

test('the fit recovers the planted effects and separates the held-out rows', () => {
  const model = train(parseCsv(plantedCsv(6_000, 7)), rules, { seed: 3 });
  for (const [name, effect] of Object.entries(PLANTED)) {
    const got = model.coefficients[name]!;
    assert.ok(Math.abs(got - effect) < 0.35, `${name}: planted ${effect}, fitted ${got}`);
  }
  assert.ok(Math.abs(model.intercept - INTERCEPT) < 0.35, `intercept ${model.intercept}`);
  assert.ok(model.metrics.auc > 0.75, `AUC ${model.metrics.auc}`);
  assert.ok(
    model.metrics.precision > 0.4 && model.metrics.recall > 0.4,
    JSON.stringify(model.metrics),
  );
  assert.is(model.metrics.rows, 6_000);
  assert.is(model.ruleSet, rules.id);
});

test('AUC: 1 for a perfect ranking, 0.5 for ties, 0 for an inverted one', () => {
  assert.is(auc([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]), 1);
  assert.is(auc([0.5, 0.5, 0.5, 0.5], [0, 1, 0, 1]), 0.5);
  assert.is(auc([0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1]), 0);
});

test('bad CSVs are refused, naming the row and the column', () => {
  assert.throws(
    () => parseCsv('night_time,label\n'),
    (e: Error) => e instanceof TrainingError,
  );
  assert.throws(() => parseCsv('night_time,outcome\n1,1\n'), /no "label" column/);
  assert.throws(() => parseCsv('colour,label\nred,1\n'), /no column is a signal name/);
  assert.throws(() => parseCsv('night_time,label\n1,yes\n'), /row 2: label must be 0 or 1/);
  assert.throws(
    () => parseCsv('night_time,label\n1,1\n7,0\n'),
    /row 3: night_time must be a number in 0–1/,
  );
  assert.throws(() => train(parseCsv('night_time,label\n1,1\n0,0\n'), rules), /at least 20/);
});

test('constat ai train writes a model the scorer loads', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ai-train-'));
  const csv = path.join(dir, 'history.csv');
  const out = path.join(dir, 'model.json');
  writeFileSync(csv, plantedCsv(3_000, 11));
  const run = spawnSync(
    process.execPath,
    ['bin/constat.js', 'ai', 'train', '--csv', csv, '--out', out],
    { encoding: 'utf8', env: { ...process.env, LOG_LEVEL: 'silent' } },
  );
  assert.is(run.status, 0, run.stderr);
  assert.match(run.stdout, /held-out split: AUC 0\.\d+, precision 0\.\d+, recall 0\.\d+/);
  const model = loadModel(out);
  assert.ok(model.coefficients.parties_repeat! > 1.5);
  const view = viewOf(finalizedData({ signedAt: '2025-03-30T10:00:00Z' }));
  const r = scoreFraud({ view, history: [] }, rules, model);
  assert.is(r.model, model.id);
  assert.ok(
    r.signals.some(
      (s) => s.name === 'late_declaration' && s.weight === model.coefficients.late_declaration,
    ),
  );
  assert.ok(JSON.parse(readFileSync(out, 'utf8')).metrics.auc > 0.7);
  const bad = spawnSync(
    process.execPath,
    ['bin/constat.js', 'ai', 'train', '--csv', path.join(dir, 'missing.csv')],
    {
      encoding: 'utf8',
    },
  );
  assert.is(bad.status, 1);
  assert.match(bad.stderr, /^constat: cannot read .*missing\.csv: ENOENT\n$/);
});

test.run();
