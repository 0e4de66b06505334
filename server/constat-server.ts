/**
 * Assembles one server instance from its configuration: storage, session store, hub, live
 * documents, HTTP app and websocket endpoint. `stop()` releases everything in reverse order
 * and works even when start-up failed half way.
 */
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { serve } from '@hono/node-server';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Config } from './config.js';
import { createTokenVerifier } from './auth.js';
import { Metrics } from './metrics.js';
import { createApp, type ReadinessCheck } from './app.js';
import { createGraphQL } from './graphql/yoga.js';
import { createSyncEndpoint } from './sync-endpoint.js';
import { openDatabase, type Database } from '../persistence/database.js';
import { migrate } from '../persistence/migrate.js';
import { createDraftsRepository } from '../persistence/drafts-repository.js';
import { createSessionsRepository } from '../persistence/sessions-repository.js';
import { RedisSessionStore } from '../sync/redis-session-store.js';
import { redisKeys } from '../sync/redis-keys.js';
import { MemoryHub, type Hub } from '../sync/hub.js';
import { LiveSessions } from '../sync/live-sessions.js';
import { SessionService } from '../sync/session-service.js';
import type { SessionStore } from '../sync/session-store.js';

export interface RunningServer {
  /** http://host:port of this instance. */
  url: string;
  port: number;
  metrics: Metrics;
  stop(): Promise<void>;
}

export interface StartOptions {
  /** Redis key prefix (tests give each run its own keyspace). */
  redisPrefix?: string;
}

export async function startServer(
  config: Config,
  logger: Logger,
  options: StartOptions = {},
): Promise<RunningServer> {
  const cleanups: Array<() => Promise<void>> = [];
  const stop = async () => {
    for (const cleanup of cleanups.splice(0).reverse()) {
      try {
        await cleanup();
      } catch (err) {
        logger.error({ err }, 'error while stopping');
      }
    }
  };
  try {
    const metrics = new Metrics();
    const readiness: ReadinessCheck[] = [];

    const db: Database = await openDatabase({
      databaseUrl: config.databaseUrl,
      dataDir: config.dataDir,
      logger,
    });
    cleanups.push(() => db.close());
    await migrate(db.sql, logger);
    readiness.push({ name: 'database', check: async () => void (await db.sql`select 1`) });
    const drafts = createDraftsRepository(db.sql);

    let store: SessionStore;
    const hub: Hub = new MemoryHub();
    cleanups.push(() => hub.close());
    if (config.redisUrl) {
      const redis = new Redis(config.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 3 });
      redis.on('error', (err) => logger.warn({ err: err.message }, 'redis connection error'));
      cleanups.push(async () => void (await redis.quit().catch(() => redis.disconnect())));
      await redis.connect();
      store = new RedisSessionStore(redis, redisKeys(config.redisKeyPrefix));
      readiness.push({ name: 'redis', check: async () => void (await redis.ping()) });
    } else {
      // No Redis: sessions live in the database, so a restarted server still knows them.
      store = createSessionsRepository(db.sql);
    }
    cleanups.push(() => store.close());

    const live = new LiveSessions(
      (sessionId, formVersion) => ({
        sessionId,
        formVersion,
        hub,
        drafts,
        logger,
        observer: metrics.syncObserver(),
        saveDebounceMs: config.drafts.saveDebounceMs,
        maxDocumentBytes: config.limits.maxDocumentBytes,
      }),
      logger,
    );
    cleanups.push(() => live.close());

    const sessions = new SessionService(store, drafts, config.sessions);
    const verifier = createTokenVerifier(config.auth);
    const app = createApp({
      verifier,
      yoga: createGraphQL(),
      services: { sessions, metrics },
      metrics,
      readiness,
      publicUrl: config.publicUrl,
      logger,
    });
    const endpoint = createSyncEndpoint({
      verifier,
      sessions,
      live,
      limits: config.limits,
      metrics,
      logger,
    });

    const server = await new Promise<Server>((resolve, reject) => {
      const s = serve({ fetch: app.fetch, port: config.port, hostname: config.host }, () =>
        resolve(s as Server),
      );
      s.once('error', reject);
    });
    // Closing the endpoint (devices) comes before saving the documents: pushed last, runs first.
    cleanups.push(
      () =>
        new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        }),
    );
    cleanups.push(() => endpoint.close());
    server.on('upgrade', (req, socket, head) => {
      if (!endpoint.handleUpgrade(req, socket, head)) {
        socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      }
    });

    const { port } = server.address() as AddressInfo;
    const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
    if (config.auth.kind === 'hs256' && config.auth.isDevelopmentSecret) {
      logger.warn(
        'using the built-in development JWT secret: set AUTH_JWT_SECRET or AUTH_JWKS_URL in production',
      );
    }
    logger.info(
      {
        port,
        database: db.kind,
        sessions: config.redisUrl ? 'redis' : 'database',
        hub: 'in-process',
      },
      'constat server listening',
    );
    return { url: `http://${host}:${port}`, port, metrics, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
