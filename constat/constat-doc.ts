/**
 * The layout of a constat's Yjs document, and the only code that converts between it and
 * plain JSON.
 *
 * Every root is a Y.Map. Nested groups are nested Y.Maps so two phones editing different fields
 * of the same group merge field by field instead of one overwriting the other.
 *
 * meta (server-owned)
 *   formVersion     string        form version id ('dz', 'eu')
 *   sessionId       string
 *   createdAt       string        ISO 8601 timestamp
 *   clients         Y.Map         Yjs clientID (decimal string) -> 'A' | 'B' | 'server':
 *                                 which party owns each Yjs client id
 *
 * accident (A and B)
 *   date            string        'YYYY-MM-DD'
 *   time            string        'HH:MM'
 *   place           Y.Map
 *     country       string        ISO 3166 alpha-2, 'DZ' when absent
 *     wilaya        string        '01'..'58'
 *     commune       text
 *     address       text
 *     gps           plain object  { lat, lon, accuracyM }, absent when the phone has no fix
 *   injuries        boolean
 *   otherVehicleDamage boolean
 *   objectDamage    boolean
 *   witnesses       Y.Array of Y.Map { name: text, address: text, phone: string }, at most 4
 *   attachments     Y.Map         attachment id -> plain object { id, kind, contentType,
 *                                 byteSize, sha256, takenAt?, gps? }: scene photos, either party
 *
 * vehicleA (A only) / vehicleB (B only), same shape
 *   policyholder    Y.Map { lastName: text, firstName: text, address: text, phone, email }
 *   vehicle         Y.Map { make, model, plate, plateCountry ('DZ' when absent), trailerPlate }
 *   insurer         Y.Map { company (company uid), policyNumber, greenCardNumber,
 *                           validFrom, validTo ('YYYY-MM-DD'), agency: text,
 *                           coversOwnDamage: boolean }
 *   driver          Y.Map { lastName: text, firstName: text, birthDate, address: text,
 *                           licenceNumber, licenceCategory, licenceIssuedOn,
 *                           licenceIssuedBy: text, licenceValidUntil }
 *   comingFrom      text
 *   goingTo         text
 *   impactPoint     plain object  { x, y } in 0..1 on the vehicle outline, optional `side`
 *   visibleDamage   text
 *   circumstances   Y.Map         box id (string) -> true. Tick = set, untick = delete, so two
 *                                 phones ticking the same box at once converge on one tick
 *   circumstanceCount number      the declared number of ticked boxes
 *   remarks         text
 *   attachments     Y.Map         attachment id -> plain object (as in accident): this party's
 *                                 photos and papers (constat/attachments.ts, docs/media.md)
 *
 * sketch (A and B)
 *   elements        Y.Map         element id -> Y.Map { kind: 'road' | 'vehicle' | 'arrow' |
 *                                 'sign' | 'stroke' | 'label', vehicle?: 'A' | 'B', x, y,
 *                                 rotation?, text?: text, points?: Y.Array of numbers
 *                                 [x0, y0, x1, y1, ...] }
 *
 * signatures (server-owned)
 *   A | B           plain object  { hash, signature, deviceId, userId, signedAt }
 *
 * "text" fields may hold a Y.Text (character-level merging of concurrent typing) or a plain
 * string: phones choose, and materialisation accepts both, so the two give the same JSON.
 * "plain object" fields are written whole: a GPS fix or an impact point is one value, and
 * merging half of one fix with half of another would be meaningless.
 */
import * as Y from 'yjs';
import type { JsonObject, JsonValue } from './canonical-json.js';
import type { Owner, Role } from './permissions.js';
import { MAX_NESTING_DEPTH } from './nesting.js';
import { ConstatError } from './errors.js';

export const ROOTS = ['meta', 'accident', 'vehicleA', 'vehicleB', 'sketch', 'signatures'] as const;
export type RootName = (typeof ROOTS)[number];

/** The roots that make up the signed content; meta and signatures describe it, not are it. */
export const CONTENT_ROOTS = ['accident', 'vehicleA', 'vehicleB', 'sketch'] as const;
export type ContentRootName = (typeof CONTENT_ROOTS)[number];

export function isRootName(name: string): name is RootName {
  return (ROOTS as readonly string[]).includes(name);
}

/**
 * Materialised content, typed loosely on purpose: it comes from phones and nothing guarantees
 * its shape until validation. Use the section types below to read it once validated.
 */
export type ConstatContent = { [R in ContentRootName]: JsonObject };

