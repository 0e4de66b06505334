/**
 * Publishes outbox rows to Kafka and marks them sent. Rows stay locked (FOR UPDATE SKIP
 * LOCKED) while they are published, so several instances share the work without publishing a
 * row twice in the normal case. A row published but not marked (the database failed right
 * after) is published again later: its event id tells the duplicate apart.
 *
 * While Kafka is down, rows wait and are retried with backoff; the server keeps serving.
 */
import type { Logger } from 'pino';
import type { EventProducer } from './kafka.js';
import type { OutboxBatch, OutboxRepository } from '../persistence/outbox-repository.js';
import { PollLoop } from './poll-loop.js';
import { encodeKafkaEvent, type EventMode } from './cloudevents-binding.js';
import type { CloudEvent } from './events.js';

export interface OutboxRelayOptions {
  outbox: OutboxRepository;
  producer: () => Promise<EventProducer>;
  logger: Logger;
  pollMs: number;
  batchSize?: number;
  /** The content mode a topic's reader asked for (per company); structured by default. */
  eventMode?: (topic: string) => EventMode;
  onPublished?: (n: number) => void;
  /** A produce request was made (whatever its outcome). */
  onSend?: () => void;
  onFailed?: () => void;
}

const BACKOFF = { first: 500, max: 30_000 };

export class OutboxRelay {
  readonly #opts: OutboxRelayOptions;
  readonly #log: Logger;
  readonly #loop: PollLoop;
  /** The last batch published something: skip the due check (see #publishBatch). */
  #busy = false;

  constructor(opts: OutboxRelayOptions) {
    this.#opts = opts;
    this.#log = opts.logger.child({ component: 'outbox-relay' });
    this.#loop = new PollLoop({
      step: async () => {
        const outcome = await this.#publishBatch();
        const published = outcome?.published ?? 0;
        // Rows of a failing topic back off on their own; only a batch where nothing could be
        // published makes the whole relay back off (Kafka itself is likely unreachable).
        if (outcome?.error && published === 0) throw outcome.error;
        return published;
      },
      pollMs: opts.pollMs,
      backoff: { firstMs: BACKOFF.first, maxMs: BACKOFF.max },
      onError: (err, failures) => {
        this.#opts.onFailed?.();
        this.#log.warn(
          { err: (err as Error).message, failures },
          'outbox publish failed; will retry',
        );
      },
    });
  }

  start(): void {
    this.#loop.start();
  }

  /** Something was just written to the outbox: look now rather than at the next poll. */
  wake(): void {
    this.#busy = true;
    this.#loop.wake();
  }

  /**
   * Publishes one batch: every topic in one produce request; if that fails, topic by topic,
   * so that a topic that fails (missing, unavailable) holds back only its own rows. Failures
   * are returned, not thrown: their marks must commit with the batch.
   */
  async #publishBatch(): Promise<{ published: number; error?: Error } | undefined> {
    // Idle polls cost one statement rather than a transaction's three; after a batch that
    // published, more is likely waiting and the check would only add a statement.
    if (!this.#busy && !(await this.#opts.outbox.due())) return undefined;
    const outcome = await this.#opts.outbox.withBatch(
      this.#opts.batchSize ?? 100,
      async (batch) => {
        const byTopic = new Map<string, typeof batch.rows>();
        for (const row of batch.rows)
          byTopic.set(row.topic, [...(byTopic.get(row.topic) ?? []), row]);
        let producer: EventProducer;
        try {
          producer = await this.#opts.producer();
        } catch (err) {
          await this.#markFailed(batch, batch.rows, err as Error);
          return { published: 0, error: err as Error };
        }
        const messages = (topic: string, rows: typeof batch.rows) =>
          rows.map((r) =>
            this.#opts.eventMode?.(topic) === 'binary'
              ? { key: r.key, ...encodeKafkaEvent(r.payload as CloudEvent, 'binary') }
              : { key: r.key, value: JSON.stringify(r.payload), headers: r.headers },
          );
        let failed: Error | undefined;
        try {
          this.#opts.onSend?.();
          await producer.sendBatch({
            acks: -1,
            topicMessages: [...byTopic].map(([topic, rows]) => ({
              topic,
              messages: messages(topic, rows),
            })),
          });
        } catch (err) {
          failed = err as Error;
        }
        if (!failed) {
          await batch.markSent(batch.rows.map((r) => r.id));
          this.#opts.onPublished?.(batch.rows.length);
          return { published: batch.rows.length };
        }
        if (byTopic.size === 1) {
          this.#log.warn(
            { topic: batch.rows[0]!.topic, rows: batch.rows.length, err: failed.message },
            'could not publish to topic',
          );
          await this.#markFailed(batch, batch.rows, failed);
          return { published: 0, error: failed };
        }
        // Some topics of the request may have been written: sent again below, they are
        // duplicates a reader tells apart by the event id (as after any failed mark).
        this.#log.warn(
          { topics: [...byTopic.keys()], rows: batch.rows.length, err: failed.message },
          'could not publish the batch in one request; sending topic by topic',
        );
        const sent: string[] = [];
        let error: Error | undefined;
        for (const [topic, rows] of byTopic) {
          try {
            this.#opts.onSend?.();
            await producer.send({ topic, acks: -1, messages: messages(topic, rows) });
            sent.push(...rows.map((r) => r.id));
          } catch (err) {
            error = err as Error;
            this.#log.warn(
              { topic, rows: rows.length, err: error.message },
              'could not publish to topic',
            );
            await this.#markFailed(batch, rows, error);
          }
        }
        if (sent.length > 0) {
          await batch.markSent(sent);
          this.#opts.onPublished?.(sent.length);
        }
        return { published: sent.length, ...(error ? { error } : {}) };
      },
    );
    this.#busy = (outcome?.published ?? 0) > 0;
    return outcome;
  }

  async #markFailed(batch: OutboxBatch, rows: OutboxBatch['rows'], err: Error): Promise<void> {
    const attempts = Math.max(...rows.map((r) => r.attempts)) + 1;
    await batch.markFailed(
      rows.map((r) => r.id),
      err.message,
      Math.min(BACKOFF.first * 2 ** attempts, BACKOFF.max),
    );
  }

  async close(): Promise<void> {
    await this.#loop.close();
  }
}
