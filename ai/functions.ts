/**
 * The AI functions this service runs on every finalized constat, in order (a later one may use
 * an earlier one's result: fraud reads the cost estimate). Each is registered under its service
 * name, the `source` of the events it publishes. OCR and video plug in here.
 */
import { accidentTime, ROLES, str, type ConstatView } from './constat-view.js';
import { estimateVehicle, type VehicleEstimate } from './cost/estimator.js';
import type { CostTables } from './cost/tables.js';
import { extractFeatures } from './fraud/features.js';
import type { RuleSet, TrainedModel } from './fraud/rules.js';
import { scoreFraud } from './fraud/scorer.js';
import { ocrMismatchLines } from './ocr/ocr-function.js';
import type { AiStore } from './store.js';
import type { ConstatFinalizedData } from '../integrations/events.js';

export interface FunctionContext {
  view: ConstatView;
  /** The event as received (attachments with their digests, the session id). */
  event: ConstatFinalizedData;
  store: AiStore;
  /** For a function with `items`: the one this run is for. */
  item?: string;
  /** Data of the functions that ran before, by function name. */
  earlier: ReadonlyMap<string, unknown>;
}

export interface AiFunction {
  name: string;
  /** The registered service name: the `source` of its events. */
  service: string;
  eventType: string;
  run(ctx: FunctionContext): Promise<Record<string, unknown>>;
  /**
   * A function that publishes one event per item (OCR: one per paper) names the items here;
   * `run` is then called once per item, and later functions see the list of their data.
   */
  items?(ctx: FunctionContext): string[];
}

export interface CostData extends Record<string, unknown> {
  estimates: VehicleEstimate[];
}

export function costFunction(tables: CostTables): AiFunction {
  return {
    name: 'cost',
    service: 'constat-ai-cost',
    eventType: 'dz.ai.cost_estimated.v1',
    async run({ view }) {
      const at = accidentTime(view) ?? view.finalizedAt;
      const wilaya = str(view.accident.place?.wilaya);
      const estimates = ROLES.map((role) =>
        estimateVehicle({ role, vehicle: view.vehicles[role], wilaya, at }, tables),
      );
      return { estimates } satisfies CostData;
    },
  };
}

export function fraudFunction(rules: RuleSet, model?: TrainedModel): AiFunction {
  const window = Math.max(
    rules.params.repeatWindowDays,
    rules.params.pairWindowDays,
    rules.params.placeWindowDays,
  );
  return {
    name: 'fraud',
    service: 'constat-ai-fraud',
    eventType: 'dz.ai.fraud_scored.v1',
    async run({ view, store, earlier }) {
      const features = extractFeatures(view, rules.params.placeCellDegrees);
      const history = await store.seenBefore(view.constatId, features, view.finalizedAt, window);
      await store.remember(view.constatId, features, view.finalizedAt, accidentTime(view));
      const cost = earlier.get('cost') as CostData | undefined;
      const modelEstimates = Object.fromEntries(
        (cost?.estimates ?? []).map((e) => [e.vehicle, { amount: e.amount, high: e.high }]),
      );
      const ocr = earlier.get('ocr');
      const result = scoreFraud(
        { view, history, modelEstimates, ...(ocr ? { ocrMismatches: ocrMismatchLines(ocr) } : {}) },
        rules,
        model,
      );
      return {
        score: result.score,
        // The v1 schema's list of names, for consumers that read only that.
        signals: result.signals.map((s) => s.name),
        model: result.model,
        band: result.band,
        ruleSet: result.ruleSet,
        intercept: result.intercept,
        findings: result.signals,
      };
    },
  };
}