// ---------------------------------------------------------------------------------------------
// The expected shape, for code that reads materialised content. Every field is optional because
// a document being filled is incomplete by nature.

export interface GpsFix {
  lat?: number;
  lon?: number;
  accuracyM?: number;
}

export interface Place {
  country?: string;
  wilaya?: string;
  commune?: string;
  address?: string;
  gps?: GpsFix;
}

export interface Witness {
  name?: string;
  address?: string;
  phone?: string;
}

export interface AccidentSection {
  date?: string;
  time?: string;
  place?: Place;
  injuries?: boolean;
  otherVehicleDamage?: boolean;
  objectDamage?: boolean;
  witnesses?: Witness[];
}

export interface Policyholder {
  lastName?: string;
  firstName?: string;
  address?: string;
  phone?: string;
  email?: string;
}

export interface VehicleIdentity {
  make?: string;
  model?: string;
  plate?: string;
  plateCountry?: string;
  trailerPlate?: string;
}

export interface InsurerDetails {
  company?: string;
  policyNumber?: string;
  greenCardNumber?: string;
  validFrom?: string;
  validTo?: string;
  agency?: string;
  coversOwnDamage?: boolean;
}

export interface Driver {
  lastName?: string;
  firstName?: string;
  birthDate?: string;
  address?: string;
  licenceNumber?: string;
  licenceCategory?: string;
  licenceIssuedOn?: string;
  licenceIssuedBy?: string;
  licenceValidUntil?: string;
}

export interface ImpactPoint {
  x?: number;
  y?: number;
  side?: string;
}

export interface VehicleSection {
  policyholder?: Policyholder;
  vehicle?: VehicleIdentity;
  insurer?: InsurerDetails;
  driver?: Driver;
  comingFrom?: string;
  goingTo?: string;
  impactPoint?: ImpactPoint;
  visibleDamage?: string;
  /** Box id -> true, as stored. */
  circumstances?: Record<string, true>;
  circumstanceCount?: number;
  remarks?: string;
}

export type SketchElementKind = 'road' | 'vehicle' | 'arrow' | 'sign' | 'stroke' | 'label';

export interface SketchElement {
  kind?: SketchElementKind;
  vehicle?: Role;
  x?: number;
  y?: number;
  rotation?: number;
  text?: string;
  /** Flat list of coordinates: [x0, y0, x1, y1, ...]. */
  points?: number[];
}

export interface Sketch {
  elements?: Record<string, SketchElement>;
}

// ---------------------------------------------------------------------------------------------
// Field kinds that writeSection must know about. Paths are dotted, relative to the root; `*`
// matches any one map key or array index. Everything not listed follows the generic mapping
// (object -> Y.Map, array -> Y.Array, scalar as is).

export interface RootFieldKinds {
  /** Strings stored as Y.Text. */
  readonly text: readonly string[];
  /** Objects stored as one plain value rather than as a Y.Map. */
  readonly atomic: readonly string[];
  /** Sets of ids stored as Y.Map id -> true. */
  readonly sets: readonly string[];
}

const VEHICLE_FIELDS: RootFieldKinds = {
  text: [
    'policyholder.lastName',
    'policyholder.firstName',
    'policyholder.address',
    'insurer.agency',
    'driver.lastName',
    'driver.firstName',
    'driver.address',
    'driver.licenceIssuedBy',
    'comingFrom',
    'goingTo',
    'visibleDamage',
    'remarks',
  ],
  atomic: ['impactPoint', 'attachments.*'],
  sets: ['circumstances'],
};

/**
 * Containers every document has from the start. Two devices that each create the same nested
 * map or text at once produce two concurrent values under one key, and Yjs keeps only one of
 * them, losing the other's edits. So the server creates the shared structure when the session
 * is opened, and devices only ever fill it.
 */
const VEHICLE_GROUPS = [
  'policyholder',
  'vehicle',
  'insurer',
  'driver',
  'circumstances',
  'attachments',
];
export const SKELETON: Readonly<
  Record<ContentRootName, { maps: readonly string[]; arrays: readonly string[] }>
> = {
  accident: { maps: ['place', 'attachments'], arrays: ['witnesses'] },
  vehicleA: { maps: VEHICLE_GROUPS, arrays: [] },
  vehicleB: { maps: VEHICLE_GROUPS, arrays: [] },
  sketch: { maps: ['elements'], arrays: [] },
};

