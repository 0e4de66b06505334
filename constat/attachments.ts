/**
 * Attachment entries in the document: `vehicleA.attachments`, `vehicleB.attachments` and
 * `accident.attachments` are Y.Maps of attachment id -> plain object
 * `{ id, kind, contentType, byteSize, sha256, takenAt?, gps? }`. Pure: reads materialised
 * content, reports shape problems as field errors. Whether the file exists and matches is
 * checked elsewhere (media/attachment-service.ts), against the store.
 */
import type { JsonObject, JsonValue } from './canonical-json.js';
import type { ConstatContent } from './constat-doc.js';
import type { Role } from './permissions.js';

export const ATTACHMENT_KINDS = [
  'damage',
  'scene',
  'licence',
  'registration',
  'insurance_certificate',
  'other',
] as const;
export type AttachmentKind = (typeof ATTACHMENT_KINDS)[number];

/** Types the server can recognise from the bytes (media/sniff.ts). */
export const ATTACHMENT_TYPES = [
  'image/jpeg',
  'image/png',
  'image/heic',
  'image/heif',
  'image/webp',
  'application/pdf',
] as const;
export type AttachmentType = (typeof ATTACHMENT_TYPES)[number];

export const ATTACHMENT_SECTIONS = ['accident', 'vehicleA', 'vehicleB'] as const;
export type AttachmentSection = (typeof ATTACHMENT_SECTIONS)[number];

/** The party whose section it is; the shared accident section has none. */
export function sectionOwner(section: AttachmentSection): Role | undefined {
  return section === 'vehicleA' ? 'A' : section === 'vehicleB' ? 'B' : undefined;
}

export interface AttachmentEntry {
  section: AttachmentSection;
  id: string;
  kind: string;
  contentType: string;
  byteSize: number;
  sha256: string;
  takenAt?: string;
  gps?: { lat: number; lon: number };
}

export interface AttachmentProblem {
  path: string;
  code: 'invalid_format' | 'unknown_value' | 'out_of_range';
  message: string;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const SHA256 = /^[0-9a-f]{64}$/;

export function isAttachmentKind(value: string): value is AttachmentKind {
  return (ATTACHMENT_KINDS as readonly string[]).includes(value);
}

export function isAttachmentType(value: string): value is AttachmentType {
  return (ATTACHMENT_TYPES as readonly string[]).includes(value);
}

function isObject(value: JsonValue | undefined): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Every attachment entry of the content, with the problems of the ones whose shape is wrong
 * (those are left out of `entries`). `maxBytes` bounds the declared size.
 */
export function readAttachments(
  content: ConstatContent,
  maxBytes: number,
): { entries: AttachmentEntry[]; problems: AttachmentProblem[] } {
  const entries: AttachmentEntry[] = [];
  const problems: AttachmentProblem[] = [];
  for (const section of ATTACHMENT_SECTIONS) {
    const map = content[section]?.attachments;
    if (map === undefined || map === null) continue;
    const base = `${section}.attachments`;
    if (!isObject(map)) {
      problems.push({
        path: base,
        code: 'invalid_format',
        message: 'must be a map of attachments',
      });
      continue;
    }
    for (const [key, value] of Object.entries(map)) {
      const path = `${base}.${key}`;
      const problem = entryProblem(key, value, maxBytes);
      if (problem) {
        problems.push({ path: `${path}${problem.field ? `.${problem.field}` : ''}`, ...problem.p });
        continue;
      }
      const v = value as JsonObject;
      const entry: AttachmentEntry = {
        section,
        id: key,
        kind: v.kind as string,
        contentType: v.contentType as string,
        byteSize: v.byteSize as number,
        sha256: v.sha256 as string,
      };
      if (typeof v.takenAt === 'string') entry.takenAt = v.takenAt;
      const gps = v.gps;
      if (isObject(gps) && typeof gps.lat === 'number' && typeof gps.lon === 'number') {
        entry.gps = { lat: gps.lat, lon: gps.lon };
      }
      entries.push(entry);
    }
  }
  return { entries, problems };
}

function entryProblem(
  key: string,
  value: JsonValue,
  maxBytes: number,
): { field?: string; p: Omit<AttachmentProblem, 'path'> } | undefined {
  const bad = (
    field: string | undefined,
    message: string,
    code: AttachmentProblem['code'] = 'invalid_format',
  ) => ({
    ...(field ? { field } : {}),
    p: { code, message },
  });
  if (!UUID.test(key)) return bad(undefined, 'the key must be the attachment id of an upload slot');
  if (!isObject(value))
    return bad(undefined, 'must be an object { id, kind, contentType, byteSize, sha256 }');
  if (value.id !== key) return bad('id', 'must equal the key it is stored under');
  if (typeof value.kind !== 'string' || !isAttachmentKind(value.kind)) {
    return bad('kind', `must be one of ${ATTACHMENT_KINDS.join(', ')}`, 'unknown_value');
  }
  if (typeof value.contentType !== 'string' || !isAttachmentType(value.contentType)) {
    return bad('contentType', `must be one of ${ATTACHMENT_TYPES.join(', ')}`, 'unknown_value');
  }
  if (
    typeof value.byteSize !== 'number' ||
    !Number.isSafeInteger(value.byteSize) ||
    value.byteSize < 1
  ) {
    return bad('byteSize', 'must be a positive integer');
  }
  if (value.byteSize > maxBytes)
    return bad('byteSize', `must be at most ${maxBytes} bytes`, 'out_of_range');
  if (typeof value.sha256 !== 'string' || !SHA256.test(value.sha256)) {
    return bad('sha256', 'must be 64 lowercase hex digits');
  }
  if (
    value.takenAt !== undefined &&
    (typeof value.takenAt !== 'string' || Number.isNaN(Date.parse(value.takenAt)))
  ) {
    return bad('takenAt', 'must be an ISO 8601 date-time');
  }
  if (value.gps !== undefined) {
    const g = value.gps;
    if (
      !isObject(g) ||
      typeof g.lat !== 'number' ||
      typeof g.lon !== 'number' ||
      Math.abs(g.lat) > 90 ||
      Math.abs(g.lon) > 180
    ) {
      return bad('gps', 'must be { lat, lon } in degrees');
    }
  }
  return undefined;
}
