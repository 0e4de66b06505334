/**
 * Kafka for the integration suites, with kafkajs used directly (never the server's client):
 * a reader that records every message of some topics with its arrival time, a producer and a
 * wait for the topics the server creates. (The flow that finalizes a constat is
 * `finalizeConstat` in signing.ts.)
 *
 * Topics on the run's broker are shared by every suite: readers get a consumer group of their
 * own and callers filter what they read by their own constat ids, keys or event ids.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { Kafka, logLevel, type Consumer, type Producer, type Message } from 'kafkajs';
import { waitFor } from './device.js';

export function testKafka(brokers = process.env.KAFKA_BROKERS): Kafka {
  if (!brokers) throw new Error('KAFKA_BROKERS is not set: run the tests through `npm test`');
  return new Kafka({
    clientId: `constat-test-${randomBytes(3).toString('hex')}`,
    brokers: brokers.split(','),
    connectionTimeout: 3_000,
    logLevel: logLevel.NOTHING,
    retry: { retries: 8, initialRetryTime: 200, maxRetryTime: 2_000 },
  });
}

/** Resolves once every topic exists (the server creates them in the background at start). */
export async function waitForTopics(kafka: Kafka, topics: string[], timeoutMs = 60_000) {
  const admin = kafka.admin();
  const deadline = Date.now() + timeoutMs;
  try {
    await admin.connect();
    for (;;) {
      const existing = new Set(await admin.listTopics().catch(() => [] as string[]));
      const missing = topics.filter((t) => !existing.has(t));
      if (missing.length === 0) return;
      if (Date.now() > deadline) throw new Error(`topics never created: ${missing.join(', ')}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  } finally {
    await admin.disconnect().catch(() => {});
  }
}

export interface Received {
  topic: string;
  partition: number;
  offset: string;
  key: string | null;
  value: Buffer | null;
  headers: Record<string, string>;
  /** performance.now() when the reader got it. */
  at: number;
  /** The parsed JSON value, or undefined when it is not JSON. */
  json: any;
}

/**
 * Reads `topics` from the beginning with a consumer group of its own and keeps everything.
 * `start()` resolves once the group is joined, so what is produced afterwards is seen.
 */
export class TopicReader {
  readonly messages: Received[] = [];
  readonly #consumer: Consumer;
  readonly #topics: string[];
  #closed = false;

  constructor(
    kafka: Kafka,
    topics: string[],
    group = `test-reader-${randomBytes(4).toString('hex')}`,
  ) {
    this.#topics = topics;
    this.#consumer = kafka.consumer({
      groupId: group,
      allowAutoTopicCreation: false,
      maxWaitTimeInMs: 100,
    });
  }

  async start(timeoutMs = 30_000): Promise<void> {
    const joined = new Promise<void>((resolve) => {
      this.#consumer.on(this.#consumer.events.GROUP_JOIN, () => resolve());
    });
    await this.#consumer.connect();
    await this.#consumer.subscribe({ topics: this.#topics, fromBeginning: true });
    await this.#consumer.run({
      eachMessage: async ({ topic, partition, message }) => {
        const at = performance.now();
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(message.headers ?? {})) {
          headers[k] = Array.isArray(v) ? String(v[0]) : String(v ?? '');
        }
        let json: unknown;
        try {
          json = JSON.parse(message.value?.toString('utf8') ?? '');
        } catch {
          json = undefined;
        }
        this.messages.push({
          topic,
          partition,
          offset: message.offset,
          key: message.key?.toString('utf8') ?? null,
          value: message.value,
          headers,
          at,
          json,
        });
      },
    });
    await Promise.race([
      joined,
      new Promise((_, reject) =>
        setTimeout(() => reject(new Error('reader never joined its group')), timeoutMs).unref(),
      ),
    ]);
  }

  /** Messages on `topic` matching `filter`. */
  on(topic: string, filter: (m: Received) => boolean = () => true): Received[] {
    return this.messages.filter((m) => m.topic === topic && filter(m));
  }

  async waitFor(
    predicate: () => boolean,
    timeoutMs = 20_000,
    message = 'messages did not arrive',
  ): Promise<void> {
    await waitFor(predicate, timeoutMs, message);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#consumer.disconnect().catch(() => {});
  }
}

/** A plain producer for the test's own messages. */
export async function testProducer(kafka: Kafka): Promise<Producer> {
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  return producer;
}

export async function produce(producer: Producer, topic: string, message: Message): Promise<void> {
  await producer.send({ topic, acks: -1, messages: [message] });
}

export function median(values: number[]): number {
  const sorted = [...values].sort((x, y) => x - y);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * A claim event from the insurer `saa` as a structured Kafka message, written by hand from the
 * contract (docs/events.md, docs/events/<type>.json), with its event id.
 */
export function claimMessage(
  constatId: string,
  type: string,
  data: Record<string, unknown>,
): { id: string; message: Message } {
  const id = randomUUID();
  const event = {
    specversion: '1.0',
    id,
    source: 'saa',
    type,
    subject: constatId,
    time: new Date().toISOString(),
    datacontenttype: 'application/json',
    dataschema: `urn:constat:schema:${type}`,
    data,
  };
  return {
    id,
    message: {
      key: constatId,
      value: JSON.stringify(event),
      headers: { ce_type: type, ce_id: id, ce_source: 'saa' },
    },
  };
}
