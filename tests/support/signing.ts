/**
 * The signing suites' side of the phone: the client kit (client/) does what a phone does —
 * keys, GraphQL documents, one constat through the whole flow — and this file adds what only
 * tests need: the insurer's independent Ed25519 check (`verifySignature`, written from the
 * contract, deliberately not the kit's or the server's code), the two-device form filling from
 * the fixtures, and `finalizeConstat` on a test server.
 */
import { randomBytes, verify } from 'node:crypto';
import type { JsonObject } from '../../constat/canonical-json.js';
import { contentHash } from '../../constat/content-hash.js';
import { writeSection } from '../../client/writer.js';
import {
  finalizeFlow,
  registerKey as registerDeviceKey,
  waitForServerHash,
} from '../../client/flow.js';
import { canonicalJson } from '../../constat/canonical-json.js';
import { materialise } from '../../constat/constat-doc.js';
import type { Role as PartyRole } from '../../constat/permissions.js';
import { newDeviceKey as makeDeviceKey, signHash as signWithKey } from '../../client/keys.js';
import { completeAccident, completeSketch, completeVehicle } from '../fixtures/constat.js';
import { gql, openPair, type GraphQLResponse, type Pair } from './server.js';
import { connectBoth, connectDevice, waitFor, type Device } from './device.js';
import type { ServerProcess } from './server.js';

export type { Role } from '../../constat/permissions.js';
export {
  newDeviceKey,
  signHash,
  signText,
  signingMessage,
  type DeviceKey,
} from '../../client/keys.js';
export {
  ABANDON_SESSION,
  REGISTER_DEVICE,
  SESSION,
  SIGN_CONSTAT,
  errorCode,
  type SessionView,
} from '../../client/graphql.js';
import { SIGN_CONSTAT, type SessionView } from '../../client/graphql.js';
export { registerKey, sessionView } from '../../client/flow.js';

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

export function signConstat(
  url: string,
  bearer: string,
  sessionId: string,
  contentHash: string,
  signature: string,
): Promise<GraphQLResponse<{ signConstat: SessionView }>> {
  return gql(url, bearer, SIGN_CONSTAT, { sessionId, contentHash, signature });
}

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
 * One constat through the whole flow (client/flow.ts) on a test server: open + join, two
 * devices fill the form from the fixtures, both register a key and sign, A then B. Vehicle A
 * is insured by `saa`, B by `trust` unless `vehicleB` says otherwise.
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
    /** Runs once A has signed (to subscribe to changes first, say). */
    beforeSecondSignature?: (pair: { sessionId: string; tokenA: string }) => Promise<void>;
  } = {},
): Promise<Finalized> {
  const tag = randomBytes(4).toString('hex');
  const pair = await openPair(server.url, tag);
  const devices: Device[] = [];
  try {
    const { a, b } = await connectBoth(server, pair, devices);
    const ctx = { a, b, pair, sessionId: pair.sessionId, tokenA: pair.tokenA, tokenB: pair.tokenB };
    const { beforeSigning, beforeSecondSignature } = opts;
    const flow = await finalizeFlow(
      {
        sessionId: pair.sessionId,
        A: { url: server.url, token: pair.tokenA, phone: a },
        B: { url: server.url, token: pair.tokenB, phone: b },
      },
      {
        fill: () => fillConstat(a, b, sameHash, opts.vehicleB ? { vehicleB: opts.vehicleB } : {}),
        ...(beforeSigning ? { beforeSigning: () => beforeSigning(ctx) } : {}),
        ...(beforeSecondSignature
          ? { beforeSecondSignature: () => beforeSecondSignature(ctx) }
          : {}),
      },
    );
    return {
      constatId: flow.constatId,
      sessionId: pair.sessionId,
      tag,
      userA: `user-a-${tag}`,
      userB: `user-b-${tag}`,
      tokenA: pair.tokenA,
      tokenB: pair.tokenB,
      hash: flow.hash,
      secondSignAt: flow.secondSignAt,
      secondSignAnsweredAt: flow.secondSignAnsweredAt,
    };
  } finally {
    for (const d of devices) d.destroy();
  }
}

/** A session ready to sign: both devices connected and in sync, the form complete, both keys registered. */
export interface ReadyToSign {
  sessionId: string;
  tokens: Record<PartyRole, string>;
  devices: Record<PartyRole, Device>;
  /** The instance each party's device and calls go to. */
  on: Record<PartyRole, ServerProcess>;
  hash: string;
  signature: (role: PartyRole) => string;
}

/**
 * Opens a pair with A's device on `onA` and B's on `onB` (the devices go into `devices`, for
 * the suite to destroy), fills the form from both, waits until every instance of `servers`
 * holds the same content hash, and registers both keys.
 */
export async function prepareSigning(
  servers: readonly ServerProcess[],
  devices: Device[],
  onA: ServerProcess,
  onB: ServerProcess,
  hashTimeoutMs = 10_000,
): Promise<ReadyToSign> {
  const pair = await openPair(onA.url);
  const a = connectDevice(onA.wsUrl, pair.sessionId, pair.tokenA);
  const b = connectDevice(onB.wsUrl, pair.sessionId, pair.tokenB);
  devices.push(a, b);
  await Promise.all([a.synced(), b.synced()]);
  const content = (d: Device) => canonicalJson(materialise(d.doc));
  await fillConstat(a, b, (x, y) => content(x) === content(y));
  const hash = contentHash(a.doc);
  for (const server of servers) {
    await waitForServerHash(server.url, pair.tokenA, pair.sessionId, hash, hashTimeoutMs);
  }
  const keys = { A: makeDeviceKey(), B: makeDeviceKey() };
  const tokens = { A: pair.tokenA, B: pair.tokenB };
  await registerDeviceKey(onA.url, tokens.A, keys.A);
  await registerDeviceKey(onB.url, tokens.B, keys.B);
  return {
    sessionId: pair.sessionId,
    tokens,
    devices: { A: a, B: b },
    on: { A: onA, B: onB },
    hash,
    signature: (role) => signWithKey(keys[role], pair.sessionId, role, hash),
  };
}
