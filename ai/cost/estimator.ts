/**
 * An indicative repair estimate for one vehicle, in DZD: the damaged zones (cost/damage.ts) →
 * parts and operations, priced by the vehicle's segment, parts depreciated by its age (the
 * year of first registration is in an Algerian plate), labour and paint at the wilaya's rates,
 * paint materials, VAT. Missing information widens the range and lowers the confidence; it
 * never throws.
 */
import { parseDzPlate } from '../../constat/plates.js';
import type { VehicleSection } from '../../constat/constat-doc.js';
import { normaliseText } from '../text.js';
import { readDamage, sideOfImpact, type DamagedZone } from './damage.js';
import {
  tableVersions,
  type CostTables,
  type Operation,
  type Segment,
  type Severity,
} from './tables.js';

export interface CostLine {
  part: string;
  label: string;
  side: string;
  severity: Severity;
  operation: Operation;
  partsAmount: number;
  depreciationRate: number;
  labourHours: number;
  labourAmount: number;
  paintHours: number;
  paintAmount: number;
  materialsAmount: number;
  amount: number;
}

export interface VehicleEstimate {
  vehicle: 'A' | 'B';
  amount: number;
  low: number;
  high: number;
  currency: 'DZD';
  confidence: number;
  segment: Segment;
  segmentKnown: boolean;
  vehicleAgeYears: number | null;
  wilaya: string | null;
  subtotal: number;
  vat: number;
  lines: CostLine[];
  /** Why the range is wide or the confidence low, in words. */
  notes: string[];
  tables: string[];
}

export interface EstimateInput {
  role: 'A' | 'B';
  vehicle: VehicleSection;
  /** The accident's wilaya (labour rates); the plate's wilaya when absent. */
  wilaya: string | undefined;
  /** The accident date, for the vehicle's age. */
  at: Date;
}

const round100 = (n: number) => Math.round(n / 100) * 100;
const round2 = (n: number) => Math.round(n * 100) / 100;

export function segmentOf(
  make: string | undefined,
  model: string | undefined,
  tables: CostTables,
): { segment: Segment; known: boolean } {
  const m = make ? tables.segments.makes[normaliseText(make).trim()] : undefined;
  if (!m) return { segment: 'C', known: false };
  const name = model ? normaliseText(model).trim() : '';
  const exact = m.models[name];
  if (exact) return { segment: exact, known: true };
  const prefix = Object.keys(m.models).find((k) => name.startsWith(`${k} `) || name === k);
  return { segment: prefix ? m.models[prefix]! : m.default, known: true };
}

export function depreciationRate(ageYears: number, tables: CostTables): number {
  for (const b of tables.depreciation.brackets) {
    if (b.maxAgeYears === null || ageYears <= b.maxAgeYears) return b.rate;
  }
  return 0;
}

export function ratesFor(wilaya: string | undefined, tables: CostTables) {
  const known = wilaya ? tables.rates.wilayas[wilaya] : undefined;
  return { ...(known ?? tables.rates.default), known: known !== undefined };
}

function line(
  zone: DamagedZone,
  segment: Segment,
  depreciation: number,
  rates: { labour: number; paint: number },
  tables: CostTables,
): CostLine {
  const part = tables.parts.parts[zone.part]!;
  let operation = tables.parts.severityOperation[zone.severity];
  // Lamps, glass and mechanical parts are not painted: a heavy hit replaces them, anything
  // lighter is a repair (adjusting, polishing).
  if (part.hours.paint === 0 && operation === 'paint') operation = 'repair';
  const depreciationRate = operation === 'replace' ? depreciation : 0;
  const partsAmount = operation === 'replace' ? part.price[segment] * (1 - depreciation) : 0;
  const labourHours =
    operation === 'replace'
      ? part.hours.replace
      : operation === 'repair'
        ? part.hours.repair
        : part.hours.repair * 0.25;
  const paintHours = operation === 'paint' ? part.hours.paint * 0.6 : part.hours.paint;
  const labourAmount = labourHours * rates.labour;
  const paintAmount = paintHours * rates.paint;
  const materialsAmount = paintHours * tables.estimate.materialsPerPaintHour;
  return {
    part: zone.part,
    label: part.label,
    side: zone.side,
    severity: zone.severity,
    operation,
    partsAmount: round2(partsAmount),
    depreciationRate,
    labourHours: round2(labourHours),
    labourAmount: round2(labourAmount),
    paintHours: round2(paintHours),
    paintAmount: round2(paintAmount),
    materialsAmount: round2(materialsAmount),
    amount: round2(partsAmount + labourAmount + paintAmount + materialsAmount),
  };
}

export function estimateVehicle(input: EstimateInput, tables: CostTables): VehicleEstimate {
  const v = input.vehicle ?? {};
  const identity = v.vehicle ?? {};
  const notes: string[] = [];
  const spreadT = tables.estimate.spread;
  const confT = tables.estimate.confidence;
  let spread = spreadT.base;
  let confidence = confT.base;

  const make = typeof identity.make === 'string' ? identity.make : undefined;
  const model = typeof identity.model === 'string' ? identity.model : undefined;
  const { segment, known } = segmentOf(make, model, tables);
  if (!known) {
    spread = Math.max(spread, spreadT.unknownSegment);
    confidence *= confT.unknownSegment;
    notes.push(`make "${make ?? ''}" not in the segment table: priced as segment ${segment}`);
  }

  const plate =
    typeof identity.plate === 'string' ? parseDzPlate(identity.plate, { now: input.at }) : null;
  let age: number | null = null;
  if (plate?.ok) age = Math.max(0, input.at.getUTCFullYear() - plate.year);
  else {
    spread += spreadT.noAge;
    confidence *= confT.noAge;
    notes.push('age unknown (no Algerian plate): parts not depreciated');
  }
  const depreciation = age === null ? 0 : depreciationRate(age, tables);

  const wilaya = input.wilaya ?? (plate?.ok ? plate.wilaya : undefined);
  const rates = ratesFor(wilaya, tables);
  if (!rates.known) {
    confidence *= confT.noRates;
    notes.push(`no labour rates for wilaya ${wilaya ?? '(none)'}: default rates`);
  }

  const text = typeof v.visibleDamage === 'string' ? v.visibleDamage : undefined;
  const damage = readDamage(text, sideOfImpact(v.impactPoint?.side), tables);
  if (!damage.understood) {
    spread = Math.max(spread, spreadT.noDamageText);
    confidence *= confT.noDamageText;
    notes.push(
      text?.trim()
        ? 'visible damage not recognised: estimated from the impact point'
        : 'no visible damage described: estimated from the impact point',
    );
  }

  const lines = damage.zones.map((z) => line(z, segment, depreciation, rates, tables));
  const subtotal = lines.reduce((s, l) => s + l.amount, 0);
  const vat = subtotal * tables.estimate.vatRate;
  const amount = round100(subtotal + vat);
  return {
    vehicle: input.role,
    amount,
    low: round100(amount * (1 - Math.min(spread, 0.9))),
    high: round100(amount * (1 + spread)),
    currency: 'DZD',
    confidence: round2(confidence),
    segment,
    segmentKnown: known,
    vehicleAgeYears: age,
    wilaya: wilaya ?? null,
    subtotal: round2(subtotal),
    vat: round2(vat),
    lines,
    notes,
    tables: tableVersions(tables),
  };
}
