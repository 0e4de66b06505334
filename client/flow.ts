/**
 * A constat through the whole flow, as two phones do it once their devices are connected:
 * fill the form, agree on one content hash, wait until the server's copy has it too, register
 * the keys, sign, and wait for `finalized`. The simulator, the finalization benchmark and the
 * tests all go through `finalizeFlow` (with their own hooks) or through the steps it is made
 * of, so the phone side of the contract is written once.
 *
 * Every wait is on a condition with a deadline (never a fixed sleep), and a failed step throws
 * a `StepError` naming it, so a caller can say where a pair stopped.
 */
import type * as Y from 'yjs';
import type { SessionEvent } from '../sync/protocol.js';
import { contentHash } from '../constat/content-hash.js';
import type { Role } from '../constat/permissions.js';
import { waitFor, sleep } from './device.js';
import { newDeviceKey, signHash, type DeviceKey } from './keys.js';
import {
  errorCode,
  gql,
  mustGql,
  REGISTER_DEVICE,
  SESSION,
  SIGN_CONSTAT,
  type GraphQLResponse,
  type SessionView,
} from './graphql.js';

/** A step of the flow that failed, and why. */
export class StepError extends Error {
  constructor(
    readonly step: string,
    reason: string,
  ) {
    super(reason);
  }
}

/**
 * What the flow needs of a phone: its document and the session events it was sent (a stock
 * y-websocket device, client/device.ts, or the benchmarks' light client).
 */
export interface Phone {
  readonly doc: Y.Doc;
  readonly events: ReadonlyArray<{ readonly type: string }>;
  /** How the server closed the phone's connections, if the phone keeps them (a device does). */
  readonly closes?: ReadonlyArray<{ readonly code: number }>;
}

/** The close code of a connection to a finalized session (server/close-codes.ts). */
const FINALIZED_CLOSE = 4409;

/** One party: the GraphQL endpoint it talks to (its instance), its token, its phone. */
export interface FlowParty {
  url: string;
  token: string;
  phone: Phone;
}

export interface FlowParties {
  sessionId: string;
  A: FlowParty;
  B: FlowParty;
}

export const ROLES = ['A', 'B'] as const;

export async function registerKey(
  url: string,
  token: string,
  key: DeviceKey = newDeviceKey(),
): Promise<DeviceKey> {
  await mustGql('registerDevice', url, token, REGISTER_DEVICE, { publicKey: key.publicKeyBase64 });
  return key;
}

/** The session as `token`'s party sees it (null: unknown to this party). */
export async function sessionView(
  url: string,
  token: string,
  sessionId: string,
): Promise<SessionView | null> {
  const data = await mustGql<{ session: SessionView | null }>('session', url, token, SESSION, {
    id: sessionId,
  });
  return data.session;
}

/** Resolves with the hash once both phones' documents hash the same. */
export async function waitForConverged(
  a: Phone,
  b: Phone,
  opts: { timeoutMs?: number; check?: () => void } = {},
): Promise<string> {
  await waitFor(
    () => (opts.check?.(), contentHash(a.doc) === contentHash(b.doc)),
    opts.timeoutMs ?? 30_000,
    'the two phones did not converge',
    20,
  );
  return contentHash(a.doc);
}

/** Resolves once the instance at `url` reports `hash` for its copy of the session. */
export async function waitForServerHash(
  url: string,
  token: string,
  sessionId: string,
  hash: string,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const view = await sessionView(url, token, sessionId);
    if (!view) throw new StepError('server copy', 'the server does not know the session');
    if (view.contentHash === hash) return;
    if (Date.now() > deadline) {
      throw new StepError('server copy', `the content hash of ${url} never matched the phones'`);
    }
    await sleep(50);
  }
}

/** One party's signConstat call over `hash`, signed with `key`. */
export function signConstat(
  party: { url: string; token: string },
  sessionId: string,
  role: Role,
  key: DeviceKey,
  hash: string,
): Promise<GraphQLResponse<{ signConstat: SessionView }>> {
  return gql(party.url, party.token, SIGN_CONSTAT, {
    sessionId,
    contentHash: hash,
    signature: signHash(key, sessionId, role, hash),
  });
}

/** The constat id of the `finalized` event a phone was sent, if any. */
export function finalizedConstatId(phone: Phone): string | undefined {
  const event = phone.events.find((e) => e.type === 'finalized') as
    Partial<Extract<SessionEvent, { type: 'finalized' }>> | undefined;
  return typeof event?.constatId === 'string' ? event.constatId : undefined;
}

/**
 * Resolves with the constat id once every phone was told `finalized` (the same id). A phone
 * whose connection dropped (its instance restarted, say) and came back once the session was
 * finalized is refused with 4409 instead of being sent the event: it was told too, and the id
 * is the other phone's.
 */
