/**
 * The AI pipeline without a broker (the embedded default): it reads the finalized events
 * straight from core's outbox, in commit order, and hands results to core's timeline through
 * the sink core gives it, the same path `ai-results` takes. Its read position is kept in the
 * AI's own tables after each event, and a replay is harmless (stored results, same ids). The
 * outbox rows themselves are left untouched: they are still published once a broker is
 * configured.
 */
import type { Logger } from 'pino';
import { PollLoop } from '../integrations/poll-loop.js';
import { deliver, type AiSinks } from './deliver.js';
import type { AiMetrics } from './metrics.js';
import type { AiPipeline } from './pipeline.js';
import type { AiStore } from './store.js';

export interface FeedRow {
  id: string;
  /** The row's commit-order position, as text at the database's full (microsecond) precision. */
  createdAt: string;
  payload: unknown;
}

/** Core's finalized events, oldest first, after a position. */
export interface FinalizedFeed {
  read(after: { createdAt: string; id: string } | undefined, limit: number): Promise<FeedRow[]>;
}

export interface EmbeddedRunnerOptions {
  feed: FinalizedFeed;
  sinks: Pick<AiSinks, 'results'>;
  pipeline: AiPipeline;
  store: AiStore;
  metrics: AiMetrics;
  logger: Logger;
  pollMs: number;
  /** The name its read position is kept under (one per lane); `outbox:constats` by default. */
  feedName?: string;
}

const FEED = 'outbox:constats';

export class EmbeddedRunner {
  readonly #opts: EmbeddedRunnerOptions;
  readonly #log: Logger;
  readonly #loop: PollLoop;
  /** The event being handled, kept with its dead letters. */
  #current = '';

  constructor(opts: EmbeddedRunnerOptions) {
    this.#opts = opts;
    this.#log = opts.logger.child({ component: 'ai-embedded' });
    const sinks: AiSinks = {
      results: opts.sinks.results,
      // No broker to send it to: kept in the AI's own table, and logged.
      deadLetter: async (letter) => {
        this.#log.warn(
          { reason: letter.reason, fn: letter.fn, error: letter.error },
          'AI dead letter',
        );
        await opts.store.deadLetter({
          id: letter.id,
          reason: letter.reason,
          error: letter.error,
          payload: this.#current,
          ...(letter.fn ? { fn: letter.fn } : {}),
          ...(letter.sourceEventId ? { sourceEventId: letter.sourceEventId } : {}),
        });
      },
    };
    this.#loop = new PollLoop({
      step: async () => {
        const { feed, store, pipeline, metrics } = this.#opts;
        const name = this.#opts.feedName ?? FEED;
        const rows = await feed.read(await store.position(name), 50);
        for (const row of rows) {
          this.#current = JSON.stringify(row.payload);
          await deliver(await pipeline.process(this.#current), sinks, metrics);
          await store.setPosition(name, { createdAt: row.createdAt, id: row.id });
        }
        return rows.length;
      },
      pollMs: opts.pollMs,
      backoff: { firstMs: 500, maxMs: 30_000 },
      onError: (err, failures) =>
        this.#log.warn({ err: (err as Error).message, failures }, 'AI feed failed; will retry'),
    });
  }

  start(): void {
    this.#loop.start();
  }

  /** A constat was just finalized: look now rather than at the next poll. */
  wake(): void {
    this.#loop.wake();
  }

  async close(): Promise<void> {
    await this.#loop.close();
  }
}
