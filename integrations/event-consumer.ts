/**
 * The core consumer: reads every insurer topic and `ai-results`, stores claim events and AI
 * findings on the constat's timeline (idempotent by topic and event id) when their sender has
 * a say about that constat, and skips core's own events.
 * A message that cannot be used goes to `<topic>.dlq` with the reason in its headers, and
 * consumption goes on. Storage failures are retried (the offset is not committed) for as long
 * as the database is down; one that the database keeps refusing is a dead letter too
 * (`storage-refused`), so that one message cannot stall the consumer.
 */
import type { EventProducer, KafkaClient, ReceivedMessage, RunningConsumer } from './kafka.js';
import { handleWithAttempts } from './message-attempts.js';
import { Sleeper } from './poll-loop.js';
import type { Logger } from 'pino';
import type { TimelineRepository } from '../persistence/timeline-repository.js';
import { AI_RESULTS_TOPIC, CORE_SOURCE, type CloudEvent } from './events.js';
import { AI_EVENT_PREFIX, CLAIM_EVENT_PREFIX } from './event-schemas.js';
import { InvalidEvent, type EventValidator } from './event-validator.js';
import { authorizeEvent, type ConstatInsurers } from './event-authorization.js';
import { decodeKafkaEvent } from './cloudevents-binding.js';

export const dlqTopic = (topic: string) => `${topic}.dlq`;

export type Disposition =
  | { kind: 'store'; event: CloudEvent }
  | { kind: 'skip'; why: string }
  | { kind: 'dead-letter'; reason: string; error: string };

export interface EventConsumerOptions {
  consume: KafkaClient['consume'];
  /** The consumer group: named on each dead letter, since several groups may read one topic. */
  group: string;
  producer: () => Promise<EventProducer>;
  topics: string[];
  validator: EventValidator;
  timeline: TimelineRepository;
  /** Whether the database answers: a message that fails while it does is the message's fault. */
  databaseUp: () => Promise<boolean>;
  /** The insurers of a finalized constat; null when there is no such constat. */
  constatInsurers: (id: string) => Promise<ConstatInsurers | null>;
  /** `source` values accepted on `ai-results`. */
  aiServices: ReadonlySet<string>;
  logger: Logger;
  onStored?: (event: CloudEvent) => void;
  onDeadLetter?: (reason: string) => void;
}

/**
 * The retry-or-dead-letter decision, in one place. Unusable messages (unparseable, against
 * the schema, the wrong kind of event for the topic, an unknown constat, a sender with no say
 * about that constat: event-authorization.ts) are dead letters; anything else thrown while
 * storing is retried.
 */
export async function decide(
  topic: string,
  message: Pick<ReceivedMessage, 'headers' | 'value'>,
  validator: EventValidator,
  constatInsurers: (id: string) => Promise<ConstatInsurers | null>,
  aiServices: ReadonlySet<string>,
): Promise<Disposition> {
  return decideEvent(
    topic,
    () => decodeKafkaEvent(message.headers, message.value),
    validator,
    constatInsurers,
    aiServices,
  );
}

/**
 * The decision for an event however it arrived: `topic` is the sender's identity (its Kafka
 * topic, or on REST the company its token names: the same thing) and `decode` turns the
 * transport's message into the envelope (throwing InvalidEvent).
 */
export async function decideEvent(
  topic: string,
  decode: () => unknown,
  validator: EventValidator,
  constatInsurers: (id: string) => Promise<ConstatInsurers | null>,
  aiServices: ReadonlySet<string>,
): Promise<Disposition> {
  let event: CloudEvent;
  try {
    // Either content mode becomes the same envelope before anything looks at it.
    event = validator.validate(decode());
  } catch (err) {
    if (err instanceof InvalidEvent)
      return { kind: 'dead-letter', reason: err.reason, error: err.message };
    throw err;
  }
  if (event.source === CORE_SOURCE) return { kind: 'skip', why: 'own event' };
  const expected = topic === AI_RESULTS_TOPIC ? AI_EVENT_PREFIX : CLAIM_EVENT_PREFIX;
  if (!event.type.startsWith(expected)) {
    return {
      kind: 'dead-letter',
      reason: 'unexpected-type',
      error: `"${event.type}" does not belong on topic "${topic}"`,
    };
  }
  const insurers = await constatInsurers(event.subject);
  if (!insurers) {
    return { kind: 'dead-letter', reason: 'unknown-constat', error: `no constat ${event.subject}` };
  }
  const allowed = authorizeEvent(topic, event, insurers, aiServices);
  if (!allowed.ok) return { kind: 'dead-letter', reason: allowed.reason, error: allowed.error };
  return { kind: 'store', event };
}

