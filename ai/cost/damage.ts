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
  const parsed: Array<{ severity?: Severity; sides: Side[]; parts: string[] }> = [];
  for (const clause of clauses(text ?? '')) {
    const severity = severityIn(clause, tables);
    const sides = SIDES.filter((side) =>
      words(kw.sides[side]).some((w) => findKeyword(clause, w).length > 0),
    );
    const parts = Object.keys(kw.parts).filter((p) =>
      words(kw.parts[p]!).some((w) => findKeyword(clause, w).length > 0),
    );
    const previous = parsed.at(-1);
    // "capot rayé et enfoncé": a clause that is only a severity qualifies the one before.
    if (parts.length === 0 && sides.length === 0 && previous) {
      if (
        severity &&
        (!previous.severity || SEVERITY_RANK[severity] > SEVERITY_RANK[previous.severity])
      )
        previous.severity = severity;
      continue;
    }
    parsed.push({ ...(severity ? { severity } : {}), sides, parts });
  }
  // "Coffre et feu arrière cassés": a severity said once covers the parts listed before it,
  // else the one said before them.
  const severityFor = (i: number): Severity | undefined =>
    parsed[i]!.severity ??
    parsed.slice(i + 1).find((c) => c.severity)?.severity ??
    parsed
      .slice(0, i)
      .reverse()
      .find((c) => c.severity)?.severity;
  parsed.forEach(({ sides, parts }, i) => {
    const severity = severityFor(i) ?? 'medium';
    if (parts.length > 0) {
      understood = true;
      for (const part of parts) {
        add({
          part,
          side:
            tables.parts.fixedSides[part] ?? sideFor(part, sides, tables) ?? impactSide ?? 'front',
          severity,
          from: 'text',
        });
      }
    } else if (sides.length > 0) {
      understood = true;
      const at = sides[0]!;
      for (const part of genericParts(at, severity, tables))
        add({ part, side: tables.parts.fixedSides[part] ?? at, severity, from: 'text' });
    } else if (parsed[i]!.severity && parsed.length === 1) {
      // Only a severity ("tout est cassé"): the impact point says where.
      understood = true;
      const at = impactSide ?? tables.estimate.noInformation.side;
      for (const part of genericParts(at, severity, tables))
        add({ part, side: tables.parts.fixedSides[part] ?? at, severity, from: 'text' });
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

/**
 * A door, a wing or a mirror is on the left or the right ("portière avant droite" is the
 * right front door); a bumper is at the front or the rear.
 */
function sideFor(part: string, sides: Side[], tables: CostTables): Side | undefined {
  const lateral = tables.parts.lateralParts.includes(part);
  const preferred = sides.find((s) => (s === 'left' || s === 'right') === lateral);
  return preferred ?? sides[0];
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
