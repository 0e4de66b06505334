/**
 * The AI service as its own process (`constat ai`): on Kafka, with its own database
 * (`AI_DATABASE_URL`, or an embedded PGlite under `DATA_DIR/ai`), and an HTTP app with
 * `/healthz`, `/readyz` and `/metrics` that the `constat` command serves on `AI_PORT`.
 */
import path from 'node:path';
import { Hono } from 'hono';
import type { Logger } from 'pino';
import { openDatabase, type Database } from '../persistence/database.js';
import { createKafkaClient, type KafkaSettings } from '../integrations/kafka.js';
import type { MediaStoreConfig } from '../media/create-media-store.js';
import { openAiMedia } from './media.js';
import { KafkaRunner } from './kafka-runner.js';
import { createAiCore, type AiCore, type AiSettings } from './service.js';

export interface AiServiceConfig extends AiSettings {
  kafka: KafkaSettings;
  groupId: string;
  databaseUrl: string | undefined;
  dataDir: string;
  /** The media store core uses (the photos of the papers); absent: OCR is off. */
  media?: MediaStoreConfig;
}

export interface AiService {
  core: AiCore;
  /** The main lane's consumer. */
  runner: KafkaRunner;
  /** /healthz, /readyz, /metrics. */
  app: Hono;
  stop(): Promise<void>;
}

export async function startAiService(config: AiServiceConfig, logger: Logger): Promise<AiService> {
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
    const media = config.media ? await openAiMedia(config.media) : undefined;
    if (media) cleanups.push(() => media.close());
    const core = await createAiCore(db.sql, config, logger, undefined, media);
    cleanups.push(() => core.close());
    // One consumer group per lane: the video's (`<group>-video`) never holds up the others.
    const runners = core.lanes.map(
      (lane) =>
        new KafkaRunner({
          client: createKafkaClient(config.kafka, logger),
          groupId: lane.name === 'main' ? config.groupId : `${config.groupId}-${lane.name}`,
          pipeline: lane.pipeline,
          store: core.store,
          metrics: core.metrics,
          logger,
        }),
    );
    for (const runner of runners) {
      runner.start();
      cleanups.push(() => runner.close());
    }
    const runner = runners[0]!;
    logger.info({ database: db.kind, group: config.groupId }, 'constat AI service started');
    return { core, runner, app: healthApp(core, runners), stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

function healthApp(core: AiCore, runners: KafkaRunner[]): Hono {
  const app = new Hono();
  app.get('/healthz', (c) => c.json({ status: 'ok' }));
  app.get('/readyz', async (c) => {
    const database = await core.store.ping().then(
      () => 'ok',
      (err: unknown) => (err as Error).message || 'failed',
    );
    const waiting = runners.find((r) => !r.ready);
    const kafka = waiting ? waiting.state : 'ok';
    const ready = database === 'ok' && kafka === 'ok';
    return c.json(
      {
        status: ready ? 'ready' : 'not ready',
        checks: { database, kafka },
        features: core.features,
        ...core.describe,
      },
      ready ? 200 : 503,
    );
  });
  app.get('/metrics', async (c) =>
    c.text(await core.metrics.registry.metrics(), 200, {
      'content-type': core.metrics.registry.contentType,
    }),
  );
  return app;
}
