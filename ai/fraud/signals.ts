/**
 * The fraud signals: each a pure function of what the constat says and what the feature store
 * saw before, answering with a value in 0–1 (how strongly it fires) and a reason that quotes
 * the values, or null when it does not fire. docs/ai.md lists them with their meaning.
 */
import {
  accidentTime,
  distanceKm,
  gpsOf,
  ROLES,
  str,
  ticked,
  witnessesOf,
  type AttachmentEntry,
  type ConstatView,
  type Role,
} from '../constat-view.js';
import type { FeatureKind } from './features.js';
import type { RuleParams } from './rules.js';

const DAY = 86_400_000;

/** Earlier constats that carried the same value (from the feature store). */
export interface SeenBefore {
  kind: FeatureKind;
  value: string;
  role: Role | null;
  /** When each earlier constat was finalized, newest first. */
  earlier: Date[];
}

export interface FraudInput {
  view: ConstatView;
  history: SeenBefore[];
  /** Our cost model's estimate per vehicle (high end of the range). */
  modelEstimates?: Partial<Record<Role, { amount: number; high: number }>>;
  /** An estimate given by someone else (a garage, an expert) per vehicle, when known. */
  providedEstimates?: Partial<Record<Role, number>>;
  /** Mismatches the OCR function found between the papers and the constat, when it ran. */
  ocrMismatches?: string[];
}

export interface SignalHit {
  /** 0–1: how strongly it fires (most signals are all or nothing). */
  value: number;
  reason: string;
  values: Record<string, string | number | boolean>;
}

export type Signal = (input: FraudInput, p: RuleParams) => SignalHit | null;

const days = (ms: number) => Math.round((ms / DAY) * 10) / 10;
const parseDay = (v: unknown): Date | undefined => {
  const s = str(v);
  if (!s || !/^\d{4}-\d{2}-\d{2}/.test(s)) return undefined;
  const d = new Date(`${s.slice(0, 10)}T00:00:00Z`);
  return Number.isNaN(d.getTime()) ? undefined : d;
};

const KIND_WORDS: Record<FeatureKind, string> = {
  plate: 'plate',
  licence: 'licence',
  device_key: 'signing device key',
  phone: 'phone number',
  policy: 'policy number',
  pair: 'pair of parties',
  place: 'spot',
};

/** Masks all but the end of an identifier in reasons (they reach insurer staff, not the public). */
const mask = (v: string) => (v.length <= 4 ? v : `…${v.slice(-4)}`);

function repeat(kind: FeatureKind, windowOf: (p: RuleParams) => number): Signal {
  return ({ view, history }, p) => {
    const window = windowOf(p);
    const since = view.finalizedAt.getTime() - window * DAY;
    const hits = history
      .filter((h) => h.kind === kind)
      .map((h) => ({ ...h, recent: h.earlier.filter((d) => d.getTime() >= since) }))
      .filter((h) => h.recent.length >= p.repeatMinCount);
    if (hits.length === 0) return null;
    const top = hits.reduce((a, b) => (b.recent.length > a.recent.length ? b : a));
    const count = top.recent.length;
    const last = days(view.finalizedAt.getTime() - top.recent[0]!.getTime());
    const who = top.role ? ` (party ${top.role})` : '';
    return {
      // Two earlier constats is as strong as it gets; one is most of it.
      value: Math.min(1, 0.5 + 0.25 * count),
      reason: `${KIND_WORDS[kind]}${who} ${kind === 'pair' || kind === 'place' ? '' : `${mask(top.value)} `}seen in ${count} earlier constat${count > 1 ? 's' : ''} within ${window} days, the last ${last} days before`,
      values: {
        count,
        windowDays: window,
        lastDaysBefore: last,
        ...(top.role ? { role: top.role } : {}),
      },
    };
  };
}

function perVehicle(
  check: (input: FraudInput, role: Role, p: RuleParams) => SignalHit | null,
): Signal {
  return (input, p) => {
    const hits = ROLES.map((r) => check(input, r, p)).filter((h): h is SignalHit => h !== null);
    if (hits.length === 0) return null;
    return hits.reduce((a, b) => (b.value > a.value ? b : a));
  };
}

