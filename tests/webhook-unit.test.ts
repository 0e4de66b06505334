/**
 * The webhook channel's pure parts: Standard Webhooks signing checked against the reference
 * library both ways, key rotation (old and new secrets both sign until the overlap ends),
 * the timestamp window, and the retry schedule (jitter bounds, Retry-After, dead letter).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Webhook } from 'standardwebhooks';
import {
  activeSecrets,
  isWebhookSecret,
  newWebhookSecret,
  rotateSecrets,
  signatureHeaders,
  verifySignature,
} from '../integrations/webhook-signature.js';
import {
  classifyStatus,
  DEFAULT_RETRY_SCHEDULE_MS,
  nextAttemptDelay,
  parseRetryAfter,
  parseSchedule,
} from '../integrations/webhook-retry.js';

const header = (h: Record<string, string>) => (name: string) => h[name];

test('what core signs verifies with the reference library, and the reverse', () => {
  const secret = newWebhookSecret();
  assert.ok(isWebhookSecret(secret));
  const body = JSON.stringify({ id: 'e1', hello: 'سلام' });
  const headers = signatureHeaders([secret], 'e1', body);
  assert.not.throws(() => new Webhook(secret).verify(body, { ...headers }));
  assert.throws(() => new Webhook(secret).verify(body + ' ', { ...headers }));
  const now = new Date();
  const theirs = {
    'webhook-id': 'msg_1',
    'webhook-timestamp': String(Math.floor(now.getTime() / 1000)),
    'webhook-signature': new Webhook(secret).sign('msg_1', now, body),
  };
  assert.equal(verifySignature([secret], header(theirs), body), { ok: true, id: 'msg_1' });
  const other = verifySignature([newWebhookSecret()], header(theirs), body);
  assert.is(other.ok, false);
});

test('during a rotation both secrets sign; after the overlap only the new one', () => {
  const old = [{ secret: newWebhookSecret(), expiresAt: null }];
  const t0 = Date.parse('2026-01-01T00:00:00Z');
  const rotated = rotateSecrets(old, 3600_000, t0);
  assert.is(rotated.length, 2);
  assert.is(rotated[1]!.secret, old[0]!.secret);
  const during = activeSecrets(rotated, t0 + 1000);
  assert.is(during.length, 2);
  const headers = signatureHeaders(during, 'e2', 'x', t0);
  assert.is(headers['webhook-signature'].split(' ').length, 2);
  // A receiver that still has only the old secret accepts it.
  assert.equal(verifySignature([old[0]!.secret], header({ ...headers }), 'x', t0).ok, true);
  assert.equal(activeSecrets(rotated, t0 + 3600_001), [rotated[0]!.secret]);
  // A second rotation drops what has expired.
  assert.is(rotateSecrets(rotated, 1000, t0 + 7200_000).length, 2);
});

test('a stale timestamp or missing header is refused before any HMAC', () => {
  const secret = newWebhookSecret();
  const t0 = Date.now();
  const headers = signatureHeaders([secret], 'e3', 'b', t0 - 10 * 60_000);
  const stale = verifySignature([secret], header({ ...headers }), 'b', t0);
  assert.equal(stale.ok ? '' : stale.reason, 'stale-timestamp');
  const missing = verifySignature([secret], header({ 'webhook-id': 'e3' }), 'b', t0);
  assert.equal(missing.ok ? '' : missing.reason, 'missing-headers');
});

test('the retry schedule: jitter within ±10 %, Retry-After wins, then dead', () => {
  assert.is(DEFAULT_RETRY_SCHEDULE_MS.length, 8);
  assert.is(
    nextAttemptDelay(DEFAULT_RETRY_SCHEDULE_MS, 1, undefined, () => 0),
    4_500,
  );
  assert.is(
    nextAttemptDelay(DEFAULT_RETRY_SCHEDULE_MS, 1, undefined, () => 1),
    5_500,
  );
  assert.is(nextAttemptDelay(DEFAULT_RETRY_SCHEDULE_MS, 2, 1234), 1234);
  assert.is(nextAttemptDelay(DEFAULT_RETRY_SCHEDULE_MS, 8), null);
  assert.equal(parseSchedule('0, 500ms, 5s,5m,2h'), [0, 500, 5000, 300_000, 7_200_000]);
  assert.throws(() => parseSchedule('5x'));
});

test('statuses: 2xx delivered, 410 gone, Retry-After on 429/503 only, capped', () => {
  assert.equal(classifyStatus(204, undefined, 1000), { kind: 'delivered', status: 204 });
  assert.equal(classifyStatus(410, undefined, 1000), { kind: 'gone', status: 410 });
  assert.equal(classifyStatus(429, '120', 60_000), {
    kind: 'failed',
    status: 429,
    error: 'HTTP 429',
    retryAfterMs: 60_000,
  });
  assert.is(
    (classifyStatus(500, '5', 60_000) as { retryAfterMs?: number }).retryAfterMs,
    undefined,
  );
  assert.is(classifyStatus(301, undefined, 1).kind, 'failed');
  const now = Date.parse('2026-01-01T00:00:00Z');
  assert.is(parseRetryAfter('Thu, 01 Jan 2026 00:00:30 GMT', now), 30_000);
  assert.is(parseRetryAfter('soon', now), undefined);
});

test.run();
