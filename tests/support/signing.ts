/**
 * What a phone does to sign a constat, written from the contract rather than taken from the
 * server: an Ed25519 key pair (node:crypto), its raw public key registered with
 * `registerDevice`, and a signature over the UTF-8 bytes of
 * `constat-sign:v1:<sessionId>:<role>:<hashHex>` sent with `signConstat`.
 * Also the GraphQL documents the signing suites share, the two-device form filling, and one
 * constat through the whole flow (`finalizeConstat`).
 */
import { generateKeyPairSync, randomBytes, sign, verify, type KeyObject } from 'node:crypto';
import { writeSection } from '../../constat/constat-doc.js';
import type { JsonObject } from '../../constat/canonical-json.js';
import { completeAccident, completeSketch, completeVehicle } from '../fixtures/constat.js';
import { contentHash } from '../../constat/content-hash.js';
import { gql, openPair, type GraphQLResponse, type Pair } from './server.js';
import { connectBoth, waitFor, type Device } from './device.js';

export type Role = 'A' | 'B';

export interface DeviceKey {
  publicKey: KeyObject;
  privateKey: KeyObject;
  /** The raw 32-byte public key, base64 (what registerDevice takes). */
  publicKeyBase64: string;
}

export function newDeviceKey(): DeviceKey {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const x = publicKey.export({ format: 'jwk' }).x!;
  return { publicKey, privateKey, publicKeyBase64: Buffer.from(x, 'base64url').toString('base64') };
}

/** The signed message, as the contract spells it. */
export function signingMessage(sessionId: string, role: Role, hashHex: string): string {
  return `constat-sign:v1:${sessionId}:${role}:${hashHex}`;
}

/** Ed25519 over the UTF-8 bytes of `message`, base64. */
export function signText(key: DeviceKey, message: string): string {
  return sign(null, Buffer.from(message, 'utf8'), key.privateKey).toString('base64');
}

export function signHash(key: DeviceKey, sessionId: string, role: Role, hashHex: string): string {
  return signText(key, signingMessage(sessionId, role, hashHex));
}

/** Verifies a stored signature against a raw base64 public key, as an insurer would. */
export function verifySignature(
  publicKeyBase64: string,
  message: string,
  signatureBase64: string,
): boolean {
  return verify(
    null,
    Buffer.from(message, 'utf8'),
    {
      key: {
        kty: 'OKP',
        crv: 'Ed25519',
        x: Buffer.from(publicKeyBase64, 'base64').toString('base64url'),
      },
      format: 'jwk',
    },
    Buffer.from(signatureBase64, 'base64'),
  );
}

export const REGISTER_DEVICE = `mutation Register($publicKey: String!) {
  registerDevice(publicKey: $publicKey) { userId deviceId publicKey registeredAt updatedAt }
}`;

const SESSION_FIELDS = `id status myRole constatId contentHash
  signatures { role hash signature userId deviceId signedAt }`;

export const SIGN_CONSTAT = `mutation Sign($sessionId: ID!, $contentHash: String!, $signature: String!) {
  signConstat(sessionId: $sessionId, contentHash: $contentHash, signature: $signature) { ${SESSION_FIELDS} }
}`;

export const SESSION = `query Session($id: ID!) { session(id: $id) { ${SESSION_FIELDS} } }`;

export const ABANDON_SESSION = `mutation Abandon($sessionId: ID!) {
  abandonSession(sessionId: $sessionId) { id status }
}`;

export interface SessionView {
  id: string;
  status: string;
  myRole: Role;
  constatId: string | null;
  contentHash: string;
  signatures: Array<{
    role: Role;
    hash: string;
    signature: string;
    userId: string;
    deviceId: string;
    signedAt: string;
  }>;
}

export async function registerKey(url: string, bearer: string, key: DeviceKey): Promise<void> {
  const res = await gql(url, bearer, REGISTER_DEVICE, { publicKey: key.publicKeyBase64 });
  if (res.errors) throw new Error(`registerDevice failed: ${JSON.stringify(res.errors)}`);
}

export function signConstat(
  url: string,
  bearer: string,
  sessionId: string,
  contentHash: string,
  signature: string,
): Promise<GraphQLResponse<{ signConstat: SessionView }>> {
  return gql(url, bearer, SIGN_CONSTAT, { sessionId, contentHash, signature });
}

export async function sessionView(
  url: string,
  bearer: string,
  id: string,
): Promise<SessionView | null> {
  const res = await gql<{ session: SessionView | null }>(url, bearer, SESSION, { id });
  if (res.errors) throw new Error(`session query failed: ${JSON.stringify(res.errors)}`);
  return res.data!.session;
}

export { errorCode } from '../../scripts/sim/graphql.js';