/**
 * Copies a message unchanged (key, value, headers) to a dead-letter topic, with why and where
 * it was in `dlq-*` headers (docs/events.md).
 */
export async function sendDeadLetter(
  producer: EventProducer,
  toTopic: string,
  d: {
    topic: string;
    partition: number;
    message: ReceivedMessage;
    reason: string;
    error: string;
    headers?: Record<string, string>;
  },
): Promise<void> {
  await producer.send({
    topic: toTopic,
    acks: -1,
    messages: [
      {
        key: d.message.key,
        value: d.message.value,
        headers: {
          ...d.message.headers,
          'dlq-reason': d.reason,
          'dlq-error': d.error.slice(0, 2000),
          ...d.headers,
          'dlq-topic': d.topic,
          'dlq-partition': String(d.partition),
          'dlq-offset': d.message.offset,
        },
      },
    ],
  });
}

/** Puts an accepted event on its constat's timeline; false when that id was already there. */
export function storeEvent(
  timeline: TimelineRepository,
  topic: string,
  event: CloudEvent,
): Promise<boolean> {
  return timeline.add({
    eventId: event.id,
    constatId: event.subject,
    topic,
    source: event.source,
    type: event.type,
    // A sender's clock is its own: a time in the future is stored as the time received.
    time: new Date(Math.min(Date.parse(event.time), Date.now())),
    data: event.data,
  });
}

export class EventConsumer {
  readonly #opts: EventConsumerOptions;
  readonly #log: Logger;
  readonly #sleeper = new Sleeper();
  #running: RunningConsumer | undefined;

  constructor(opts: EventConsumerOptions) {
    this.#opts = opts;
    this.#log = opts.logger.child({ component: 'event-consumer' });
  }

  start(): void {
    this.#running ??= this.#opts.consume({
      groupId: this.#opts.group,
      topics: this.#opts.topics,
      eachMessage: ({ topic, partition, message, heartbeat }) =>
        handleWithAttempts({
          handle: () => this.#handle(topic, partition, message),
          giveUp: (error) => this.#deadLetter(topic, partition, message, 'storage-refused', error),
          databaseUp: this.#opts.databaseUp,
          sleeper: this.#sleeper,
          heartbeat,
          onRetry: (error, attempt, retryInMs) =>
            this.#log.warn(
              { topic, partition, offset: message.offset, error, attempt, retryInMs },
              'retrying an event',
            ),
        }),
    });
  }

  /** `consuming`, or what the consumer is waiting for. */
  get state(): string {
    return this.#running?.state() ?? 'not started';
  }

  async #handle(topic: string, partition: number, message: ReceivedMessage): Promise<void> {
    const disposition = await decide(
      topic,
      message,
      this.#opts.validator,
      this.#opts.constatInsurers,
      this.#opts.aiServices,
    );
    switch (disposition.kind) {
      case 'skip':
        return;
      case 'dead-letter':
        await this.#deadLetter(topic, partition, message, disposition.reason, disposition.error);
        return;
      case 'store': {
        const { event } = disposition;
        const stored = await storeEvent(this.#opts.timeline, topic, event);
        if (stored) this.#opts.onStored?.(event);
        this.#log.debug(
          { eventId: event.id, type: event.type, duplicate: !stored },
          'event received',
        );
      }
    }
  }

  async #deadLetter(
    topic: string,
    partition: number,
    message: ReceivedMessage,
    reason: string,
    error: string,
  ): Promise<void> {
    this.#log.warn(
      { topic, partition, offset: message.offset, reason, error },
      'message sent to the dead-letter topic',
    );
    await sendDeadLetter(await this.#opts.producer(), dlqTopic(topic), {
      topic,
      partition,
      message,
      reason,
      error,
      headers: { 'dlq-consumer-group': this.#opts.group },
    });
    this.#opts.onDeadLetter?.(reason);
  }

  async close(): Promise<void> {
    this.#sleeper.close();
    await this.#running?.close();
  }
}
