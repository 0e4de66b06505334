/**
 * The one module that talks to the Kafka client library (kafkajs, in maintenance mode: keep
 * it behind this seam so it can be swapped). Producer, consumers (the servers' ones supervised:
 * `consume`) and topic creation, and the narrow interfaces the relay, the consumer and the AI
 * service program against (`EventProducer`, `RunningConsumer`, `ReceivedMessage`); nothing
 * outside this file imports kafkajs (checked by `npm run lint`).
 */
import { Kafka, logLevel, type Consumer, type Producer, type LogEntry } from 'kafkajs';
import type { Logger } from 'pino';
import { Sleeper } from './poll-loop.js';

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

/** What a group member is given for each message, in order within a partition. */
export type EachMessage = (payload: {
  topic: string;
  partition: number;
  message: ReceivedMessage;
  heartbeat: () => Promise<void>;
}) => Promise<void>;

/** A consumer group member kept running until closed (`KafkaClient.consume`). */
export interface RunningConsumer {
  /** `consuming` once it holds its partitions; otherwise what it is waiting for. */
  state(): string;
  close(): Promise<void>;
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
  /** A plain kafkajs consumer, for the command-line tools that watch a topic for a while. */
  consumer(groupId: string): Consumer;
  /**
   * Joins `groupId` and reads `topics` (from the beginning for a new group) with `eachMessage`
   * until closed, through broker outages and crashes.
   */
  consume(opts: { groupId: string; topics: string[]; eachMessage: EachMessage }): RunningConsumer;
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
  const supervised = new Set<RunningConsumer>();
  const newConsumer = (groupId: string) =>
    kafka.consumer({
      groupId,
      allowAutoTopicCreation: false,
      retry: { retries: 10, initialRetryTime: 300, maxRetryTime: 10_000 },
    });
  const consumer = (groupId: string) => {
    const c = newConsumer(groupId);
    consumers.push(c);
    return c;
  };
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
    consumer,
    consume({ groupId, topics, eachMessage }) {
      const running = superviseConsumer(
        () => newConsumer(groupId),
        { groupId, topics, eachMessage },
        log,
      );
      supervised.add(running);
      return {
        state: running.state,
        async close() {
          supervised.delete(running);
          await running.close();
        },
      };
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
      await Promise.allSettled([
        ...[...supervised].map((c) => c.close()),
        ...consumers.map((c) => c.disconnect()),
      ]);
      if (producer) await (await producer.catch(() => undefined))?.disconnect().catch(() => {});
    },
  };
}

/**
 * kafkajs restarts a crashed consumer only after errors it deems retriable; after any other
 * (no broker answering while it rejoins, a protocol error) it stays stopped and says so only
 * in an event. Here such a crash disconnects that member and a new one joins after a backoff,
 * so a consumer never stops for good while the process runs.
 */
function superviseConsumer(
  create: () => Consumer,
  opts: { groupId: string; topics: string[]; eachMessage: EachMessage },
  log: Logger,
): RunningConsumer {
  const sleeper = new Sleeper();
  let state = 'joining the group';
  let current: Consumer | undefined;
  const run = async () => {
    for (let failures = 0; !sleeper.closed;) {
      const c = create();
      current = c;
      let stopped!: (why: string) => void;
      const crashed = new Promise<string>((resolve) => (stopped = resolve));
      c.on(c.events.GROUP_JOIN, () => {
        state = 'consuming';
        failures = 0;
      });
      c.on(c.events.CRASH, ({ payload }) => {
        state = `restarting after: ${payload.error.message}`;
        if (!payload.restart) stopped(payload.error.message);
      });
      try {
        await c.connect();
        await c.subscribe({ topics: opts.topics, fromBeginning: true });
        await c.run({ eachMessage: opts.eachMessage });
      } catch (err) {
        stopped((err as Error).message);
      }
      const why = await Promise.race([crashed, sleeper.closing]);
      if (sleeper.closed) return;
      const wait = Math.min(1_000 * 2 ** failures++, 30_000);
      state = `restarting after: ${why}`;
      log.warn(
        { groupId: opts.groupId, err: why, retryInMs: wait },
        'Kafka consumer stopped; a new member joins after the wait',
      );
      await c.disconnect().catch(() => {});
      await sleeper.sleep(wait);
    }
  };
  const running = run();
  return {
    state: () => state,
    async close() {
      sleeper.close();
      await running;
      await current?.disconnect().catch(() => {});
      state = 'closed';
    },
  };
}
