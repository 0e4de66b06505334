/**
 * The one module that talks to the Kafka client library (kafkajs, in maintenance mode: keep
 * it behind this seam so it can be swapped). Producer, consumers and topic creation, and the
 * narrow interfaces the relay, the consumer and the AI service program against
 * (`EventProducer`, `GroupConsumer`, `ReceivedMessage`): kafkajs's own objects satisfy them,
 * and nothing outside this file names a kafkajs type (checked by `npm run lint`).
 */
import { Kafka, logLevel, type Consumer, type Producer, type LogEntry } from 'kafkajs';
import type { Logger } from 'pino';

/** Headers as they travel: producers write strings, consumers read Buffers. */
export type MessageHeaders = Record<string, Buffer | string | (Buffer | string)[] | undefined>;

/** A message to publish. */
export interface OutgoingMessage {
  key?: Buffer | string | null;
  value: Buffer | string | null;
  headers?: MessageHeaders;
}

/** A message read from a topic. */
export interface ReceivedMessage {
  key: Buffer | null;
  value: Buffer | null;
  headers?: MessageHeaders;
  offset: string;
}

/** Publishes to a topic, or to several in one request; `acks: -1` waits for every in-sync replica. */
export interface EventProducer {
  send(record: { topic: string; acks: -1; messages: OutgoingMessage[] }): Promise<unknown>;
  sendBatch(batch: {
    acks: -1;
    topicMessages: Array<{ topic: string; messages: OutgoingMessage[] }>;
  }): Promise<unknown>;
}

/** A member of a consumer group. */
export interface GroupConsumer {
  connect(): Promise<void>;
  subscribe(subscription: { topics: string[]; fromBeginning: boolean }): Promise<void>;
  run(config: {
    eachMessage: (payload: {
      topic: string;
      partition: number;
      message: ReceivedMessage;
      heartbeat: () => Promise<void>;
    }) => Promise<void>;
  }): Promise<void>;
  disconnect(): Promise<void>;
}

export interface KafkaSettings {
  brokers: string[];
  clientId: string;
  partitions: number;
  replicationFactor: number;
}

export interface KafkaClient {
  /** Idempotent producer, acks from all in-sync replicas. */
  producer(): Promise<Producer>;
  consumer(groupId: string): Consumer;
  /** Creates the topics that do not exist yet (existing ones are left as they are). */
  ensureTopics(topics: string[]): Promise<void>;
  close(): Promise<void>;
}

const LEVELS: Record<number, 'error' | 'warn' | 'info' | 'debug'> = {
  // kafkajs reports retriable conditions (a coordinator still loading…) as errors; ours are
  // logged where a failure is final.
  [logLevel.ERROR]: 'warn',
  [logLevel.WARN]: 'warn',
  [logLevel.INFO]: 'info',
  [logLevel.DEBUG]: 'debug',
};

export function createKafkaClient(settings: KafkaSettings, logger: Logger): KafkaClient {
  const log = logger.child({ component: 'kafka' });
  const kafka = new Kafka({
    clientId: settings.clientId,
    brokers: settings.brokers,
    connectionTimeout: 3_000,
    // Fail fast and let the callers apply their own backoff: the outbox keeps every event.
    retry: { retries: 3, initialRetryTime: 200, maxRetryTime: 2_000 },
    logLevel: logLevel.WARN,
    logCreator:
      () =>
      ({ level, log: entry }: LogEntry) => {
        const { message, ...rest } = entry;
        log[LEVELS[level] ?? 'info']({ kafkajs: rest }, message);
      },
  });
  let producer: Promise<Producer> | undefined;
  const consumers: Consumer[] = [];
  return {
    producer() {
      producer ??= (async () => {
        const p = kafka.producer({
          idempotent: true,
          maxInFlightRequests: 1,
          allowAutoTopicCreation: false,
        });
        await p.connect();
        return p;
      })();
      producer.catch(() => (producer = undefined));
      return producer;
    },
    consumer(groupId) {
      const c = kafka.consumer({
        groupId,
        allowAutoTopicCreation: false,
        retry: { retries: 10, initialRetryTime: 300, maxRetryTime: 10_000 },
      });
      consumers.push(c);
      return c;
    },
    async ensureTopics(topics) {
      const admin = kafka.admin();
      await admin.connect();
      try {
        const existing = new Set(await admin.listTopics());
        const missing = [...new Set(topics)].filter((t) => !existing.has(t));
        if (missing.length === 0) return;
        await admin.createTopics({
          waitForLeaders: true,
          topics: missing.map((topic) => ({
            topic,
            numPartitions: settings.partitions,
            replicationFactor: settings.replicationFactor,
          })),
        });
        log.info({ topics: missing }, 'created topics');
      } finally {
        await admin.disconnect();
      }
    },
    async close() {
      await Promise.allSettled(consumers.map((c) => c.disconnect()));
      if (producer) await (await producer.catch(() => undefined))?.disconnect().catch(() => {});
    },
  };
}
