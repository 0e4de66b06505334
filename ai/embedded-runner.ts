/**
 * The AI pipeline without a broker (the embedded default): it reads the finalized events
 * straight from core's outbox, in commit order, and hands results to core's timeline through
 * the sink core gives it, the same path `ai-results` takes. Its read position is kept in the
 * AI's own tables after each event, and a replay is harmless (stored results, same ids). The
 * outbox rows themselves are left untouched: they are still published once a broker is
 * configured.
 */
import type { Logger } from 'pino';
import { deliver, type AiSinks } from './deliver.js';
import type { AiMetrics } from './metrics.js';
import type { AiPipeline } from './pipeline.js';
import type { AiStore } from './store.js';

export interface FeedRow {
  id: string;
  createdAt: Date;
  payload: unknown;
}

/** Core's finalized events, oldest first, after a position. */
export interface FinalizedFeed {
  read(after: { createdAt: Date; id: string } | undefined, limit: number): Promise<FeedRow[]>;
}

export interface EmbeddedRunnerOptions {
  feed: FinalizedFeed;
  sinks: Pick<AiSinks, 'results'>;
  pipeline: AiPipeline;
  store: AiStore;
  metrics: AiMetrics;
  logger: Logger;
  pollMs: number;
}

const FEED = 'outbox:constats';

export class EmbeddedRunner {
  readonly #opts: EmbeddedRunnerOptions;
  readonly #log: Logger;
  #running: Promise<void> | undefined;
  #closed = false;
  #wake: (() => void) | undefined;
  #failures = 0;

  constructor(opts: EmbeddedRunnerOptions) {
    this.#opts = opts;
    this.#log = opts.logger.child({ component: 'ai-embedded' });
  }

  start(): void {
    this.#running ??= this.#loop();
  }

  /** A constat was just finalized: look now rather than at the next poll. */
  wake(): void {
    this.#wake?.();
  }

  async #loop(): Promise<void> {
    const { store, metrics } = this.#opts;
    const sinks: AiSinks = {
      results: this.#opts.sinks.results,
      // No broker to send it to: kept in the AI's own table, and logged.
      deadLetter: async (letter) => {
        this.#log.warn(
          { reason: letter.reason, fn: letter.fn, error: letter.error },
          'AI dead letter',
        );
        await store.deadLetter({
          id: letter.id,
          reason: letter.reason,
          error: letter.error,
          payload: this.#current,
          ...(letter.fn ? { fn: letter.fn } : {}),
          ...(letter.sourceEventId ? { sourceEventId: letter.sourceEventId } : {}),
        });
      },
    };
    while (!this.#closed) {
      let read = 0;
      try {
        const rows = await this.#opts.feed.read(await store.position(FEED), 50);
        for (const row of rows) {
          if (this.#closed) break;
          this.#current = JSON.stringify(row.payload);
          await deliver(await this.#opts.pipeline.process(this.#current), sinks, metrics);
          await store.setPosition(FEED, { createdAt: row.createdAt, id: row.id });
          read++;
        }
        this.#failures = 0;
      } catch (err) {
        this.#failures++;
        this.#log.warn(
          { err: (err as Error).message, failures: this.#failures },
          'AI feed failed; will retry',
        );
      }
      if (read > 0 && this.#failures === 0) continue;
      const wait =
        this.#failures > 0 ? Math.min(500 * 2 ** this.#failures, 30_000) : this.#opts.pollMs;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, wait);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = undefined;
    }
  }

  #current = '';

  async close(): Promise<void> {
    this.#closed = true;
    this.#wake?.();
    await this.#running;
  }
}
