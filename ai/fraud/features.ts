/**
 * What the feature store keeps of a constat: identifiers that recur in staged accidents (plates,
 * licences, signing device keys, phone numbers, policy numbers), the pair of parties, the spot.
 * Values are normalised so trivial spelling differences still match.
 */
import { gpsOf, ROLES, str, type ConstatView, type Role } from '../constat-view.js';

export type FeatureKind =
  'plate' | 'licence' | 'device_key' | 'phone' | 'policy' | 'pair' | 'place';
export const FEATURE_KINDS: readonly FeatureKind[] = [
  'plate',
  'licence',
  'device_key',
  'phone',
  'policy',
  'pair',
  'place',
];

export interface Feature {
  kind: FeatureKind;
  value: string;
  /** The party it belongs to; `null` for the pair and the place. */
  role: Role | null;
}

const compact = (s: string) => s.toUpperCase().replace(/[\s.\-_/]+/g, '');

/** Digits only, without the country prefix: 0550 12 34 56 and +213 550123456 are one phone. */
export function normalisePhone(phone: string): string | undefined {
  const digits = phone
    .replace(/\D+/g, '')
    .replace(/^(?:00)?213/, '')
    .replace(/^0/, '');
  return digits.length >= 8 ? digits : undefined;
}

/** A grid cell of `cellDegrees` (0.002° ≈ 200 m) holding the fix. */
export function placeCell(lat: number, lon: number, cellDegrees: number): string {
  return `${Math.floor(lat / cellDegrees)}:${Math.floor(lon / cellDegrees)}@${cellDegrees}`;
}

/** The key that identifies a party across constats: the licence, else the plate. */
function partyKey(view: ConstatView, role: Role): string | undefined {
  const v = view.vehicles[role];
  const licence = str(v.driver?.licenceNumber);
  if (licence) return `L:${compact(licence)}`;
  const plate = str(v.vehicle?.plate);
  return plate ? `P:${compact(plate)}` : undefined;
}

export function extractFeatures(view: ConstatView, cellDegrees: number): Feature[] {
  const out: Feature[] = [];
  const push = (kind: FeatureKind, value: string | undefined, role: Role | null) => {
    if (value && value.length <= 200) out.push({ kind, value, role });
  };
  for (const role of ROLES) {
    const v = view.vehicles[role];
    const plate = str(v.vehicle?.plate);
    push('plate', plate && compact(plate), role);
    const licence = str(v.driver?.licenceNumber);
    push('licence', licence && compact(licence), role);
    const signer = view.signers[role];
    push('device_key', signer.publicKey ?? (signer.deviceId && `device:${signer.deviceId}`), role);
    for (const phone of [str(v.policyholder?.phone)])
      push('phone', phone && normalisePhone(phone), role);
    const policy = str(v.insurer?.policyNumber);
    const company = str(v.insurer?.company) ?? '?';
    push('policy', policy && `${company}:${compact(policy)}`, role);
  }
  const a = partyKey(view, 'A');
  const b = partyKey(view, 'B');
  if (a && b && a !== b) push('pair', [a, b].sort().join('|'), null);
  const gps = gpsOf(view.accident.place?.gps);
  if (gps) push('place', placeCell(gps.lat, gps.lon, cellDegrees), null);
  // One row per kind and value: the same phone on both sides is one fact.
  const seen = new Set<string>();
  return out.filter((f) => {
    const key = `${f.kind}\u0000${f.value}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