/**
 * Both phones fill the form: A its vehicle and most of the accident, B its vehicle, the
 * witnesses and the sketch. Resolves once both documents hold the same content.
 */
export async function fillConstat(
  a: Device,
  b: Device,
  sameContent: (a: Device, b: Device) => boolean,
  overrides: { vehicleA?: JsonObject; vehicleB?: JsonObject } = {},
): Promise<void> {
  const { witnesses, ...accident } = completeAccident();
  writeSection(a.doc, 'accident', accident);
  writeSection(a.doc, 'vehicleA', overrides.vehicleA ?? completeVehicle('A'));
  writeSection(b.doc, 'vehicleB', overrides.vehicleB ?? completeVehicle('B'));
  writeSection(b.doc, 'accident', { witnesses: witnesses! });
  writeSection(b.doc, 'sketch', completeSketch());
  await waitFor(() => sameContent(a, b), 10_000, 'the two devices did not converge');
}

/** Polls `fn` until it returns something other than undefined. */
export async function eventually<T>(
  fn: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 10_000,
  message = 'condition not met',
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${message}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// --- A constat through the whole flow ------------------------------------------------------

export interface Finalized {
  constatId: string;
  sessionId: string;
  tag: string;
  /** The parties' user ids (`user-a-<tag>`, `user-b-<tag>`) and their tokens. */
  userA: string;
  userB: string;
  tokenA: string;
  tokenB: string;
  hash: string;
  /** performance.now() just before the second signConstat request was sent. */
  secondSignAt: number;
  /** performance.now() when the second signConstat answered. */
  secondSignAnsweredAt: number;
}

const sameHash = (a: Device, b: Device) => contentHash(a.doc) === contentHash(b.doc);

/**
 * One constat through the whole flow: open + join, two devices fill the form, both register a
 * key and sign. Vehicle A is insured by `saa`, B by `trust` unless `vehicleB` says otherwise.
 * `beforeSigning` runs once the form is filled; `beforeSecondSignature` once A has signed (to subscribe to changes first, say).
 */
export async function finalizeConstat(
  server: { url: string; wsUrl: string },
  opts: {
    vehicleB?: JsonObject;
    /**
     * Runs once the form is filled, before either signature (to attach files or subscribe
     * first, say); what it changes in the documents is waited for before the hash is read.
     */
    beforeSigning?: (ctx: {
      a: Device;
      b: Device;
      pair: Pair;
      sessionId: string;
      tokenA: string;
      tokenB: string;
    }) => Promise<void>;
    beforeSecondSignature?: (pair: { sessionId: string; tokenA: string }) => Promise<void>;
  } = {},
): Promise<Finalized> {
  const tag = randomBytes(4).toString('hex');
  const pair = await openPair(server.url, tag);
  const devices: Device[] = [];
  try {
    const { a, b } = await connectBoth(server, pair, devices);
    await fillConstat(a, b, sameHash, opts.vehicleB ? { vehicleB: opts.vehicleB } : {});
    if (opts.beforeSigning) {
      await opts.beforeSigning({
        a,
        b,
        pair,
        sessionId: pair.sessionId,
        tokenA: pair.tokenA,
        tokenB: pair.tokenB,
      });
      await waitFor(() => sameHash(a, b), 10_000, 'the two devices did not converge');
    }
    const hash = contentHash(a.doc);
    const keys = { A: newDeviceKey(), B: newDeviceKey() };
    const tokens = { A: pair.tokenA, B: pair.tokenB };
    for (const role of ['A', 'B'] as const) await registerKey(server.url, tokens[role], keys[role]);
    const sign = async (role: Role) => {
      const res = await signConstat(
        server.url,
        tokens[role],
        pair.sessionId,
        hash,
        signHash(keys[role], pair.sessionId, role, hash),
      );
      if (res.errors) throw new Error(`signConstat ${role} failed: ${JSON.stringify(res.errors)}`);
      return res.data!.signConstat;
    };
    await sign('A');
    await opts.beforeSecondSignature?.({ sessionId: pair.sessionId, tokenA: pair.tokenA });
    const secondSignAt = performance.now();
    const second = await sign('B');
    const secondSignAnsweredAt = performance.now();
    const constatId =
      second.constatId ??
      (await eventually(
        async () =>
          (await sessionView(server.url, tokens.A, pair.sessionId))?.constatId ?? undefined,
        15_000,
        'the session never named its constat',
      ));
    return {
      constatId,
      sessionId: pair.sessionId,
      tag,
      userA: `user-a-${tag}`,
      userB: `user-b-${tag}`,
      tokenA: pair.tokenA,
      tokenB: pair.tokenB,
      hash,
      secondSignAt,
      secondSignAnsweredAt,
    };
  } finally {
    for (const d of devices) d.destroy();
  }
}
