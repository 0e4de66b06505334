/**
 * The AI service on Kafka: a consumer group on `constats`, results to `ai-results` through the
 * idempotent producer, dead letters to `constats.ai.dlq`. Each message is handled to the end
 * before its offset is committed: a crash in between redelivers it, and the pipeline then
 * republishes the stored results under the same ids (core keeps one per id).
 *
 * A message that keeps failing while the AI database answers is the message's fault: after
 * a few attempts it becomes a dead letter, so it never stalls its partition. While the database
 * does not answer, the message waits (that is an outage, not a poison message).
 */
import type { Logger } from 'pino';
import { AI_RESULTS_TOPIC, CONSTATS_TOPIC, eventHeaders } from '../integrations/events.js';
import type { KafkaClient, ReceivedMessage, RunningConsumer } from '../integrations/kafka.js';
import { handleWithAttempts } from '../integrations/message-attempts.js';
import { sendDeadLetter } from '../integrations/event-consumer.js';
import { Sleeper } from '../integrations/poll-loop.js';
import { deliver, type AiSinks, type DeadLetter } from './deliver.js';
import type { AiMetrics } from './metrics.js';
import type { AiPipeline } from './pipeline.js';
import type { AiStore } from './store.js';

export const aiDlqTopic = (input: string) => `${input}.ai.dlq`;
export const AI_DLQ_TOPIC = aiDlqTopic(CONSTATS_TOPIC);

export interface KafkaRunnerOptions {
  client: KafkaClient;
  /** Where finalized constats are read (`constats`); dead letters go to `<topic>.ai.dlq`. */
  inputTopic?: string;
  groupId: string;
  pipeline: AiPipeline;
  store: AiStore;
  metrics: AiMetrics;
  logger: Logger;
}

export class KafkaRunner {
  readonly #opts: KafkaRunnerOptions;
  readonly #log: Logger;
  #consumer: RunningConsumer | undefined;
  #closed = false;
  #starting: Promise<void> | undefined;
  readonly #sleeper = new Sleeper();

  readonly #input: string;
  readonly #dlq: string;

  constructor(opts: KafkaRunnerOptions) {
    this.#opts = opts;
    this.#input = opts.inputTopic ?? CONSTATS_TOPIC;
    this.#dlq = aiDlqTopic(this.#input);
    this.#log = opts.logger.child({ component: 'ai-kafka' });
  }

  /** Consuming: holds its partitions of the input topic. */
  get ready(): boolean {
    return this.#consumer?.state() === 'consuming';
  }

  /** `consuming`, or what the consumer is waiting for. */
  get state(): string {
    return this.#consumer?.state() ?? 'creating topics';
  }

  /** Starts in the background, retrying while the broker is unreachable. */
  start(): void {
    this.#starting ??= this.#start().catch((err: unknown) =>
      this.#log.error({ err }, 'AI consumer failed to start'),
    );
  }

  async #start(): Promise<void> {
    for (let attempt = 0; !this.#closed; attempt++) {
      try {
        await this.#opts.client.ensureTopics([this.#input, AI_RESULTS_TOPIC, this.#dlq]);
        break;
      } catch (err) {
        const wait = Math.min(1_000 * 2 ** attempt, 30_000);
        this.#log.warn({ err: (err as Error).message, retryInMs: wait }, 'AI topics not created');
        await this.#sleeper.sleep(wait);
      }
    }
    if (this.#closed) return;
    this.#consumer = this.#opts.client.consume({
      groupId: this.#opts.groupId,
      topics: [this.#input],
      eachMessage: ({ partition, message, heartbeat }) =>
        this.#handle(partition, message, heartbeat),
    });
    this.#log.info({ group: this.#opts.groupId }, 'AI service consuming constats');
  }

  #sinks(partition: number, message: ReceivedMessage): AiSinks {
    return {
      results: async (constatId, events) => {
        const producer = await this.#opts.client.producer();
        await producer.send({
          topic: AI_RESULTS_TOPIC,
          acks: -1,
          messages: events.map((e) => ({
            key: constatId,
            value: JSON.stringify(e),
            headers: eventHeaders(e),
          })),
        });
      },
      deadLetter: async (letter: DeadLetter) => {
        this.#log.warn(
          {
            partition,
            offset: message.offset,
            reason: letter.reason,
            fn: letter.fn,
            error: letter.error,
          },
          'constat sent to the AI dead-letter topic',
        );
        await sendDeadLetter(await this.#opts.client.producer(), this.#dlq, {
          topic: this.#input,
          partition,
          message,
          reason: letter.reason,
          error: letter.error,
          ...(letter.fn ? { headers: { 'dlq-function': letter.fn } } : {}),
        });
      },
    };
  }

  #handle(partition: number, message: ReceivedMessage, heartbeat: () => Promise<void>) {
    const sinks = this.#sinks(partition, message);
    return handleWithAttempts({
      handle: async () => {
        const outcome = await this.#opts.pipeline.process(message.value);
        await deliver(outcome, sinks, this.#opts.metrics);
      },
      giveUp: async (error) => {
        this.#opts.metrics.events.inc({ outcome: 'dead-letter' });
        await deliver(
          { kind: 'dead-letter', reason: 'processing-failed', error },
          sinks,
          this.#opts.metrics,
        );
      },
      databaseUp: () => this.#opts.store.ping().then(() => true),
      sleeper: this.#sleeper,
      heartbeat,
      onRetry: (error, attempt, retryInMs) =>
        this.#log.warn(
          { partition, offset: message.offset, error, attempt, retryInMs },
          'retrying a constat',
        ),
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#sleeper.close();
    await this.#starting;
    await this.#consumer?.close();
    await this.#opts.client.close();
  }
}