const policyRecent = perVehicle(({ view }, role, p) => {
  const from = parseDay(view.vehicles[role].insurer?.validFrom);
  const at = accidentTime(view);
  if (!from || !at) return null;
  const d = Math.floor((at.getTime() - from.getTime()) / DAY);
  if (d < 0 || d > p.policyRecentDays) return null;
  return {
    value: 1,
    reason: `party ${role}'s policy started ${d} day${d === 1 ? '' : 's'} before the accident (limit ${p.policyRecentDays})`,
    values: { role, daysSincePolicyStart: d, limitDays: p.policyRecentDays },
  };
});

const certificateExpired = perVehicle(({ view }, role): SignalHit | null => {
  const ins = view.vehicles[role].insurer ?? {};
  const at = accidentTime(view);
  if (!at) return null;
  const day = new Date(at.toISOString().slice(0, 10) + 'T00:00:00Z');
  const from = parseDay(ins.validFrom);
  const to = parseDay(ins.validTo);
  if (to && day > to) {
    return {
      value: 1,
      reason: `party ${role}'s certificate expired on ${ins.validTo}, the accident is on ${view.accident.date}`,
      values: { role, validTo: String(ins.validTo), accidentDate: String(view.accident.date) },
    };
  }
  if (from && day < from) {
    return {
      value: 1,
      reason: `party ${role}'s certificate starts on ${ins.validFrom}, after the accident (${view.accident.date})`,
      values: { role, validFrom: String(ins.validFrom), accidentDate: String(view.accident.date) },
    };
  }
  return null;
});

const lateDeclaration: Signal = ({ view }, p) => {
  const at = accidentTime(view);
  if (!at) return null;
  const delay = days(view.signedAt.getTime() - at.getTime());
  if (delay <= p.declarationDeadlineDays) return null;
  return {
    value: 1,
    reason: `signed ${delay} days after the accident; the deadline is ${p.declarationDeadlineDays} days`,
    values: { delayDays: delay, deadlineDays: p.declarationDeadlineDays },
  };
};

const nightTime: Signal = ({ view }, p) => {
  const time = str(view.accident.time);
  if (!time || !/^\d{2}:\d{2}$/.test(time)) return null;
  const hour = Number(time.slice(0, 2));
  const night =
    p.nightFromHour > p.nightToHour
      ? hour >= p.nightFromHour || hour < p.nightToHour
      : hour >= p.nightFromHour && hour < p.nightToHour;
  if (!night) return null;
  return {
    value: 1,
    reason: `accident at ${time}, between ${p.nightFromHour}:00 and ${p.nightToHour}:00`,
    values: { time },
  };
};

const noWitness: Signal = ({ view }) =>
  witnessesOf(view).length === 0
    ? { value: 1, reason: 'no witness named', values: { witnesses: 0 } }
    : null;

const noInjuries: Signal = ({ view }) =>
  view.accident.injuries === false
    ? { value: 1, reason: 'no injuries declared', values: { injuries: false } }
    : null;

/** The "parked" box of each form version (dz 8, eu 1). */
const PARKED_BOX: Record<string, string> = { dz: '8', eu: '1' };
/** The rear-end box (striking the vehicle in front): the striker's impact is at its front. */
const REAR_END_BOX: Record<string, string> = { dz: '1', eu: '8' };

const parkedVehicleHit: Signal = ({ view }) => {
  const box = PARKED_BOX[view.formVersion];
  if (!box) return null;
  const parked = ROLES.find((r) => ticked(view.vehicles[r]).has(box));
  if (!parked) return null;
  const other = parked === 'A' ? 'B' : 'A';
  return {
    value: 1,
    reason: `party ${parked} declares being parked (box ${box}); party ${other} ticked ${ticked(view.vehicles[other]).size} box(es)`,
    values: { parked, otherBoxes: ticked(view.vehicles[other]).size },
  };
};

const impactBoxMismatch = perVehicle(({ view }, role) => {
  const box = REAR_END_BOX[view.formVersion];
  const side = view.vehicles[role].impactPoint?.side;
  if (!box || !ticked(view.vehicles[role]).has(box) || typeof side !== 'string') return null;
  if (side === 'front') return null;
  return {
    value: 1,
    reason: `party ${role} ticked the rear-end box (${box}) but marks the impact on the ${side}`,
    values: { role, box, impactSide: side },
  };
});

function fixesOf(list: AttachmentEntry[]) {
  return list.flatMap((a) => (a.gps ? [a.gps] : []));
}