export const FIELD_KINDS: Readonly<Record<RootName, RootFieldKinds>> = {
  meta: { text: [], atomic: [], sets: [] },
  accident: {
    text: ['place.commune', 'place.address', 'witnesses.*.name', 'witnesses.*.address'],
    atomic: ['place.gps', 'attachments.*'],
    sets: [],
  },
  vehicleA: VEHICLE_FIELDS,
  vehicleB: VEHICLE_FIELDS,
  sketch: { text: ['elements.*.text'], atomic: [], sets: [] },
  signatures: { text: [], atomic: ['*'], sets: [] },
};

export type FieldKind = 'text' | 'atomic' | 'set' | 'generic';

function matches(pattern: string, path: readonly string[]): boolean {
  const parts = pattern.split('.');
  return parts.length === path.length && parts.every((p, i) => p === '*' || p === path[i]);
}

export function fieldKind(root: RootName, path: readonly string[]): FieldKind {
  const kinds = FIELD_KINDS[root];
  if (kinds.sets.some((p) => matches(p, path))) return 'set';
  if (kinds.atomic.some((p) => matches(p, path))) return 'atomic';
  if (kinds.text.some((p) => matches(p, path))) return 'text';
  return 'generic';
}

// ---------------------------------------------------------------------------------------------
// Yjs -> JSON

export type YValue = unknown;

/**
 * Plain JSON of the content roots. Y.Text -> string, Y.Array -> array, Y.Map -> object.
 * Values that are not JSON (undefined, binary, sub-documents, bigint) are dropped from objects
 * and become null in arrays, and non-finite numbers become null, as JSON.stringify does, so
 * hostile content can never make hashing throw. Roots never written appear as `{}`.
 *
 * Iterative, with an explicit stack: the update gate caps nesting at MAX_NESTING_DEPTH, but a
 * document loaded from storage may predate the cap, and a recursive walk over a 20,000-deep
 * chain overflows the stack. Such a document gets a clear TOO_LARGE error instead.
 */
export function materialise(doc: Y.Doc): ConstatContent {
  return {
    accident: toJsonTree(doc.getMap<YValue>('accident')) as JsonObject,
    vehicleA: toJsonTree(doc.getMap<YValue>('vehicleA')) as JsonObject,
    vehicleB: toJsonTree(doc.getMap<YValue>('vehicleB')) as JsonObject,
    sketch: toJsonTree(doc.getMap<YValue>('sketch')) as JsonObject,
  };
}

/** A container being filled: its children still to convert, and what they became. */
interface Frame {
  /** Children as [key, value]; keys of arrays are unused. */
  readonly children: Array<[string, unknown]>;
  next: number;
  readonly array: boolean;
  readonly out: Array<[string, JsonValue]> | JsonValue[];
  readonly depth: number;
}

/** The children of a container value, or `undefined` for a leaf (converted by `leafToJson`). */
function containerOf(
  value: unknown,
): { array: boolean; children: Array<[string, unknown]> } | undefined {
  if (value instanceof Y.Map)
    return { array: false, children: [...(value as Y.Map<YValue>).entries()] };
  if (value instanceof Y.Array)
    return { array: true, children: (value.toArray() as YValue[]).map((v) => ['', v]) };
  if (value instanceof Y.Text || value instanceof Y.AbstractType) return undefined;
  if (Array.isArray(value)) return { array: true, children: value.map((v: unknown) => ['', v]) };
  if (value !== null && typeof value === 'object' && isPlainObject(value))
    return { array: false, children: Object.entries(value) };
  return undefined;
}

function leafToJson(value: unknown): JsonValue | undefined {
  if (value instanceof Y.Text) return value.toString();
  if (value instanceof Y.AbstractType) {
    // Other shared types (XML) have no place in the layout; Yjs's own toJSON recurses, so it is
    // only asked once the subtree is known to be shallow.
    if (typeDepthExceeds(value, MAX_NESTING_DEPTH)) throw tooDeep();
    return toJsonTree(value.toJSON() as unknown) ?? undefined;
  }
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number') return Number.isFinite(value) ? value : null;
  return undefined;
}

