/**
 * Two instances of one deployment, as behind a load balancer: instance 1 consumes Kafka,
 * instance 2 shares its PostgreSQL database and Redis keyspace and has no broker (so whatever
 * it tells a subscriber about a claim event came through Redis). Also a client of the shared
 * database and a Kafka producer for the test. Filled in step by step, so a start that failed
 * half way is still stopped completely.
 */
import postgres from 'postgres';
import type { Kafka, Producer } from 'kafkajs';
import { startTestServer, type TestServer } from './server.js';
import { testKafka, testProducer } from './kafka.js';

export interface TwoInstances {
  s1: TestServer;
  s2: TestServer;
  /** A client of the shared database. */
  sql: postgres.Sql;
  kafka: Kafka;
  producer: Producer;
}

export async function startTwoInstances(
  ctx: Partial<TwoInstances>,
  env: Record<string, string> = {},
): Promise<void> {
  ctx.s1 = await startTestServer({ database: 'postgres', hub: 'redis', kafka: true, env });
  ctx.s2 = await startTestServer({
    database: 'postgres',
    hub: 'redis',
    databaseUrl: ctx.s1.databaseUrl!,
    redisPrefix: ctx.s1.redisPrefix,
    env,
  });
  ctx.sql = postgres(ctx.s1.databaseUrl!, { max: 2, onnotice: () => {} });
  ctx.kafka = testKafka();
  ctx.producer = await testProducer(ctx.kafka);
}

export async function stopTwoInstances(ctx: Partial<TwoInstances>): Promise<void> {
  await ctx.producer?.disconnect().catch(() => {});
  await ctx.sql?.end({ timeout: 5 });
  // Instance 2 owns neither the database nor (until the end) the keyspace: stop it first.
  await ctx.s2?.stopServer();
  await ctx.s1?.stop();
  await ctx.s2?.stop();
}
