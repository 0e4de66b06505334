/**
 * When a webhook delivery is tried again (pure). The schedule is the delay before each attempt,
 * the first one included (docs/integration.md): by default immediately, 5 s, 5 min, 30 min,
 * 2 h, 5 h, 10 h, 10 h — eight attempts over about 28 hours, then the delivery is dead-lettered.
 * Each delay gets ±10 % jitter so endpoints that failed together are not retried together.
 * A `Retry-After` on 429 or 503 replaces the scheduled delay (capped).
 */

export const DEFAULT_RETRY_SCHEDULE_MS: readonly number[] = [
  0,
  5_000,
  5 * 60_000,
  30 * 60_000,
  2 * 3600_000,
  5 * 3600_000,
  10 * 3600_000,
  10 * 3600_000,
];

const JITTER = 0.1;

/** What one attempt gave. */
export type AttemptResult =
  | { kind: 'delivered'; status: number }
  /** 410: the receiver says the endpoint is gone; it is disabled, the delivery waits. */
  | { kind: 'gone'; status: number }
  | { kind: 'failed'; status: number | null; error: string; retryAfterMs?: number };

/** Any 2xx is a delivery; 410 Gone disables; everything else (3xx included) is retried. */
export function classifyStatus(
  status: number,
  retryAfter: string | undefined,
  maxRetryAfterMs: number,
  now = Date.now(),
): AttemptResult {
  if (status >= 200 && status < 300) return { kind: 'delivered', status };
  if (status === 410) return { kind: 'gone', status };
  const result: AttemptResult = { kind: 'failed', status, error: `HTTP ${status}` };
  if (status === 429 || status === 503) {
    const wait = parseRetryAfter(retryAfter, now);
    if (wait !== undefined) result.retryAfterMs = Math.min(wait, maxRetryAfterMs);
  }
  return result;
}

/** `Retry-After` as delay-seconds or an HTTP date (RFC 9110 §10.2.3), in ms; undefined if unusable. */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const trimmed = value.trim();
  if (/^\d{1,9}$/.test(trimmed)) return Number(trimmed) * 1000;
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}

/**
 * The delay before the next attempt after `attemptsMade` attempts failed, or null when the
 * schedule is used up (dead letter). `retryAfterMs` (from the receiver) wins over the schedule.
 */
export function nextAttemptDelay(
  schedule: readonly number[],
  attemptsMade: number,
  retryAfterMs?: number,
  random: () => number = Math.random,
): number | null {
  if (attemptsMade >= schedule.length) return null;
  if (retryAfterMs !== undefined) return retryAfterMs;
  const base = schedule[attemptsMade]!;
  return Math.round(base * (1 + JITTER * (2 * random() - 1)));
}

/** Parses `WEBHOOK_RETRY_SCHEDULE`-style text: comma-separated delays, `500ms`, `5s`, `5m`, `2h`. */
export function parseSchedule(text: string): number[] {
  const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3600_000 };
  return text.split(',').map((part) => {
    const match = /^\s*(\d{1,9})(ms|s|m|h)?\s*$/.exec(part);
    if (!match) throw new Error(`"${part.trim()}" is not a delay (e.g. 0, 500ms, 5s, 5m, 2h)`);
    return Number(match[1]) * units[match[2] ?? 'ms']!;
  });
}
