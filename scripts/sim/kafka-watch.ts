/**
 * Confirms that finalized constats reached Kafka: a consumer of its own (a fresh group, from
 * the topics' current end) reads the insurer topics and remembers which constat ids (the
 * message key) it saw on which topic.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { createKafkaClient, type KafkaClient } from '../../integrations/kafka.js';
import { sleep } from '../../client/device.js';

export class KafkaWatch {
  readonly #client: KafkaClient;
  /** constat id → topic → when it was seen (performance.now()). */
  readonly #seen = new Map<string, Map<string, number>>();
  /** `${constat id} ${topic} ${event type}` → messages read (more than one: delivered twice). */
  readonly #count = new Map<string, number>();

  private constructor(client: KafkaClient) {
    this.#client = client;
  }

  /**
   * Subscribes to `topics` and resolves once the consumer has joined its group and started
   * fetching, so every event published afterwards is seen. Topics the server has not created
   * yet are waited for (up to `timeoutMs`).
   */
  static async start(
    brokers: string[],
    topics: string[],
    logger: Logger,
    timeoutMs = 60_000,
  ): Promise<KafkaWatch> {
    const client = createKafkaClient(
      { brokers, clientId: 'constat-simulate', partitions: 1, replicationFactor: 1 },
      logger,
    );
    const watch = new KafkaWatch(client);
    const consumer = client.consumer(`constat-simulate-${randomBytes(4).toString('hex')}`);
    const deadline = Date.now() + timeoutMs;
    try {
      await consumer.connect();
      for (;;) {
        try {
          await consumer.subscribe({ topics, fromBeginning: false });
          break;
        } catch (err) {
          if (Date.now() > deadline) throw err;
          await sleep(500); // the server creates its topics when it connects
        }
      }
      const fetching = new Promise<void>((resolve) => {
        const off = consumer.on(consumer.events.FETCH_START, () => {
          off();
          resolve();
        });
      });
      await consumer.run({
        eachMessage: async ({ topic, message }) => {
          const key = message.key?.toString();
          if (!key) return;
          // Both event modes carry the type in a ce_type header.
          const type = message.headers?.ce_type?.toString() ?? '';
          const counted = `${key} ${topic} ${type}`;
          watch.#count.set(counted, (watch.#count.get(counted) ?? 0) + 1);
          let topicsSeen = watch.#seen.get(key);
          if (!topicsSeen) watch.#seen.set(key, (topicsSeen = new Map()));
          if (!topicsSeen.has(topic)) topicsSeen.set(topic, performance.now());
        },
      });
      await Promise.race([
        fetching,
        sleep(Math.max(0, deadline - Date.now())).then(() => {
          throw new Error('the Kafka consumer did not start fetching');
        }),
      ]);
    } catch (err) {
      await client.close();
      throw err;
    }
    return watch;
  }

  /** When the event of `constatId` was seen on `topic`, if it was. */
  seenAt(constatId: string, topic: string): number | undefined {
    return this.#seen.get(constatId)?.get(topic);
  }

  /** How many events of `type` about `constatId` were read from `topic`. */
  deliveries(constatId: string, topic: string, type: string): number {
    return this.#count.get(`${constatId} ${topic} ${type}`) ?? 0;
  }

  /** Waits until the constat was seen on every topic; returns the topics still missing. */
  async waitFor(constatId: string, topics: string[], timeoutMs: number): Promise<string[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const missing = topics.filter((t) => this.seenAt(constatId, t) === undefined);
      if (missing.length === 0 || Date.now() > deadline) return missing;
      await sleep(50);
    }
  }

  close(): Promise<void> {
    return this.#client.close();
  }
}