export function toJsonTree(value: unknown): JsonValue | undefined {
  const root = containerOf(value);
  if (!root) return leafToJson(value);
  const frame = (c: NonNullable<ReturnType<typeof containerOf>>, depth: number): Frame => ({
    ...c,
    next: 0,
    out: [],
    depth,
  });
  const stack: Frame[] = [frame(root, 0)];
  let done: JsonValue | undefined;
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    if (top.next < top.children.length) {
      const [key, child] = top.children[top.next++]!;
      const container = containerOf(child);
      if (container) {
        if (top.depth + 1 > MAX_NESTING_DEPTH) throw tooDeep();
        // The key travels with the frame: its result is added to the parent when it closes.
        const f = frame(container, top.depth + 1);
        (f as Frame & { key?: string }).key = key;
        stack.push(f);
      } else {
        addChild(top, key, leafToJson(child));
      }
      continue;
    }
    stack.pop();
    // fromEntries defines own properties, so a key such as "__proto__" stays data.
    const json: JsonValue = top.array
      ? (top.out as JsonValue[])
      : Object.fromEntries(top.out as Array<[string, JsonValue]>);
    const parent = stack[stack.length - 1];
    if (parent) addChild(parent, (top as Frame & { key?: string }).key ?? '', json);
    else done = json;
  }
  return done;
}

function addChild(frame: Frame, key: string, json: JsonValue | undefined): void {
  if (frame.array) (frame.out as JsonValue[]).push(json ?? null);
  else if (json !== undefined) (frame.out as Array<[string, JsonValue]>).push([key, json]);
}

/** Whether a shared type holds shared types nested more than `limit` deep (iterative). */
function typeDepthExceeds(type: Y.AbstractType<unknown>, limit: number): boolean {
  const stack: Array<[Y.AbstractType<unknown>, number]> = [[type, 0]];
  while (stack.length > 0) {
    const [t, depth] = stack.pop()!;
    if (depth > limit) return true;
    const items: Y.Item[] = [...t._map.values()];
    for (let item = t._start; item !== null; item = item.right) items.push(item);
    for (const item of items) {
      if (!item.deleted && item.content instanceof Y.ContentType)
        stack.push([item.content.type, depth + 1]);
    }
  }
  return false;
}

function tooDeep(): ConstatError {
  return new ConstatError(
    'TOO_LARGE',
    `the document nests deeper than ${MAX_NESTING_DEPTH} levels and cannot be hashed or signed`,
  );
}