const gpsFarApart: Signal = ({ view }, p) => {
  const a = fixesOf(view.attachments.A);
  const b = fixesOf(view.attachments.B);
  if (a.length === 0 || b.length === 0) return null;
  let min = Infinity;
  for (const x of a) for (const y of b) min = Math.min(min, distanceKm(x, y));
  if (min <= p.gpsApartKm) return null;
  const km = Math.round(min * 10) / 10;
  return {
    value: 1,
    reason: `the two phones' photos were located ${km} km apart (limit ${p.gpsApartKm} km)`,
    values: { km, limitKm: p.gpsApartKm },
  };
};

const gpsFarFromPlace: Signal = ({ view }, p) => {
  const place = gpsOf(view.accident.place?.gps);
  if (!place) return null;
  const fixes = fixesOf([...view.attachments.A, ...view.attachments.B, ...view.sceneAttachments]);
  if (fixes.length === 0) return null;
  const max = Math.max(...fixes.map((f) => distanceKm(f, place)));
  if (max <= p.gpsFromPlaceKm) return null;
  const km = Math.round(max * 10) / 10;
  return {
    value: 1,
    reason: `a photo was located ${km} km from the declared place (limit ${p.gpsFromPlaceKm} km)`,
    values: { km, limitKm: p.gpsFromPlaceKm },
  };
};

const photoTimeInconsistent: Signal = ({ view }, p) => {
  const at = accidentTime(view);
  if (!at) return null;
  const all = [...view.attachments.A, ...view.attachments.B, ...view.sceneAttachments];
  let worst = 0;
  let worstId = '';
  for (const a of all) {
    const t = a.takenAt ? new Date(a.takenAt) : undefined;
    if (!t || Number.isNaN(t.getTime())) continue;
    const h = Math.abs(t.getTime() - at.getTime()) / 3_600_000;
    if (h > worst) [worst, worstId] = [h, a.id];
  }
  if (worst <= p.photoTimeHours) return null;
  const hours = Math.round(worst);
  return {
    value: 1,
    reason: `photo ${mask(worstId)} was taken ${hours} h from the declared accident time (limit ${p.photoTimeHours} h)`,
    values: { hours, limitHours: p.photoTimeHours },
  };
};

const estimateAboveModel = perVehicle(({ modelEstimates, providedEstimates }, role, p) => {
  const model = modelEstimates?.[role];
  const given = providedEstimates?.[role];
  if (!model || given === undefined || model.high <= 0) return null;
  const ratio = Math.round((given / model.high) * 100) / 100;
  if (ratio <= p.estimateFactor) return null;
  return {
    value: 1,
    reason: `party ${role}'s estimate of ${given} DZD is ${ratio}× the model's high end (${model.high} DZD; limit ${p.estimateFactor}×)`,
    values: { role, given, modelHigh: model.high, ratio },
  };
});

const ocrMismatch: Signal = ({ ocrMismatches }) =>
  ocrMismatches && ocrMismatches.length > 0
    ? {
        value: 1,
        reason: `the papers read by OCR differ: ${ocrMismatches.slice(0, 3).join('; ')}`,
        values: { mismatches: ocrMismatches.length },
      }
    : null;

/** Every signal by the name the rule set weighs it under. */
export const SIGNALS: Readonly<Record<string, Signal>> = {
  plate_repeat: repeat('plate', (p) => p.repeatWindowDays),
  licence_repeat: repeat('licence', (p) => p.repeatWindowDays),
  device_key_repeat: repeat('device_key', (p) => p.repeatWindowDays),
  phone_repeat: repeat('phone', (p) => p.repeatWindowDays),
  policy_repeat: repeat('policy', (p) => p.repeatWindowDays),
  parties_repeat: repeat('pair', (p) => p.pairWindowDays),
  place_repeat: repeat('place', (p) => p.placeWindowDays),
  policy_recent: policyRecent,
  certificate_expired: certificateExpired,
  late_declaration: lateDeclaration,
  night_time: nightTime,
  no_witness: noWitness,
  no_injuries: noInjuries,
  parked_vehicle_hit: parkedVehicleHit,
  impact_box_mismatch: impactBoxMismatch,
  gps_far_apart: gpsFarApart,
  gps_far_from_place: gpsFarFromPlace,
  photo_time_inconsistent: photoTimeInconsistent,
  estimate_above_model: estimateAboveModel,
  ocr_mismatch: ocrMismatch,
};
