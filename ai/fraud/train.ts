/**
 * `constat ai train --csv FILE`: a logistic regression fitted on an insurer's labelled history.
 *
 * The CSV has a header row; column `label` is 1 (confirmed fraud) or 0, and every other column
 * named after a signal (docs/ai.md) holds that signal's value 0–1 for the constat; other
 * columns (`constat_id`, notes) are ignored. Rows are split 80/20 by a seeded shuffle; the fit
 * is Newton–Raphson (IRLS) with a small ridge penalty, written by hand: about sixty lines for a
 * model of twenty coefficients, where the JavaScript libraries that exist are unmaintained.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { SIGNALS } from './signals.js';
import { sigmoid } from './scorer.js';
import type { RuleSet, TrainedModel } from './rules.js';

export class TrainingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TrainingError';
  }
}

export interface Dataset {
  features: string[];
  x: number[][];
  y: number[];
}

export function parseCsv(text: string): Dataset {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  if (lines.length < 2) throw new TrainingError('the CSV needs a header and at least one row');
  const header = lines[0]!.split(',').map((h) => h.trim());
  const labelAt = header.indexOf('label');
  if (labelAt < 0) throw new TrainingError('the CSV has no "label" column');
  const columns = header
    .map((name, i) => ({ name, i }))
    .filter(({ name }) => Object.hasOwn(SIGNALS, name));
  if (columns.length === 0)
    throw new TrainingError(`no column is a signal name (${Object.keys(SIGNALS).join(', ')})`);
  const x: number[][] = [];
  const y: number[] = [];
  lines.slice(1).forEach((line, n) => {
    const cells = line.split(',').map((c) => c.trim());
    const label = cells[labelAt];
    if (label !== '0' && label !== '1')
      throw new TrainingError(`row ${n + 2}: label must be 0 or 1, got "${label ?? ''}"`);
    x.push(
      columns.map(({ name, i }) => {
        const v = Number(cells[i] ?? '');
        if (cells[i] === '' || !Number.isFinite(v) || v < 0 || v > 1)
          throw new TrainingError(
            `row ${n + 2}: ${name} must be a number in 0–1, got "${cells[i] ?? ''}"`,
          );
        return v;
      }),
    );
    y.push(Number(label));
  });
  return { features: columns.map((c) => c.name), x, y };
}

/** Solves A·x = b by Gaussian elimination with partial pivoting (A is small and dense). */
function solve(a: number[][], b: number[]): number[] {
  const n = b.length;
  const m = a.map((row, i) => [...row, b[i]!]);
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(m[r]![c]!) > Math.abs(m[p]![c]!)) p = r;
    [m[c], m[p]] = [m[p]!, m[c]!];
    const pivot = m[c]![c]!;
    if (Math.abs(pivot) < 1e-12) throw new TrainingError('the features are collinear');
    for (let r = 0; r < n; r++) {
      if (r === c) continue;
      const f = m[r]![c]! / pivot;
      if (f === 0) continue;
      for (let k = c; k <= n; k++) m[r]![k]! -= f * m[c]![k]!;
    }
  }
  return m.map((row, i) => row[n]! / row[i]!);
}

/** Coefficients [intercept, w1…wk] maximising the ridge-penalised likelihood. */
export function fitLogistic(x: number[][], y: number[], ridge = 1e-3, iterations = 50): number[] {
  const k = (x[0]?.length ?? 0) + 1;
  let w = new Array<number>(k).fill(0);
  for (let it = 0; it < iterations; it++) {
    const grad = new Array<number>(k).fill(0);
    const hess = Array.from({ length: k }, () => new Array<number>(k).fill(0));
    for (let i = 0; i < x.length; i++) {
      const row = [1, ...x[i]!];
      const p = sigmoid(row.reduce((s, v, j) => s + v * w[j]!, 0));
      const s = Math.max(p * (1 - p), 1e-9);
      for (let a = 0; a < k; a++) {
        grad[a]! += (y[i]! - p) * row[a]!;
        for (let b = 0; b <= a; b++) hess[a]![b]! += s * row[a]! * row[b]!;
      }
    }
    for (let a = 0; a < k; a++) {
      for (let b = 0; b < a; b++) hess[b]![a] = hess[a]![b]!;
      // No penalty on the intercept.
      if (a > 0) {
        hess[a]![a]! += ridge * x.length;
        grad[a]! -= ridge * x.length * w[a]!;
      }
    }
    const step = solve(hess, grad);
    w = w.map((v, j) => v + step[j]!);
    if (Math.max(...step.map(Math.abs)) < 1e-8) break;
  }
  return w;
}

