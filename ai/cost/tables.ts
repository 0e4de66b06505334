/**
 * The cost tables, as shipped data files (ai/cost/tables/*.json), each with its version. Loaded
 * once and checked, so a bad edit fails at start naming the file, not at the first constat.
 */
import { readFileSync } from 'node:fs';

export type Segment = 'A' | 'B' | 'C' | 'D' | 'SUV' | 'LCV';
export type Side = 'front' | 'rear' | 'left' | 'right';
export type Severity = 'light' | 'medium' | 'heavy';
export type Operation = 'paint' | 'repair' | 'replace';
export const SIDES: readonly Side[] = ['front', 'rear', 'left', 'right'];
export const SEVERITIES: readonly Severity[] = ['light', 'medium', 'heavy'];
export const SEGMENTS: readonly Segment[] = ['A', 'B', 'C', 'D', 'SUV', 'LCV'];

interface Versioned {
  version: string;
  source: string;
}
type Words = { fr: string[]; ar: string[] };

export interface CostTables {
  segments: Versioned & {
    segments: Record<Segment, string>;
    makes: Record<string, { default: Segment; models: Record<string, Segment> }>;
  };
  parts: Versioned & {
    parts: Record<
      string,
      {
        label: string;
        price: Record<Segment, number>;
        hours: Record<Operation, number>;
      }
    >;
    sideParts: Record<Side, string[]>;
    severityOperation: Record<Severity, Operation>;
    heavyExtras: Record<Side, string[]>;
    /** Parts that have only one side (a bonnet is at the front). */
    fixedSides: Record<string, Side>;
    /** Parts on the left or right flank (the others are at the front or rear). */
    lateralParts: string[];
  };
  rates: Versioned & {
    default: { labour: number; paint: number };
    wilayas: Record<string, { labour: number; paint: number }>;
  };
  depreciation: Versioned & { brackets: Array<{ maxAgeYears: number | null; rate: number }> };
  estimate: Versioned & {
    vatRate: number;
    materialsPerPaintHour: number;
    spread: { base: number; unknownSegment: number; noDamageText: number; noAge: number };
    confidence: {
      base: number;
      unknownSegment: number;
      noDamageText: number;
      noAge: number;
      noRates: number;
    };
    noInformation: { side: Side; severity: Severity };
  };
  keywords: Versioned & {
    parts: Record<string, Words>;
    sides: Record<Side, Words>;
    severity: Record<Severity, Words>;
  };
}

const FILES = ['segments', 'parts', 'rates', 'depreciation', 'estimate', 'keywords'] as const;

export class CostTableError extends Error {
  constructor(file: string, message: string) {
    super(`cost table ${file}: ${message}`);
    this.name = 'CostTableError';
  }
}

function read(dir: URL, name: string): Versioned {
  const file = new URL(`${name}.json`, dir);
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new CostTableError(name, (err as Error).message);
  }
  const v = parsed as Partial<Versioned>;
  if (typeof v?.version !== 'string' || v.version === '')
    throw new CostTableError(name, 'has no "version"');
  return parsed as Versioned;
}

/** Checks what the estimator relies on: every part priced in every segment, operations known. */
function check(t: CostTables): void {
  for (const [name, part] of Object.entries(t.parts.parts)) {
    for (const s of SEGMENTS) {
      if (!(typeof part.price[s] === 'number' && part.price[s] >= 0))
        throw new CostTableError('parts', `${name} has no price for segment ${s}`);
    }
  }
  for (const side of SIDES) {
    for (const p of [...t.parts.sideParts[side], ...t.parts.heavyExtras[side]]) {
      if (!t.parts.parts[p]) throw new CostTableError('parts', `unknown part "${p}" for ${side}`);
    }
  }
  for (const p of [...Object.keys(t.parts.fixedSides), ...t.parts.lateralParts]) {
    if (!t.parts.parts[p]) throw new CostTableError('parts', `unknown part "${p}"`);
  }
  for (const p of Object.keys(t.keywords.parts)) {
    if (!t.parts.parts[p]) throw new CostTableError('keywords', `unknown part "${p}"`);
  }
  if (t.depreciation.brackets.at(-1)?.maxAgeYears !== null)
    throw new CostTableError('depreciation', 'the last bracket must be open (maxAgeYears null)');
}

export const DEFAULT_COST_TABLES_DIR = new URL('./tables/', import.meta.url);

export function loadCostTables(dir: URL = DEFAULT_COST_TABLES_DIR): CostTables {
  const tables = Object.fromEntries(FILES.map((f) => [f, read(dir, f)])) as unknown as CostTables;
  check(tables);
  return tables;
}

export function tableVersions(t: CostTables): string[] {
  return FILES.map((f) => t[f].version);
}