export async function waitForFinalized(
  phones: readonly Phone[],
  opts: { timeoutMs?: number; check?: () => void; pollMs?: number } = {},
): Promise<string> {
  const told = (p: Phone) =>
    finalizedConstatId(p) !== undefined || !!p.closes?.some((c) => c.code === FINALIZED_CLOSE);
  await waitFor(
    () => (opts.check?.(), phones.every(told)),
    opts.timeoutMs ?? 30_000,
    'no finalized event',
    opts.pollMs ?? 20,
  );
  const ids = new Set(phones.flatMap((p) => finalizedConstatId(p) ?? []));
  if (ids.size === 0) throw new StepError('finalize', 'no phone was told the constat id');
  if (ids.size !== 1) throw new StepError('finalize', 'the phones were told different constat ids');
  return [...ids][0]!;
}

export interface FlowHooks {
  /** Writes the form into the phones' documents (the flow does not know what to write). */
  fill(parties: FlowParties): Promise<void>;
  /**
   * Runs once the form is filled and both copies agree, before any key or signature (to attach
   * files or subscribe first, say); what it changes is waited for before the hash is read.
   */
  beforeSigning?(parties: FlowParties): Promise<void>;
  /** Runs once A has signed, before B does (sequential signing only). */
  beforeSecondSignature?(parties: FlowParties): Promise<void>;
  /** Called while waiting: throws to stop the flow (a phone closed for good, say). */
  check?(): void;
  /** Told as each step starts ('converge', 'server copy', 'register keys', 'sign', 'finalize'). */
  onStep?(step: string): void;
}

export interface FlowOptions {
  /** Keys already registered; without them, new keys are registered once the form is filled. */
  keys?: Record<Role, DeviceKey>;
  /** Both signatures at once instead of A then B. */
  concurrentSignatures?: boolean;
  /** Instances whose copy must reach the phones' hash before signing (default: A's). */
  serverUrls?: readonly string[];
  /** How long each wait may take (default 30 s). */
  timeoutMs?: number;
}

export interface FlowResult {
  constatId: string;
  hash: string;
  keys: Record<Role, DeviceKey>;
  /** performance.now() just before the first signConstat request was sent. */
  signStartedAt: number;
  /** performance.now() just before the second signConstat request was sent. */
  secondSignAt: number;
  /** performance.now() when the last signConstat answered. */
  secondSignAnsweredAt: number;
  /** performance.now() when both phones had been told `finalized`. */
  finalizedAt: number;
}

/** Fill, agree, sign, and wait for `finalized` on both phones. */
export async function finalizeFlow(
  parties: FlowParties,
  hooks: FlowHooks,
  options: FlowOptions = {},
): Promise<FlowResult> {
  const { sessionId } = parties;
  const timeoutMs = options.timeoutMs ?? 30_000;
  const phones = [parties.A.phone, parties.B.phone];
  const wait = { timeoutMs, ...(hooks.check ? { check: hooks.check } : {}) };
  const step = (name: string) => hooks.onStep?.(name);
  await hooks.fill(parties);
  step('converge');
  let hash = await waitForConverged(parties.A.phone, parties.B.phone, wait);
  if (hooks.beforeSigning) {
    await hooks.beforeSigning(parties);
    step('converge');
    hash = await waitForConverged(parties.A.phone, parties.B.phone, wait);
  }
  step('server copy');
  for (const url of options.serverUrls ?? [parties.A.url]) {
    await waitForServerHash(url, parties.A.token, sessionId, hash, timeoutMs);
  }
  let keys = options.keys;
  if (!keys) {
    step('register keys');
    const [A, B] = await Promise.all(
      ROLES.map((r) => registerKey(parties[r].url, parties[r].token)),
    );
    keys = { A: A!, B: B! };
  }
  const signingKeys = keys;
  const sign = async (role: Role) => {
    const res = await signConstat(parties[role], sessionId, role, signingKeys[role], hash);
    if (res.errors) {
      const why = `${errorCode(res) ?? 'error'} ${res.errors[0]?.message ?? ''}`.trim();
      throw new StepError('sign', `${role}: ${why}`);
    }
  };
  step('sign');
  const signStartedAt = performance.now();
  let secondSignAt = signStartedAt;
  if (options.concurrentSignatures) {
    await Promise.all(ROLES.map(sign));
  } else {
    await sign('A');
    await hooks.beforeSecondSignature?.(parties);
    secondSignAt = performance.now();
    await sign('B');
  }
  const secondSignAnsweredAt = performance.now();
  step('finalize');
  const constatId = await waitForFinalized(phones, wait);
  return {
    constatId,
    hash,
    keys,
    signStartedAt,
    secondSignAt,
    secondSignAnsweredAt,
    finalizedAt: performance.now(),
  };
}