/** Area under the ROC curve: the chance a random fraud scores above a random honest constat. */
export function auc(scores: number[], labels: number[]): number {
  const order = scores.map((s, i) => ({ s, y: labels[i]! })).sort((a, b) => a.s - b.s);
  let rankSum = 0;
  let positives = 0;
  for (let i = 0; i < order.length;) {
    let j = i;
    while (j < order.length && order[j]!.s === order[i]!.s) j++;
    const rank = (i + j + 1) / 2; // average rank of ties, 1-based
    for (let t = i; t < j; t++)
      if (order[t]!.y === 1) {
        rankSum += rank;
        positives++;
      }
    i = j;
  }
  const negatives = order.length - positives;
  if (positives === 0 || negatives === 0) return NaN;
  return (rankSum - (positives * (positives + 1)) / 2) / (positives * negatives);
}

/** A seeded shuffle (mulberry32), so a split can be reproduced. */
function shuffled(n: number, seed: number): number[] {
  let t = seed >>> 0;
  const rand = () => {
    t = (t + 0x6d2b79f5) >>> 0;
    let r = Math.imul(t ^ (t >>> 15), 1 | t);
    r ^= r + Math.imul(r ^ (r >>> 7), 61 | r);
    return ((r ^ (r >>> 14)) >>> 0) / 4294967296;
  };
  const idx = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [idx[i], idx[j]] = [idx[j]!, idx[i]!];
  }
  return idx;
}

export function train(
  data: Dataset,
  rules: RuleSet,
  opts: { seed?: number; holdout?: number; now?: Date } = {},
): TrainedModel {
  if (data.y.length < 20) throw new TrainingError('at least 20 labelled rows are needed');
  const idx = shuffled(data.y.length, opts.seed ?? 1);
  const cut = Math.floor(data.y.length * (1 - (opts.holdout ?? 0.2)));
  const pick = (ids: number[]) => ({
    x: ids.map((i) => data.x[i]!),
    y: ids.map((i) => data.y[i]!),
  });
  const fit = pick(idx.slice(0, cut));
  const test = pick(idx.slice(cut));
  if (!fit.y.includes(1) || !fit.y.includes(0))
    throw new TrainingError('the training rows need both labels (0 and 1)');
  const w = fitLogistic(fit.x, fit.y);
  const scores = test.x.map((row) => sigmoid(row.reduce((s, v, j) => s + v * w[j + 1]!, w[0]!)));
  const threshold = rules.bands.review;
  let tp = 0;
  let fp = 0;
  let fn = 0;
  scores.forEach((s, i) => {
    const flagged = s >= threshold;
    if (flagged && test.y[i] === 1) tp++;
    else if (flagged) fp++;
    else if (test.y[i] === 1) fn++;
  });
  const round = (v: number) => Math.round(v * 10_000) / 10_000;
  const now = opts.now ?? new Date();
  return {
    id: `fraud-logistic-${now.toISOString().slice(0, 19).replace(/[-:T]/g, '')}`,
    kind: 'logistic',
    trainedAt: now.toISOString(),
    ruleSet: rules.id,
    intercept: round(w[0]!),
    coefficients: Object.fromEntries(data.features.map((f, j) => [f, round(w[j + 1]!)])),
    metrics: {
      auc: round(auc(scores, test.y)),
      precision: round(tp + fp === 0 ? 0 : tp / (tp + fp)),
      recall: round(tp + fn === 0 ? 0 : tp / (tp + fn)),
      threshold,
      rows: data.y.length,
    },
  };
}

export function trainFromFile(csv: string, out: string, rules: RuleSet): TrainedModel {
  let text: string;
  try {
    text = readFileSync(csv, 'utf8');
  } catch (err) {
    throw new TrainingError(
      `cannot read ${csv}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
  const model = train(parseCsv(text), rules);
  writeFileSync(out, JSON.stringify(model, null, 2) + '\n');
  return model;
}
