/**
 * Test servers: an in-process instance on a fresh PostgreSQL database (or embedded PGlite),
 * with Redis-backed sessions under a keyspace of its own, torn down completely by `stop()`.
 * `spawnServer` runs the real `constat serve` process for restart and kill tests.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { loadConfig } from '../../server/config.js';
import { startServer, type RunningServer } from '../../server/constat-server.js';
import { createTestDatabase, type TestDatabase } from '../../persistence/test-database.js';
import { mintDevelopmentToken } from '../../server/auth.js';
import { spawnServer as spawnProcess, type ServerProcess } from '../../scripts/sim/server.js';
import { gql, OPEN_SESSION, JOIN_SESSION } from '../../client/graphql.js';
import { redisUrl } from '../../scripts/local-services.js';
import { deleteRedisKeys as deleteKeysUnder } from '../../scripts/delete-redis-keys.js';

export const TEST_SECRET = 'constat-test-secret-0123456789abcdef';
export const REDIS_URL = redisUrl();

export interface TestServerOptions {
  database?: 'postgres' | 'pglite';
  /** The hub: Redis streams (several instances may share sessions) or in process. */
  hub?: 'redis' | 'memory';
  env?: Record<string, string>;
  /** Reuse an existing database (a restarted server). */
  databaseUrl?: string;
  dataDir?: string;
  redisPrefix?: string;
  /** Connect to the Kafka broker of the test run (KAFKA_BROKERS), with a consumer group of its own. */
  kafka?: boolean;
}

export interface TestServer {
  url: string;
  wsUrl: string;
  server: RunningServer;
  databaseUrl: string | undefined;
  dataDir: string;
  redisPrefix: string;
  /** Stops the server only (storage stays, for a restart). */
  stopServer(): Promise<void>;
  /** Stops the server and removes its database, data folder and Redis keys. */
  stop(): Promise<void>;
}

export async function startTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  const database = options.database ?? 'postgres';
  const hub = options.hub ?? 'redis';
  let testDb: TestDatabase | undefined;
  let databaseUrl = options.databaseUrl;
  if (database === 'postgres' && !databaseUrl) {
    testDb = await createTestDatabase();
    databaseUrl = testDb.url;
  }
  const dataDir = options.dataDir ?? (await mkdtemp(path.join(os.tmpdir(), 'constat-test-')));
  const redisPrefix = options.redisPrefix ?? `constat-test:${randomBytes(6).toString('hex')}:`;
  const config = loadConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    DATA_DIR: dataDir,
    AUTH_JWT_SECRET: TEST_SECRET,
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'silent',
    DRAFT_SAVE_DEBOUNCE_MS: '200',
    // A video takes seconds of CPU per constat: only tests/ai-video.test.ts turns it on.
    AI_VIDEO: 'false',
    // The run's PGlite template (scripts/test-run.ts): embedded servers skip initdb.
    ...(process.env.PGLITE_TEMPLATE ? { PGLITE_TEMPLATE: process.env.PGLITE_TEMPLATE } : {}),
    ...(database === 'postgres' ? { DATABASE_URL: databaseUrl! } : {}),
    ...(hub === 'redis' ? { REDIS_URL, REDIS_KEY_PREFIX: redisPrefix } : {}),
    ...(options.kafka ? kafkaEnv() : {}),
    ...options.env,
  });
  const logger = pino({ level: config.logLevel });
  let server: RunningServer;
  try {
    server = await startServer(config, logger);
  } catch (err) {
    await testDb?.drop();
    throw err;
  }
  let serverStopped = false;
  const stopServer = async () => {
    if (serverStopped) return;
    serverStopped = true;
    await server.stop();
  };
  return {
    url: server.url,
    wsUrl: server.url.replace(/^http/, 'ws') + '/v1/sync',
    server,
    databaseUrl,
    dataDir,
    redisPrefix,
    stopServer,
    async stop() {
      await stopServer();
      await testDb?.drop();
      if (!options.dataDir) await rm(dataDir, { recursive: true, force: true });
      if (hub === 'redis') await deleteRedisKeys(redisPrefix);
    },
  };
}

/** Environment for a server that uses the test run's Kafka broker. */
export function kafkaEnv(): Record<string, string> {
  const brokers = process.env.KAFKA_BROKERS;
  if (!brokers) throw new Error('KAFKA_BROKERS is not set: run the tests through `npm test`');
  return {
    KAFKA_BROKERS: brokers,
    KAFKA_CONSUMER_GROUP: `constat-test-${randomBytes(4).toString('hex')}`,
    KAFKA_TOPIC_PARTITIONS: '1',
    OUTBOX_POLL_MS: '50',
  };
}

/** Deletes the keys a test server wrote under `prefix`. */
export function deleteRedisKeys(prefix: string): Promise<void> {
  return deleteKeysUnder(REDIS_URL, prefix);
}

export function token(
  userId: string,
  deviceId: string,
  extra: {
    roles?: string[];
    expiresIn?: string | number;
    secret?: string;
    issuer?: string;
    audience?: string;
  } = {},
): Promise<string> {
  return mintDevelopmentToken({
    ...extra,
    secret: extra.secret ?? TEST_SECRET,
    userId,
    deviceId,
  });
}

// The simulator's GraphQL client: the same calls a phone makes.
export { gql, OPEN_SESSION, JOIN_SESSION, type GraphQLResponse } from '../../client/graphql.js';

export interface Pair {
  sessionId: string;
  tokenA: string;
  tokenB: string;
  syncUrl: string;
}

/** Opens a session as party A and joins it as party B. */
export async function openPair(
  baseUrl: string,
  tag = randomBytes(3).toString('hex'),
  formVersion = 'dz',
): Promise<Pair> {
  const tokenA = await token(`user-a-${tag}`, `device-a-${tag}`);
  const tokenB = await token(`user-b-${tag}`, `device-b-${tag}`);
  const opened = await gql(baseUrl, tokenA, OPEN_SESSION, { formVersion });
  if (opened.errors) throw new Error(`openSession failed: ${JSON.stringify(opened.errors)}`);
  const joined = await gql(baseUrl, tokenB, JOIN_SESSION, {
    code: opened.data!.openSession.joinCode,
  });
  if (joined.errors) throw new Error(`joinSession failed: ${JSON.stringify(joined.errors)}`);
  return {
    sessionId: opened.data!.openSession.session.id,
    tokenA,
    tokenB,
    syncUrl: opened.data!.openSession.syncUrl,
  };
}

export { freePort } from '../../scripts/free-port.js';
export type { ServerProcess };

/** Runs `constat serve` as a separate process (test secret, info logs) until it listens. */
export function spawnServer(env: Record<string, string>): Promise<ServerProcess> {
  return spawnProcess({
    env: { AUTH_JWT_SECRET: TEST_SECRET, LOG_LEVEL: 'info', AI_VIDEO: 'false', ...env },
    name: 'constat serve',
  });
}
