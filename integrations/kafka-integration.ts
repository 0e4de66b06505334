/**
 * Everything Kafka, as one lifecycle object: topics created up front, the outbox relay and the
 * core consumer. Started in the background: while Kafka is unreachable the server serves on
 * and events wait in the outbox; this keeps retrying until the broker answers.
 */
import type { Logger } from 'pino';
import { createKafkaClient, type KafkaClient, type KafkaSettings } from './kafka.js';
import { OutboxRelay } from './outbox-relay.js';
import { Sleeper } from './poll-loop.js';
import type { EventMode } from './cloudevents-binding.js';
import { EventConsumer, dlqTopic } from './event-consumer.js';
import { createEventValidator } from './event-validator.js';
import { AI_RESULTS_TOPIC, CONSTATS_TOPIC, type CloudEvent } from './events.js';
import type { OutboxRepository } from '../persistence/outbox-repository.js';
import type { TimelineRepository } from '../persistence/timeline-repository.js';
import type { ConstatInsurers } from './event-authorization.js';
import type { DeliveryChannel } from './delivery-channel.js';

export interface KafkaIntegrationOptions {
  settings: KafkaSettings & { consumerGroup: string; outboxPollMs: number };
  /** Insurer topics (company uids). */
  companyTopics: () => Iterable<string>;
  /** The content mode a company asked for its topic (structured unless set). */
  eventMode?: (topic: string) => EventMode;
  outbox: OutboxRepository;
  timeline: TimelineRepository;
  /** Whether the database answers (see event-consumer.ts). */
  databaseUp: () => Promise<boolean>;
  constatInsurers: (id: string) => Promise<ConstatInsurers | null>;
  /** `source` values accepted on `ai-results`. */
  aiServices: readonly string[];
  logger: Logger;
  onPublished?: (n: number) => void;
  /** A produce request was made (whatever its outcome). */
  onSend?: () => void;
  onPublishFailed?: () => void;
  onStored?: (event: CloudEvent) => void;
  onDeadLetter?: (reason: string) => void;
}

export class KafkaIntegration implements DeliveryChannel {
  readonly name = 'kafka';
  readonly #opts: KafkaIntegrationOptions;
  readonly #log: Logger;
  readonly #client: KafkaClient;
  #relay: OutboxRelay | undefined;
  #consumer: EventConsumer | undefined;
  #starting: Promise<void> | undefined;
  #closed = false;
  #ready = false;
  readonly #sleeper = new Sleeper();
  #reconfigure: Promise<void> = Promise.resolve();

  constructor(opts: KafkaIntegrationOptions) {
    this.#opts = opts;
    this.#log = opts.logger.child({ component: 'kafka-integration' });
    this.#client = createKafkaClient(opts.settings, opts.logger);
  }

  get ready(): boolean {
    return this.#ready;
  }

  /** What /readyz shows: the topics, then the consumer (`consuming`, or what it waits for). */
  get state(): string {
    if (!this.#ready) return 'creating topics';
    return this.#consumer?.state ?? 'not consuming';
  }

  start(): void {
    this.#starting ??= this.#start().catch((err: unknown) => {
      this.#log.error({ err }, 'Kafka integration failed to start; events wait in the outbox');
    });
  }

  /** Retries `fn` with backoff until it succeeds or the integration closes. */
  async #retry(what: string, fn: () => Promise<void>): Promise<boolean> {
    for (let attempt = 0; !this.#closed; attempt++) {
      try {
        await fn();
        return true;
      } catch (err) {
        const wait = Math.min(1_000 * 2 ** attempt, 30_000);
        this.#log.warn(
          { err: (err as Error).message, retryInMs: wait },
          `${what} failed; events wait in the outbox`,
        );
        await this.#sleeper.sleep(wait);
      }
    }
    return false;
  }

  #topics(): { consumed: string[]; all: string[] } {
    const consumed = [...this.#opts.companyTopics(), AI_RESULTS_TOPIC];
    return { consumed, all: [...consumed, CONSTATS_TOPIC, ...consumed.map(dlqTopic)] };
  }

  async #start(): Promise<void> {
    if (
      !(await this.#retry('creating topics', () => this.#client.ensureTopics(this.#topics().all)))
    )
      return;
    this.#relay = new OutboxRelay({
      outbox: this.#opts.outbox,
      producer: () => this.#client.producer(),
      ...(this.#opts.eventMode ? { eventMode: this.#opts.eventMode } : {}),
      logger: this.#opts.logger,
      pollMs: this.#opts.settings.outboxPollMs,
      ...(this.#opts.onPublished ? { onPublished: this.#opts.onPublished } : {}),
      ...(this.#opts.onSend ? { onSend: this.#opts.onSend } : {}),
      ...(this.#opts.onPublishFailed ? { onFailed: this.#opts.onPublishFailed } : {}),
    });
    this.#relay.start();
    this.#startConsumer();
    this.#ready = true;
    this.#log.info('Kafka integration running');
  }

  #startConsumer(): void {
    const consumer = new EventConsumer({
      consume: (opts) => this.#client.consume(opts),
      group: this.#opts.settings.consumerGroup,
      producer: () => this.#client.producer(),
      topics: this.#topics().consumed,
      validator: createEventValidator(),
      timeline: this.#opts.timeline,
      databaseUp: this.#opts.databaseUp,
      constatInsurers: this.#opts.constatInsurers,
      aiServices: new Set(this.#opts.aiServices),
      logger: this.#opts.logger,
      ...(this.#opts.onStored ? { onStored: this.#opts.onStored } : {}),
      ...(this.#opts.onDeadLetter ? { onDeadLetter: this.#opts.onDeadLetter } : {}),
    });
    consumer.start();
    this.#consumer = consumer;
  }

  /**
   * The registry changed (a company added): create its topics and consume them too. Serialized:
   * overlapping refreshes queue up.
   */
  companiesChanged(): void {
    this.#reconfigure = this.#reconfigure
      .then(async () => {
        if (!this.#ready || this.#closed) return;
        await this.#retry('creating topics', () => this.#client.ensureTopics(this.#topics().all));
        if (this.#closed) return;
        await this.#consumer?.close().catch(() => {});
        this.#consumer = undefined;
        this.#startConsumer();
        this.#log.info(
          { topics: this.#topics().consumed.length },
          'consuming the updated company topics',
        );
      })
      .catch((err: unknown) => this.#log.error({ err }, 'could not follow a registry change'));
  }

  /** An outbox row was just committed on this instance. */
  wake(): void {
    this.#relay?.wake();
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#sleeper.close();
    await this.#starting?.catch(() => {});
    await this.#reconfigure;
    await this.#relay?.close();
    await this.#consumer?.close().catch(() => {});
    await this.#client.close();
  }
}
