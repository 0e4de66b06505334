/**
 * Standard Webhooks signatures (https://www.standardwebhooks.com, spec v1), in both directions:
 * core signs what it POSTs to an insurer, and checks what an insurer POSTs to core. Pure.
 *
 * - `webhook-id`: the message id, the same on every retry (core uses the CloudEvents id).
 * - `webhook-timestamp`: seconds since the epoch, at the attempt.
 * - `webhook-signature`: space-separated `v1,<base64 HMAC-SHA256(key, "id.timestamp.body")>`,
 *   one per active secret: during a rotation old and new secrets both sign.
 * - A secret is `whsec_` followed by the base64 of the key bytes (24 random bytes here).
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export const SECRET_PREFIX = 'whsec_';
/** How far a request's timestamp may be from our clock (replay window), per the spec's advice. */
export const TIMESTAMP_TOLERANCE_S = 5 * 60;

/** A secret and when it stops being used (null: current). Stored newest first. */
export interface SecretEntry {
  secret: string;
  expiresAt: string | null;
}

export interface SignatureHeaders {
  'webhook-id': string;
  'webhook-timestamp': string;
  'webhook-signature': string;
}

export function newWebhookSecret(): string {
  return SECRET_PREFIX + randomBytes(24).toString('base64');
}

export function isWebhookSecret(value: string): boolean {
  if (!value.startsWith(SECRET_PREFIX)) return false;
  const body = value.slice(SECRET_PREFIX.length);
  return /^[A-Za-z0-9+/]+={0,2}$/.test(body) && Buffer.from(body, 'base64').length >= 16;
}

function key(secret: string): Buffer {
  if (!isWebhookSecret(secret)) throw new Error('not a whsec_ secret');
  return Buffer.from(secret.slice(SECRET_PREFIX.length), 'base64');
}

function sign(secret: string, id: string, timestamp: string, body: string): Buffer {
  return createHmac('sha256', key(secret)).update(`${id}.${timestamp}.${body}`).digest();
}

/** The secrets still in use at `now`, newest first. */
export function activeSecrets(entries: readonly SecretEntry[], now = Date.now()): string[] {
  return entries
    .filter((e) => e.expiresAt === null || Date.parse(e.expiresAt) > now)
    .map((e) => e.secret);
}

/**
 * A rotation: the new secret first; the current ones keep signing until `overlapMs` from now;
 * secrets already expired are dropped.
 */
export function rotateSecrets(
  entries: readonly SecretEntry[],
  overlapMs: number,
  now = Date.now(),
): SecretEntry[] {
  const until = new Date(now + overlapMs).toISOString();
  return [
    { secret: newWebhookSecret(), expiresAt: null },
    ...entries
      .filter((e) => e.expiresAt === null || Date.parse(e.expiresAt) > now)
      .map((e) => ({ secret: e.secret, expiresAt: e.expiresAt ?? until })),
  ];
}

export function signatureHeaders(
  secrets: readonly string[],
  id: string,
  body: string,
  nowMs = Date.now(),
): SignatureHeaders {
  if (secrets.length === 0) throw new Error('no secret to sign with');
  const timestamp = String(Math.floor(nowMs / 1000));
  return {
    'webhook-id': id,
    'webhook-timestamp': timestamp,
    'webhook-signature': secrets
      .map((s) => `v1,${sign(s, id, timestamp, body).toString('base64')}`)
      .join(' '),
  };
}

export type Verification =
  | { ok: true; id: string }
  | { ok: false; reason: 'missing-headers' | 'stale-timestamp' | 'bad-signature'; error: string };

/**
 * Checks a request's signature against any of `secrets`. `headers` reads a header by its
 * lower-case name. Constant-time comparison; a timestamp outside the tolerance is refused
 * before any HMAC is computed.
 */
export function verifySignature(
  secrets: readonly string[],
  headers: (name: string) => string | undefined,
  body: string,
  nowMs = Date.now(),
): Verification {
  const id = headers('webhook-id');
  const timestamp = headers('webhook-timestamp');
  const signature = headers('webhook-signature');
  if (!id || !timestamp || !signature) {
    return {
      ok: false,
      reason: 'missing-headers',
      error: 'webhook-id, webhook-timestamp and webhook-signature are required',
    };
  }
  if (!/^\d{1,12}$/.test(timestamp)) {
    return { ok: false, reason: 'stale-timestamp', error: 'webhook-timestamp is not a number' };
  }
  if (Math.abs(nowMs / 1000 - Number(timestamp)) > TIMESTAMP_TOLERANCE_S) {
    return {
      ok: false,
      reason: 'stale-timestamp',
      error: `webhook-timestamp is more than ${TIMESTAMP_TOLERANCE_S} s away from the server's clock`,
    };
  }
  const given = signature
    .split(' ')
    .filter((s) => s.startsWith('v1,'))
    .map((s) => Buffer.from(s.slice(3), 'base64'));
  for (const secret of secrets) {
    const expected = sign(secret, id, timestamp, body);
    if (given.some((g) => g.length === expected.length && timingSafeEqual(g, expected))) {
      return { ok: true, id };
    }
  }
  return { ok: false, reason: 'bad-signature', error: 'no v1 signature matches' };
}
