/**
 * `constat ai`: the AI service as its own process, against `KAFKA_BROKERS`, with its own
 * database (`AI_DATABASE_URL`, or an embedded PGlite under `DATA_DIR/ai`) and its own HTTP port
 * for `/healthz`, `/readyz` and `/metrics`. Stops cleanly on SIGINT/SIGTERM.
 */
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import type { Logger } from 'pino';
import { openDatabase, type Database } from '../persistence/database.js';
import { createKafkaClient, type KafkaSettings } from '../integrations/kafka.js';
import { KafkaRunner } from './kafka-runner.js';
import { createAiCore, type AiCore, type AiSettings } from './service.js';

export interface AiServiceConfig extends AiSettings {
  kafka: KafkaSettings;
  groupId: string;
  databaseUrl: string | undefined;
  dataDir: string;
  port: number;
  host: string;
}

export interface RunningAiService {
  url: string;
  core: AiCore;
  runner: KafkaRunner;
  stop(): Promise<void>;
}

export async function startAiService(
  config: AiServiceConfig,
  logger: Logger,
): Promise<RunningAiService> {
  const cleanups: Array<() => Promise<void>> = [];
  const stop = async () => {
    for (const cleanup of cleanups.splice(0).reverse()) {
      await cleanup().catch((err: unknown) => logger.error({ err }, 'error while stopping'));
    }
  };
  try {
    const db: Database = await openDatabase({
      ...(config.databaseUrl ? { databaseUrl: config.databaseUrl } : {}),
      dataDir: path.join(config.dataDir, 'ai'),
      logger,
    });
    cleanups.push(() => db.close());
    const core = await createAiCore(db.sql, config, logger);
    cleanups.push(() => core.close());
    const runner = new KafkaRunner({
      client: createKafkaClient(config.kafka, logger),
      groupId: config.groupId,
      pipeline: core.pipeline,
      store: core.store,
      metrics: core.metrics,
      logger,
    });
    runner.start();
    cleanups.push(() => runner.close());

    const app = new Hono();
    app.get('/healthz', (c) => c.json({ status: 'ok' }));
    app.get('/readyz', async (c) => {
      const database = await core.store.ping().then(
        () => 'ok',
        (err: unknown) => (err as Error).message || 'failed',
      );
      const kafka = runner.ready ? 'ok' : 'not consuming yet';
      const ready = database === 'ok' && kafka === 'ok';
      return c.json(
        { status: ready ? 'ready' : 'not ready', checks: { database, kafka }, ...core.describe },
        ready ? 200 : 503,
      );
    });
    app.get('/metrics', async (c) =>
      c.text(await core.metrics.registry.metrics(), 200, {
        'content-type': core.metrics.registry.contentType,
      }),
    );
    const server = await new Promise<Server>((resolve, reject) => {
      const s = serve({ fetch: app.fetch, port: config.port, hostname: config.host }, () =>
        resolve(s as Server),
      );
      s.once('error', reject);
    });
    cleanups.push(
      () =>
        new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        }),
    );
    const { port } = server.address() as AddressInfo;
    const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
    logger.info({ port, database: db.kind, group: config.groupId }, 'constat AI service listening');
    return { url: `http://${host}:${port}`, core, runner, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

export async function main(config: AiServiceConfig, logger: Logger): Promise<void> {
  const service = await startAiService(config, logger);
  process.stderr.write(`constat AI service on ${service.url} (/healthz /readyz /metrics)\n`);
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping');
    const force = setTimeout(() => process.exit(1), 15_000);
    force.unref();
    service.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'stop failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
}
