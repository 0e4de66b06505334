/**
 * The score: the logistic of the intercept plus, for every signal that fires, its weight times
 * its value. Weights come from the rule set (expert priors) or, when one is loaded, from a
 * trained model. Every result names the rule set and the model, and lists each signal that
 * fired with its weight, contribution and reason.
 */
import { SIGNALS, type FraudInput } from './signals.js';
import type { RuleSet, TrainedModel } from './rules.js';

export type FraudBand = 'low' | 'review' | 'high';

export interface FiredSignal {
  name: string;
  label: string;
  /** Log-odds per unit of value. */
  weight: number;
  value: number;
  /** weight × value: what it added to the log-odds. */
  contribution: number;
  reason: string;
  values: Record<string, string | number | boolean>;
}

export interface FraudResult {
  score: number;
  band: FraudBand;
  ruleSet: string;
  /** The trained model's id, or the rule set's when its expert weights were used. */
  model: string;
  intercept: number;
  signals: FiredSignal[];
}

export function bandOf(score: number, bands: RuleSet['bands']): FraudBand {
  return score >= bands.high ? 'high' : score >= bands.review ? 'review' : 'low';
}

export const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));

/** Every signal's value (0 when it does not fire): the feature vector the model is fitted on. */
export function signalValues(input: FraudInput, rules: RuleSet): Record<string, number> {
  const out: Record<string, number> = {};
  for (const name of Object.keys(SIGNALS))
    out[name] = SIGNALS[name]!(input, rules.params)?.value ?? 0;
  return out;
}

export function scoreFraud(input: FraudInput, rules: RuleSet, model?: TrainedModel): FraudResult {
  const intercept = model ? model.intercept : rules.intercept;
  const fired: FiredSignal[] = [];
  let z = intercept;
  for (const [name, signal] of Object.entries(SIGNALS)) {
    const hit = signal(input, rules.params);
    if (!hit) continue;
    const weight = model ? (model.coefficients[name] ?? 0) : (rules.signals[name]?.weight ?? 0);
    const contribution = weight * hit.value;
    z += contribution;
    fired.push({
      name,
      label: rules.signals[name]?.label ?? name,
      weight,
      value: hit.value,
      contribution: Math.round(contribution * 1000) / 1000,
      reason: hit.reason,
      values: hit.values,
    });
  }
  fired.sort((a, b) => b.contribution - a.contribution);
  const score = Math.round(sigmoid(z) * 1000) / 1000;
  return {
    score,
    band: bandOf(score, rules.bands),
    ruleSet: rules.id,
    model: model?.id ?? rules.id,
    intercept,
    signals: fired,
  };
}
