/**
 * What a consumer does when handling a message throws. While the database does not answer,
 * that is an outage: the message waits and is tried again for as long as it takes. When the
 * database answers and the message still fails `maxAttempts` times, the message is at fault
 * (a value the database refuses, say): it is given up (to a dead-letter topic), so that one
 * message never stalls its partition. Used by core's consumer and the AI service.
 */
import type { Sleeper } from './poll-loop.js';

export const MAX_ATTEMPTS = 3;

export interface AttemptsOptions {
  /** Handles the message; throws when it failed. */
  handle: () => Promise<void>;
  /** Called once the message is given up, with the last error. */
  giveUp: (error: string) => Promise<void>;
  databaseUp: () => Promise<boolean>;
  /** Closing it ends the waits; the message is then left for the next member (rethrown). */
  sleeper: Sleeper;
  /** Keeps the group membership while waiting. */
  heartbeat: () => Promise<void>;
  onRetry: (error: string, attempt: number, retryInMs: number) => void;
  maxAttempts?: number;
}

export async function handleWithAttempts(opts: AttemptsOptions): Promise<void> {
  const max = opts.maxAttempts ?? MAX_ATTEMPTS;
  for (let attempt = 1; ; attempt++) {
    try {
      await opts.handle();
      return;
    } catch (err) {
      if (opts.sleeper.closed) throw err;
      const error = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
      if (attempt >= max && (await opts.databaseUp().catch(() => false))) {
        await opts.giveUp(error);
        return;
      }
      const wait = Math.min(500 * 2 ** Math.min(attempt, 6), 30_000);
      opts.onRetry(error, attempt, wait);
      await opts.sleeper.sleep(wait);
      await opts.heartbeat().catch(() => {});
    }
  }
}
