/**
 * AI findings as structured GraphQL values, read from the timeline events the AI service
 * published (`dz.ai.fraud_scored.v1`, `dz.ai.cost_estimated.v1`; docs/events.md). Malformed or
 * older events that lack the structured fields give what they can (a score without signals),
 * never an error. Who sees what: fraud findings only staff of an insurer of the constat.
 */
import type { TimelineEvent } from '../../persistence/timeline-repository.js';
import type { GraphQLContext } from './context.js';
import type { VisibleConstat } from './loaders.js';

export const FRAUD_SCORED = 'dz.ai.fraud_scored.v1';
export const COST_ESTIMATED = 'dz.ai.cost_estimated.v1';

type Json = Record<string, unknown>;
const obj = (v: unknown): Json =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : {};
const num = (v: unknown, fallback: number | null = null) =>
  typeof v === 'number' && Number.isFinite(v) ? v : fallback;
const text = (v: unknown, fallback: string | null = null) => (typeof v === 'string' ? v : fallback);
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

/** Whether the caller works for the insurer of party A or B of this constat. */
export function insurerOf(c: VisibleConstat, ctx: GraphQLContext): boolean {
  return ctx.viewer.insurers.some((uid) => uid === c.insurerA || uid === c.insurerB);
}

const BANDS = new Set(['low', 'review', 'high']);

export function fraudAssessment(event: TimelineEvent | undefined) {
  if (!event) return null;
  const d = obj(event.data);
  const score = num(d.score, 0)!;
  const band = text(d.band);
  return {
    score,
    band: (band && BANDS.has(band)
      ? band
      : score >= 0.6
        ? 'high'
        : score >= 0.3
          ? 'review'
          : 'low'
    ).toUpperCase(),
    ruleSet: text(d.ruleSet, 'unknown'),
    model: text(d.model, 'unknown'),
    signals: list(d.findings).map((raw) => {
      const s = obj(raw);
      return {
        name: text(s.name, '?'),
        label: text(s.label, text(s.name, '?')),
        weight: num(s.weight, 0),
        value: num(s.value, 1),
        contribution: num(s.contribution, num(s.weight, 0)),
        reason: text(s.reason, ''),
        values: obj(s.values),
      };
    }),
    source: event.source,
    assessedAt: event.time.toISOString(),
  };
}

export function costEstimates(event: TimelineEvent | undefined) {
  if (!event) return [];
  return list(obj(event.data).estimates).flatMap((raw) => {
    const e = obj(raw);
    const vehicle = e.vehicle === 'A' || e.vehicle === 'B' ? e.vehicle : undefined;
    const amount = num(e.amount);
    if (!vehicle || amount === null) return [];
    return [
      {
        vehicle,
        amount,
        low: num(e.low, amount),
        high: num(e.high, amount),
        currency: text(e.currency, 'DZD'),
        confidence: num(e.confidence, 0),
        segment: text(e.segment),
        vehicleAgeYears: num(e.vehicleAgeYears),
        wilaya: text(e.wilaya),
        subtotal: num(e.subtotal),
        vat: num(e.vat),
        lines: list(e.lines).map((l) => {
          const line = obj(l);
          return {
            ...line,
            part: text(line.part, '?'),
            operation: text(line.operation, '?'),
            amount: num(line.amount, 0),
          };
        }),
        notes: list(e.notes).filter((n): n is string => typeof n === 'string'),
        tables: list(e.tables).filter((n): n is string => typeof n === 'string'),
        source: event.source,
        estimatedAt: event.time.toISOString(),
      },
    ];
  });
}
