/**
 * The fraud rule set (weights, thresholds, windows) and the optional trained model, as data.
 * The shipped `rules.json` holds expert priors; `constat ai train` writes a model file whose
 * coefficients replace the weights (and intercept) while the rule set keeps the thresholds.
 */
import { readFileSync } from 'node:fs';

export interface RuleParams {
  repeatWindowDays: number;
  repeatMinCount: number;
  pairWindowDays: number;
  placeWindowDays: number;
  placeCellDegrees: number;
  policyRecentDays: number;
  declarationDeadlineDays: number;
  nightFromHour: number;
  nightToHour: number;
  gpsApartKm: number;
  gpsFromPlaceKm: number;
  photoTimeHours: number;
  estimateFactor: number;
}

export interface RuleSet {
  id: string;
  note?: string;
  intercept: number;
  bands: { review: number; high: number };
  params: RuleParams;
  signals: Record<string, { weight: number; label: string }>;
}

/** What `constat ai train` writes. */
export interface TrainedModel {
  id: string;
  kind: 'logistic';
  trainedAt: string;
  /** The rule set whose signals were the features. */
  ruleSet: string;
  intercept: number;
  coefficients: Record<string, number>;
  metrics: { auc: number; precision: number; recall: number; threshold: number; rows: number };
}

export class FraudDataError extends Error {
  constructor(file: string, message: string) {
    super(`${file}: ${message}`);
    this.name = 'FraudDataError';
  }
}

const PARAMS: readonly (keyof RuleParams)[] = [
  'repeatWindowDays',
  'repeatMinCount',
  'pairWindowDays',
  'placeWindowDays',
  'placeCellDegrees',
  'policyRecentDays',
  'declarationDeadlineDays',
  'nightFromHour',
  'nightToHour',
  'gpsApartKm',
  'gpsFromPlaceKm',
  'photoTimeHours',
  'estimateFactor',
];

function readJson(file: string | URL): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new FraudDataError(String(file), (err as Error).message);
  }
}

const finite = (v: unknown) => typeof v === 'number' && Number.isFinite(v);

export function checkRuleSet(raw: unknown, file = 'rule set'): RuleSet {
  const r = raw as Partial<RuleSet>;
  if (typeof r?.id !== 'string' || !r.id) throw new FraudDataError(file, 'has no "id"');
  if (!finite(r.intercept)) throw new FraudDataError(file, '"intercept" must be a number');
  const b = r.bands;
  if (
    !b ||
    !finite(b.review) ||
    !finite(b.high) ||
    !(0 < b.review && b.review < b.high && b.high < 1)
  )
    throw new FraudDataError(file, 'bands must satisfy 0 < review < high < 1');
  for (const p of PARAMS) {
    if (!finite(r.params?.[p])) throw new FraudDataError(file, `params.${p} must be a number`);
  }
  for (const [name, s] of Object.entries(r.signals ?? {})) {
    if (!finite(s?.weight))
      throw new FraudDataError(file, `signals.${name}.weight must be a number`);
  }
  return r as RuleSet;
}

export const DEFAULT_RULES_FILE = new URL('./rules.json', import.meta.url);

export function loadRuleSet(file: string | URL = DEFAULT_RULES_FILE): RuleSet {
  return checkRuleSet(readJson(file), String(file));
}

export function loadModel(file: string): TrainedModel {
  const m = readJson(file) as Partial<TrainedModel>;
  if (m?.kind !== 'logistic' || typeof m.id !== 'string' || !finite(m.intercept))
    throw new FraudDataError(file, 'not a model written by `constat ai train`');
  for (const [name, w] of Object.entries(m.coefficients ?? {})) {
    if (!finite(w)) throw new FraudDataError(file, `coefficient ${name} is not a number`);
  }
  return m as TrainedModel;
}
