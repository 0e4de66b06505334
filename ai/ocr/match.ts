/**
 * What the party typed against what the paper says: both sides normalised the same way (case,
 * French accents, Arabic letter variants and diacritics, Arabic-Indic digits, separators in
 * plates and numbers), a similarity per field (1 − edit distance / length), and a verdict for
 * the document. Identifiers (numbers, plates, dates, the insurer) must be equal once
 * normalised; names, make and model are allowed the odd OCR slip.
 */
import type { VehicleSection } from '../../constat/constat-doc.js';
import { normaliseText } from '../text.js';
import { cleanText, type PaperKind, type ReadFields } from './extract.js';

export type FieldKind = 'id' | 'date' | 'name' | 'text';

interface FieldRule {
  /** The typed value in the party's vehicle section. */
  typed: (v: VehicleSection) => unknown;
  kind: FieldKind;
  /** Other fields read from the paper that may carry the same value (a name in Arabic). */
  alternatives?: string[];
}

/** Per paper, the fields compared with what was typed; the first must be read at all. */
export const COMPARED: Record<PaperKind, Record<string, FieldRule>> = {
  licence: {
    number: { typed: (v) => v.driver?.licenceNumber, kind: 'id' },
    lastName: { typed: (v) => v.driver?.lastName, kind: 'name', alternatives: ['lastNameAr'] },
    firstName: { typed: (v) => v.driver?.firstName, kind: 'name', alternatives: ['firstNameAr'] },
    category: { typed: (v) => v.driver?.licenceCategory, kind: 'id' },
    issuedOn: { typed: (v) => v.driver?.licenceIssuedOn, kind: 'date' },
    validUntil: { typed: (v) => v.driver?.licenceValidUntil, kind: 'date' },
    birthDate: { typed: (v) => v.driver?.birthDate, kind: 'date' },
  },
  registration: {
    plate: { typed: (v) => v.vehicle?.plate, kind: 'id' },
    make: { typed: (v) => v.vehicle?.make, kind: 'text' },
    model: { typed: (v) => v.vehicle?.model, kind: 'text' },
  },
  insurance_certificate: {
    policyNumber: { typed: (v) => v.insurer?.policyNumber, kind: 'id' },
    insurer: { typed: (v) => v.insurer?.company, kind: 'id' },
    validFrom: { typed: (v) => v.insurer?.validFrom, kind: 'date' },
    validTo: { typed: (v) => v.insurer?.validTo, kind: 'date' },
    plate: { typed: (v) => v.vehicle?.plate, kind: 'id' },
  },
};

/** Least similarity that still counts as the same value. */
const THRESHOLD: Record<FieldKind, number> = { id: 1, date: 1, name: 0.8, text: 0.75 };

/** One normal form for both sides. */
export function normaliseValue(value: string, kind: FieldKind): string {
  const text = normaliseText(cleanText(value)).trim();
  if (kind === 'id') return text.replace(/[^\p{L}\p{N}]/gu, '');
  if (kind === 'date') {
    const iso = text.match(/^(\d{4}) (\d{1,2}) (\d{1,2})/);
    const dmy = text.match(/^(\d{1,2}) (\d{1,2}) (\d{4})/);
    const [y, m, d] = iso ? [iso[1], iso[2], iso[3]] : dmy ? [dmy[3], dmy[2], dmy[1]] : [];
    return y ? `${y}-${m!.padStart(2, '0')}-${d!.padStart(2, '0')}` : text;
  }
  return text;
}

/** 1 − Levenshtein distance / longer length: 1 for equal strings, 0 for nothing in common. */
export function similarity(a: string, b: string): number {
  if (a === b) return 1;
  if (!a || !b) return 0;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(
        prev[j]! + 1,
        row[j - 1]! + 1,
        prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    prev = row;
  }
  return 1 - prev[b.length]! / Math.max(a.length, b.length);
}

export interface FieldCheck {
  field: string;
  typed: string | null;
  read: string;
  similarity: number;
  match: boolean;
}

export type Verdict = 'verified' | 'mismatch' | 'unreadable';

export interface Comparison {
  verdict: Verdict;
  fields: FieldCheck[];
  /** For `unreadable`: why. */
  reason?: string;
}

const round = (n: number) => Math.round(n * 1000) / 1000;
const text = (v: unknown) => (typeof v === 'string' && v.trim() !== '' ? v.trim() : undefined);

/**
 * Compares the fields read from one paper with the party's section. A paper whose first field
 * (the licence number, the plate, the policy number) could not be read is `unreadable`; a key
 * field read but not typed counts as a mismatch (the paper says something the party left out).
 */
export function compare(kind: PaperKind, read: ReadFields, section: VehicleSection): Comparison {
  const rules = Object.entries(COMPARED[kind]);
  const [keyField] = rules[0]!;
  if (!read[keyField]) {
    return { verdict: 'unreadable', fields: [], reason: `no ${keyField} found on the paper` };
  }
  const fields: FieldCheck[] = [];
  for (const [field, rule] of rules) {
    const candidates = [field, ...(rule.alternatives ?? [])].flatMap((f) => read[f] ?? []);
    if (candidates.length === 0) continue;
    const typed = text(rule.typed(section));
    if (typed === undefined) {
      if (field === keyField) {
        fields.push({ field, typed: null, read: candidates[0]!, similarity: 0, match: false });
      }
      continue;
    }
    const want = normaliseValue(typed, rule.kind);
    const scored = candidates.map((c) => ({
      read: c,
      similarity: similarity(want, normaliseValue(c, rule.kind)),
    }));
    const best = scored.reduce((a, b) => (b.similarity > a.similarity ? b : a));
    fields.push({
      field,
      typed,
      read: best.read,
      similarity: round(best.similarity),
      match: best.similarity >= THRESHOLD[rule.kind],
    });
  }
  return { verdict: fields.every((f) => f.match) ? 'verified' : 'mismatch', fields };
}
