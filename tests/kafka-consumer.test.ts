/**
 * The group consumer the server and the AI service run (`KafkaClient.consume`), on the run's
 * real broker: a crash that kafkajs does not restart after is restarted here, and the message
 * that was being handled is delivered again.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import type { Kafka, Producer } from 'kafkajs';
import { createKafkaClient, type KafkaClient } from '../integrations/kafka.js';
import { produce, testKafka, testProducer, waitForTopics } from './support/kafka.js';
import { eventually } from './support/signing.js';
import { setUp } from './support/suite.js';

interface Ctx {
  kafka: Kafka;
  producer: Producer;
  client: KafkaClient;
}

const test = suite<Ctx>('Kafka group consumer', {} as Ctx);

setUp(test, async (ctx) => {
  ctx.kafka = testKafka();
  ctx.producer = await testProducer(ctx.kafka);
  ctx.client = createKafkaClient(
    {
      brokers: process.env.KAFKA_BROKERS!.split(','),
      clientId: 'consumer-test',
      partitions: 1,
      replicationFactor: 1,
    },
    pino({ level: 'silent' }),
  );
});

test.after(async (ctx) => {
  await ctx.producer?.disconnect().catch(() => {});
  await ctx.client?.close();
});

test('a crash kafkajs would not restart after: a new member joins and the message comes again', async (ctx) => {
  const topic = `consumer-test-${randomBytes(4).toString('hex')}`;
  await ctx.client.ensureTopics([topic]);
  await waitForTopics(ctx.kafka, [topic]);
  const seen: string[] = [];
  const states = new Set<string>();
  let thrown = 0;
  const consumer = ctx.client.consume({
    groupId: `consumer-test-${randomBytes(4).toString('hex')}`,
    topics: [topic],
    eachMessage: async ({ message }) => {
      const value = message.value!.toString();
      seen.push(value);
      if (value === 'first' && thrown++ === 0) {
        // What kafkajs treats as final (a protocol error, no broker while rejoining…).
        throw Object.assign(new Error('not retriable'), { retriable: false });
      }
    },
  });
  try {
    const watch = setInterval(() => states.add(consumer.state()), 20);
    await produce(ctx.producer, topic, { key: 'k', value: 'first' });
    await produce(ctx.producer, topic, { key: 'k', value: 'second' });
    await eventually(async () => (seen.includes('second') ? true : undefined), 60_000).catch(
      (err: Error) => {
        throw new Error(
          `${err.message}: the consumer did not come back; seen ${JSON.stringify(seen)}, state "${consumer.state()}"`,
        );
      },
    );
    clearInterval(watch);
    assert.equal(seen, ['first', 'first', 'second'], 'the failed message again, then the next');
    assert.ok(
      [...states].some((s) => s === 'restarting after: not retriable'),
      `the state said why it restarted: ${[...states].join(' | ')}`,
    );
    await eventually(async () => (consumer.state() === 'consuming' ? true : undefined), 30_000);
  } finally {
    await consumer.close();
  }
  assert.is(consumer.state(), 'closed');
});

test.run();
