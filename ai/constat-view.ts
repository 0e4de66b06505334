/**
 * What the AI functions read of a finalized constat: the signed content of a
 * `dz.constat.finalized.v1` event, as typed, defensive accessors. Every field may be missing or
 * of the wrong type (the content is what two phones wrote); readers get `undefined`, never a
 * throw.
 */
import type { ConstatFinalizedData } from '../integrations/events.js';
import type { AccidentSection, GpsFix, VehicleSection, Witness } from '../constat/constat-doc.js';
import type { Role } from '../constat/permissions.js';

export type { Role };
export const ROLES: readonly Role[] = ['A', 'B'];

/** One attachment entry as the device writes it into its section (docs/media.md). */
export interface AttachmentEntry {
  id: string;
  kind?: string;
  takenAt?: string;
  gps?: { lat: number; lon: number };
}

export interface ConstatView {
  constatId: string;
  formVersion: string;
  finalizedAt: Date;
  /** When the later of the two signatures was given (the declaration). */
  signedAt: Date;
  accident: AccidentSection;
  vehicles: Record<Role, VehicleSection>;
  /** Device ids and raw public keys of each role's signature. */
  signers: Record<Role, { deviceId?: string; publicKey?: string; userId?: string }>;
  attachments: Record<Role, AttachmentEntry[]>;
  sceneAttachments: AttachmentEntry[];
}

type Json = Record<string, unknown>;
const obj = (v: unknown): Json =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : {};
export const str = (v: unknown): string | undefined =>
  typeof v === 'string' && v.trim() !== '' ? v.trim() : undefined;
export const num = (v: unknown): number | undefined =>
  typeof v === 'number' && Number.isFinite(v) ? v : undefined;

function date(v: unknown, fallback: Date): Date {
  const d = typeof v === 'string' ? new Date(v) : undefined;
  return d && !Number.isNaN(d.getTime()) ? d : fallback;
}

export function gpsOf(v: unknown): { lat: number; lon: number } | undefined {
  const g = obj(v) as GpsFix;
  const lat = num(g.lat);
  const lon = num(g.lon);
  if (lat === undefined || lon === undefined) return undefined;
  if (Math.abs(lat) > 90 || Math.abs(lon) > 180) return undefined;
  return { lat, lon };
}

function attachmentsOf(section: Json): AttachmentEntry[] {
  return Object.entries(obj(section.attachments)).flatMap(([id, raw]) => {
    const a = obj(raw);
    const gps = gpsOf(a.gps);
    return [
      {
        id,
        ...(str(a.kind) ? { kind: str(a.kind)! } : {}),
        ...(str(a.takenAt) ? { takenAt: str(a.takenAt)! } : {}),
        ...(gps ? { gps } : {}),
      },
    ];
  });
}

export function viewOf(data: ConstatFinalizedData): ConstatView {
  const content = obj(data.content);
  const finalizedAt = date(data.finalizedAt, new Date(0));
  const signatures = Array.isArray(data.signatures) ? data.signatures : [];
  const signers = { A: {}, B: {} } as ConstatView['signers'];
  let signedAt = new Date(0);
  for (const s of signatures) {
    const sig = obj(s);
    const role = sig.role === 'A' || sig.role === 'B' ? sig.role : undefined;
    if (!role) continue;
    signers[role] = {
      ...(str(sig.deviceId) ? { deviceId: str(sig.deviceId)! } : {}),
      ...(str(sig.publicKey) ? { publicKey: str(sig.publicKey)! } : {}),
      ...(str(sig.userId) ? { userId: str(sig.userId)! } : {}),
    };
    const at = date(sig.signedAt, finalizedAt);
    if (at > signedAt) signedAt = at;
  }
  if (signedAt.getTime() === 0) signedAt = finalizedAt;
  const accident = obj(content.accident);
  const vehicleA = obj(content.vehicleA);
  const vehicleB = obj(content.vehicleB);
  return {
    constatId: data.constatId,
    formVersion: str(data.formVersion) ?? 'dz',
    finalizedAt,
    signedAt,
    accident: accident as AccidentSection,
    vehicles: { A: vehicleA as VehicleSection, B: vehicleB as VehicleSection },
    signers,
    attachments: { A: attachmentsOf(vehicleA), B: attachmentsOf(vehicleB) },
    sceneAttachments: attachmentsOf(accident),
  };
}

/** The declared accident moment (UTC, as the form holds local wall time without a zone). */
export function accidentTime(view: ConstatView): Date | undefined {
  const day = str(view.accident.date);
  if (!day || !/^\d{4}-\d{2}-\d{2}$/.test(day)) return undefined;
  const time = str(view.accident.time);
  const hm = time && /^\d{2}:\d{2}$/.test(time) ? time : '12:00';
  const d = new Date(`${day}T${hm}:00Z`);
  return Number.isNaN(d.getTime()) ? undefined : d;
}

export function witnessesOf(view: ConstatView): Witness[] {
  return Array.isArray(view.accident.witnesses)
    ? view.accident.witnesses.filter((w) => typeof w === 'object' && w !== null)
    : [];
}

export function ticked(section: VehicleSection): Set<string> {
  return new Set(
    Object.entries(obj(section.circumstances))
      .filter(([, v]) => v === true)
      .map(([k]) => k),
  );
}

/** Great-circle distance in km (haversine). */
export function distanceKm(a: { lat: number; lon: number }, b: { lat: number; lon: number }) {
  const rad = Math.PI / 180;
  const dLat = (b.lat - a.lat) * rad;
  const dLon = (b.lon - a.lon) * rad;
  const h =
    Math.sin(dLat / 2) ** 2 +
    Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(dLon / 2) ** 2;
  return 2 * 6371 * Math.asin(Math.min(1, Math.sqrt(h)));
}
