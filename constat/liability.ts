/**
 * The liability suggestion: both parties' ticked circumstances, read through the rule table of
 * the constat's form version (liability-rules.ts), give each side a share of 0, 50 or 100 %
 * and name the rule that fired. Advisory only: it helps an insurer read the boxes, it decides
 * nothing, and it is shown to the parties' insurers, never to the drivers.
 */
import { LIABILITY_TABLES, type LiabilityRule, type LiabilityTable } from './liability-rules.js';

export type Share = 0 | 50 | 100;

export interface LiabilitySuggestion {
  formVersion: string;
  shareA: Share;
  shareB: Share;
  /** The rule id that fired, or `contradictory` / `no-case`. */
  rule: string;
  description: string;
  /** True when both sides ticked boxes that each put the fault on themselves (or both claim the same victim case). */
  contradictory: boolean;
  /** The ticked boxes the suggestion was made from. */
  ticksA: number[];
  ticksB: number[];
}

export const NO_CASE = 'no-case';

export function liabilityTable(formVersion: string): LiabilityTable | undefined {
  return LIABILITY_TABLES.find((t) => t.formVersion === formVersion);
}

/** Box ids ticked in a materialised `circumstances` map (id -> true); anything else is ignored. */
export function tickedBoxes(circumstances: unknown): number[] {
  if (typeof circumstances !== 'object' || circumstances === null) return [];
  return Object.entries(circumstances as Record<string, unknown>)
    .filter(([id, v]) => v === true && /^\d{1,3}$/.test(id))
    .map(([id]) => Number(id))
    .sort((a, b) => a - b);
}

/** The suggestion for a constat's content; undefined when its form version has no table. */
export function suggestLiabilityFromContent(
  formVersion: string,
  content: unknown,
): LiabilitySuggestion | undefined {
  const section = (name: string) =>
    ((content as Record<string, unknown> | null)?.[name] ?? {}) as { circumstances?: unknown };
  return suggestLiability(
    formVersion,
    tickedBoxes(section('vehicleA').circumstances),
    tickedBoxes(section('vehicleB').circumstances),
  );
}

export function suggestLiability(
  formVersion: string,
  ticksA: readonly number[],
  ticksB: readonly number[],
): LiabilitySuggestion | undefined {
  const table = liabilityTable(formVersion);
  if (!table) return undefined;
  const a = new Set(ticksA);
  const b = new Set(ticksB);
  const base = { formVersion, ticksA: [...a].sort(byNumber), ticksB: [...b].sort(byNumber) };
  for (const rule of table.rules) {
    const hitA = rule.boxes.some((x) => a.has(x));
    const hitB = rule.boxes.some((x) => b.has(x));
    const outcome = apply(rule, hitA, hitB);
    if (outcome) return { ...base, ...outcome };
  }
  return {
    ...base,
    shareA: 50,
    shareB: 50,
    rule: NO_CASE,
    description: 'Aucun cas de la table ne s’applique : 50/50',
    contradictory: false,
  };
}

type Outcome = Pick<
  LiabilitySuggestion,
  'shareA' | 'shareB' | 'rule' | 'description' | 'contradictory'
>;

function apply(rule: LiabilityRule, hitA: boolean, hitB: boolean): Outcome | undefined {
  const outcome = (shareA: Share, shareB: Share, contradictory = false): Outcome => ({
    shareA,
    shareB,
    rule: rule.id,
    description: contradictory
      ? `${rule.description} — déclarations contradictoires (les deux côtés) : 50/50`
      : rule.description,
    contradictory,
  });
  switch (rule.kind) {
    case 'shared':
      return hitA && hitB ? outcome(50, 50) : undefined;
    case 'fault':
      if (hitA && hitB) return outcome(50, 50, true);
      if (hitA) return outcome(100, 0);
      if (hitB) return outcome(0, 100);
      return undefined;
    case 'victim':
      if (hitA && hitB) return outcome(50, 50, true);
      if (hitA) return outcome(0, 100);
      if (hitB) return outcome(100, 0);
      return undefined;
  }
}

const byNumber = (x: number, y: number) => x - y;
