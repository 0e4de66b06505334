/**
 * Visible-damage text (French or Arabic, as drivers type it) and the impact point → the body
 * zones hit and how badly. Clause by clause: each clause names parts, maybe a side, maybe a
 * severity; a part without a side in its clause takes the impact point's side.
 */
import { findKeyword, normaliseText } from '../text.js';
import { SEVERITIES, SIDES, type CostTables, type Severity, type Side } from './tables.js';

export interface DamagedZone {
  part: string;
  side: Side;
  severity: Severity;
  /** What the zone was read from: the text, or only the impact point / a default. */
  from: 'text' | 'impact' | 'default';
}

export interface DamageReading {
  zones: DamagedZone[];
  /** Whether the text named anything the tables know. */
  understood: boolean;
}

const SEVERITY_RANK: Record<Severity, number> = { light: 0, medium: 1, heavy: 2 };

function words(t: { fr: string[]; ar: string[] }): string[] {
  return [...t.fr, ...t.ar];
}

/** Splits on punctuation and on the conjunctions "et" / " و " that start a new clause. */
function clauses(text: string): string[] {
  return text
    .split(/[,;.\n/+]| et | ainsi que | avec | و /u)
    .map((c) => normaliseText(c))
    .filter((c) => c.trim() !== '');
}

function firstMatch<K extends string>(
  clause: string,
  table: Record<K, { fr: string[]; ar: string[] }>,
  keys: readonly K[],
): K | undefined {
  let best: { key: K; at: number } | undefined;
  for (const key of keys) {
    for (const word of words(table[key])) {
      const at = findKeyword(clause, word)[0];
      if (at !== undefined && (!best || at < best.at)) best = { key, at };
    }
  }
  return best?.key;
}

export function sideOfImpact(side: unknown): Side | undefined {
  return typeof side === 'string' && (SIDES as readonly string[]).includes(side)
    ? (side as Side)
    : undefined;
}

export function readDamage(
  text: string | undefined,
  impactSide: Side | undefined,
  tables: CostTables,
): DamageReading {
  const kw = tables.keywords;
  const zones = new Map<string, DamagedZone>();
  const add = (z: DamagedZone) => {
    const key = `${z.part}:${z.side}`;
    const existing = zones.get(key);
    if (!existing || SEVERITY_RANK[z.severity] > SEVERITY_RANK[existing.severity])
      zones.set(key, z);
  };
  let understood = false;
  const parsed = clauses(text ?? '').map((clause) => ({
    severity: severityIn(clause, tables),
    side: firstMatch(clause, kw.sides, SIDES),
    parts: Object.keys(kw.parts).filter((p) =>
      words(kw.parts[p]!).some((w) => findKeyword(clause, w).length > 0),
    ),
  }));
  // "Coffre et feu arrière cassés": a severity said once covers the parts listed before it,
  // else the one said before them.
  const severityFor = (i: number): Severity | undefined =>
    parsed[i]!.severity ??
    parsed.slice(i + 1).find((c) => c.severity)?.severity ??
    parsed
      .slice(0, i)
      .reverse()
      .find((c) => c.severity)?.severity;
  parsed.forEach(({ side, parts }, i) => {
    const severity = severityFor(i);
    if (parts.length > 0) {
      understood = true;
      for (const part of parts) {
        add({
          part,
          side: tables.parts.fixedSides[part] ?? side ?? impactSide ?? 'front',
          severity: severity ?? 'medium',
          from: 'text',
        });
      }
    } else if (side || parsed[i]!.severity) {
      understood = true;
      const at = side ?? impactSide ?? 'front';
      for (const part of genericParts(at, severity ?? 'medium', tables))
        add({
          part,
          side: tables.parts.fixedSides[part] ?? at,
          severity: severity ?? 'medium',
          from: 'text',
        });
    }
  });
  if (!understood) {
    const side = impactSide ?? tables.estimate.noInformation.side;
    const severity = tables.estimate.noInformation.severity;
    for (const part of genericParts(side, severity, tables)) {
      add({ part, side, severity, from: impactSide ? 'impact' : 'default' });
    }
  }
  return { zones: [...zones.values()], understood };
}

function severityIn(clause: string, tables: CostTables): Severity | undefined {
  // The worst word wins: "rayé et enfoncé" is a dent.
  for (const s of [...SEVERITIES].reverse()) {
    if (words(tables.keywords.severity[s]).some((w) => findKeyword(clause, w).length > 0)) return s;
  }
  return undefined;
}

function genericParts(side: Side, severity: Severity, tables: CostTables): string[] {
  const parts = tables.parts.sideParts[side];
  // Without named parts, only the first panel of the side is counted unless the damage is heavy.
  return severity === 'heavy' ? [...parts, ...tables.parts.heavyExtras[side]] : parts.slice(0, 1);
}
