/**
 * Everything Kafka, as one lifecycle object: topics created up front, the outbox relay and the
 * core consumer. Started in the background: while Kafka is unreachable the server serves on
 * and events wait in the outbox; this keeps retrying until the broker answers.
 */
import type { Logger } from 'pino';
import { createKafkaClient, type KafkaClient, type KafkaSettings } from './kafka.js';
import { OutboxRelay } from './outbox-relay.js';
import { EventConsumer, dlqTopic } from './event-consumer.js';
import { createEventValidator } from './event-validator.js';
import { AI_RESULTS_TOPIC, CONSTATS_TOPIC, type CloudEvent } from './events.js';
import type { OutboxRepository } from '../persistence/outbox-repository.js';
import type { TimelineRepository } from '../persistence/timeline-repository.js';

export interface KafkaIntegrationOptions {
  settings: KafkaSettings & { consumerGroup: string; outboxPollMs: number };
  /** Insurer topics (company uids). */
  companyTopics: () => Iterable<string>;
  outbox: OutboxRepository;
  timeline: TimelineRepository;
  constatExists: (id: string) => Promise<boolean>;
  logger: Logger;
  onPublished?: (n: number) => void;
  onPublishFailed?: () => void;
  onStored?: (event: CloudEvent) => void;
  onDeadLetter?: (reason: string) => void;
}

export class KafkaIntegration {
  readonly #opts: KafkaIntegrationOptions;
  readonly #log: Logger;
  readonly #client: KafkaClient;
  #relay: OutboxRelay | undefined;
  #consumer: EventConsumer | undefined;
  #starting: Promise<void> | undefined;
  #closed = false;
  #ready = false;

  constructor(opts: KafkaIntegrationOptions) {
    this.#opts = opts;
    this.#log = opts.logger.child({ component: 'kafka-integration' });
    this.#client = createKafkaClient(opts.settings, opts.logger);
  }

  get ready(): boolean {
    return this.#ready;
  }

  start(): void {
    this.#starting ??= this.#start().catch((err: unknown) => {
      this.#log.error({ err }, 'Kafka integration failed to start; events wait in the outbox');
    });
  }

  async #start(): Promise<void> {
    const consumed = [...this.#opts.companyTopics(), AI_RESULTS_TOPIC];
    const topics = [...consumed, CONSTATS_TOPIC, ...consumed.map(dlqTopic)];
    for (let attempt = 0; !this.#closed; attempt++) {
      try {
        await this.#client.ensureTopics(topics);
        break;
      } catch (err) {
        const wait = Math.min(1_000 * 2 ** attempt, 30_000);
        this.#log.warn(
          { err: (err as Error).message, retryInMs: wait },
          'Kafka unavailable; events wait in the outbox',
        );
        await new Promise((r) => setTimeout(r, wait).unref());
      }
    }
    if (this.#closed) return;
    this.#relay = new OutboxRelay({
      outbox: this.#opts.outbox,
      producer: () => this.#client.producer(),
      logger: this.#opts.logger,
      pollMs: this.#opts.settings.outboxPollMs,
      ...(this.#opts.onPublished ? { onPublished: this.#opts.onPublished } : {}),
      ...(this.#opts.onPublishFailed ? { onFailed: this.#opts.onPublishFailed } : {}),
    });
    this.#relay.start();
    this.#consumer = new EventConsumer({
      consumer: this.#client.consumer(this.#opts.settings.consumerGroup),
      producer: () => this.#client.producer(),
      topics: consumed,
      validator: createEventValidator(),
      timeline: this.#opts.timeline,
      constatExists: this.#opts.constatExists,
      logger: this.#opts.logger,
      ...(this.#opts.onStored ? { onStored: this.#opts.onStored } : {}),
      ...(this.#opts.onDeadLetter ? { onDeadLetter: this.#opts.onDeadLetter } : {}),
    });
    for (let attempt = 0; !this.#closed; attempt++) {
      try {
        await this.#consumer.start();
        break;
      } catch (err) {
        const wait = Math.min(1_000 * 2 ** attempt, 30_000);
        this.#log.warn(
          { err: (err as Error).message, retryInMs: wait },
          'consumer could not start; retrying',
        );
        await this.#consumer.close().catch(() => {});
        await new Promise((r) => setTimeout(r, wait).unref());
      }
    }
    if (this.#closed) return;
    this.#ready = true;
    this.#log.info({ topics: consumed.length }, 'Kafka integration running');
  }

  /** An outbox row was just committed on this instance. */
  wake(): void {
    this.#relay?.wake();
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.#starting?.catch(() => {});
    await this.#relay?.close();
    await this.#consumer?.close().catch(() => {});
    await this.#client.close();
  }
}