function isPlainObject(value: object): boolean {
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

// ---------------------------------------------------------------------------------------------
// meta and signatures

export interface ConstatMeta {
  formVersion?: string;
  sessionId?: string;
  createdAt?: string;
  /** Yjs clientID (decimal string) -> owner. */
  clients: Record<string, Owner>;
}

export interface MetaInit {
  formVersion: string;
  sessionId: string;
  createdAt: string;
}

function isOwner(value: unknown): value is Owner {
  return value === 'A' || value === 'B' || value === 'server';
}

function optionalString(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

export function readMeta(doc: Y.Doc): ConstatMeta {
  const meta = doc.getMap<YValue>('meta');
  const clients: Record<string, Owner> = {};
  const clientMap = meta.get('clients');
  if (clientMap instanceof Y.Map) {
    for (const [id, owner] of (clientMap as Y.Map<YValue>).entries()) {
      if (isOwner(owner)) clients[id] = owner;
    }
  }
  const result: ConstatMeta = { clients };
  const formVersion = optionalString(meta.get('formVersion'));
  const sessionId = optionalString(meta.get('sessionId'));
  const createdAt = optionalString(meta.get('createdAt'));
  if (formVersion !== undefined) result.formVersion = formVersion;
  if (sessionId !== undefined) result.sessionId = sessionId;
  if (createdAt !== undefined) result.createdAt = createdAt;
  return result;
}

export function writeMeta(doc: Y.Doc, init: MetaInit, origin: unknown): void {
  doc.transact(() => {
    const meta = doc.getMap<YValue>('meta');
    meta.set('formVersion', init.formVersion);
    meta.set('sessionId', init.sessionId);
    meta.set('createdAt', init.createdAt);
    if (!(meta.get('clients') instanceof Y.Map)) meta.set('clients', new Y.Map<Owner>());
  }, origin);
}

/** The constat id, once the session is finalized (`meta.constatId`). */
export function readConstatId(doc: Y.Doc): string | undefined {
  return optionalString(doc.getMap<YValue>('meta').get('constatId'));
}

export function writeConstatId(doc: Y.Doc, constatId: string, origin: unknown): void {
  doc.transact(() => doc.getMap<YValue>('meta').set('constatId', constatId), origin);
}

/** How the session ended without a constat (`meta.ended`), if it did. */
export function readEnded(doc: Y.Doc): 'abandoned' | 'expired' | undefined {
  const ended = doc.getMap<YValue>('meta').get('ended') as { status?: unknown } | undefined;
  const status = ended?.status;
  return status === 'abandoned' || status === 'expired' ? status : undefined;
}

export function writeEnded(
  doc: Y.Doc,
  status: 'abandoned' | 'expired',
  at: string,
  origin: unknown,
): void {
  doc.transact(() => doc.getMap<YValue>('meta').set('ended', { status, at }), origin);
}

export interface SignatureRecord {
  /** Content hash (hex) the signature covers. */
  hash: string;
  /** Signature over the signing message, as sent by the device. */
  signature: string;
  deviceId: string;
  userId: string;
  /** The device's public key (base64) that verified the signature. */
  publicKey?: string;
  /** Key id (RFC 7638 thumbprint) of that key; absent on signatures made before keys had ids. */
  keyId?: string;
  /** ISO 8601 timestamp. */
  signedAt: string;
}

const SIGNATURE_FIELDS = ['hash', 'signature', 'deviceId', 'userId', 'signedAt'] as const;

function asSignatureRecord(value: unknown): SignatureRecord | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const record = value as Record<string, unknown>;
  if (!SIGNATURE_FIELDS.every((f) => typeof record[f] === 'string')) return undefined;
  return {
    hash: record['hash'] as string,
    signature: record['signature'] as string,
    deviceId: record['deviceId'] as string,
    userId: record['userId'] as string,
    ...(typeof record['publicKey'] === 'string' ? { publicKey: record['publicKey'] } : {}),
    ...(typeof record['keyId'] === 'string' ? { keyId: record['keyId'] } : {}),
    signedAt: record['signedAt'] as string,
  };
}

/** Signatures present in the document; malformed entries are ignored rather than trusted. */
export function readSignatures(doc: Y.Doc): Partial<Record<Role, SignatureRecord>> {
  const signatures = doc.getMap<YValue>('signatures');
  const result: Partial<Record<Role, SignatureRecord>> = {};
  for (const role of ['A', 'B'] as const) {
    const record = asSignatureRecord(signatures.get(role));
    if (record) result[role] = record;
  }
  return result;
}

export function writeSignature(
  doc: Y.Doc,
  role: Role,
  record: SignatureRecord,
  origin: unknown,
): void {
  doc.transact(() => {
    doc.getMap<YValue>('signatures').set(role, { ...record });
  }, origin);
}

/** Deletes the signatures of `roles` (they no longer cover the content), in one transaction. */
export function clearSignatures(doc: Y.Doc, roles: readonly Role[], origin: unknown): void {
  doc.transact(() => {
    for (const role of roles) doc.getMap<YValue>('signatures').delete(role);
  }, origin);
}

// ---------------------------------------------------------------------------------------------
// The skeleton

/** Creates the skeleton (see SKELETON) and every fixed text field, in one transaction. */
export function createSkeleton(doc: Y.Doc, origin: unknown): void {
  doc.transact(() => {
    for (const root of CONTENT_ROOTS) {
      const map = doc.getMap<YValue>(root);
      for (const key of SKELETON[root].maps)
        if (!(map.get(key) instanceof Y.Map)) map.set(key, new Y.Map());
      for (const key of SKELETON[root].arrays)
        if (!(map.get(key) instanceof Y.Array)) map.set(key, new Y.Array());
      for (const path of FIELD_KINDS[root].text) {
        if (!path.includes('*')) ensureText(map, path.split('.'));
      }
    }
  }, origin);
}

/** The Y.Text at `path` under a root map, created (with the maps on the way) when missing. */
export function ensureText(rootMap: Y.Map<YValue>, path: readonly string[]): Y.Text {
  let container: Y.Map<YValue> | Y.Array<YValue> = rootMap;
  for (let i = 0; i < path.length; i++) {
    const key = path[i] as string;
    const last = i === path.length - 1;
    if (container instanceof Y.Array) {
      const item: YValue = container.get(Number(key));
      if (last && item instanceof Y.Text) return item;
      if (!last && (item instanceof Y.Map || item instanceof Y.Array)) {
        container = item as Y.Map<YValue> | Y.Array<YValue>;
        continue;
      }
      throw new TypeError(
        `typeText: no ${last ? 'text' : 'container'} at ${path.slice(0, i + 1).join('.')}`,
      );
    }
    const existing = container.get(key);
    if (last) {
      if (existing instanceof Y.Text) return existing;
      const created = new Y.Text();
      container.set(key, created);
      if (typeof existing === 'string') created.insert(0, existing);
      return created;
    }
    if (existing instanceof Y.Map || existing instanceof Y.Array) {
      container = existing as Y.Map<YValue> | Y.Array<YValue>;
    } else {
      const created = new Y.Map<YValue>();
      container.set(key, created);
      container = created;
    }
  }
  throw new TypeError('typeText: unreachable');
}
