/**
 * The AI service inside `constat serve` when no broker is configured: the same core and
 * pipeline, fed from core's outbox and delivering into core's timeline through the functions
 * core passes in. Nothing here knows core's internals.
 */
import type postgres from 'postgres';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { EmbeddedRunner, type FinalizedFeed } from './embedded-runner.js';
import type { AiSinks } from './deliver.js';
import type { MediaStore } from '../media/media-store.js';
import { aiMediaOver } from './media.js';
import { createAiCore, type AiSettings } from './service.js';

export interface EmbeddedAi {
  wake(): void;
  /** The OCR function's state for /readyz: `available (engine)` or `unavailable: why`. */
  ocrState(): string;
  ready(): Promise<void>;
  close(): Promise<void>;
}

export async function startEmbeddedAi(opts: {
  sql: postgres.Sql;
  settings: AiSettings;
  feed: FinalizedFeed;
  results: AiSinks['results'];
  logger: Logger;
  registry?: Registry;
  pollMs: number;
  /** Core's media store, shared (the OCR function reads the papers from it). */
  media?: MediaStore;
}): Promise<EmbeddedAi> {
  const core = await createAiCore(
    opts.sql,
    opts.settings,
    opts.logger,
    opts.registry,
    opts.media ? aiMediaOver(opts.media) : undefined,
  );
  const runner = new EmbeddedRunner({
    feed: opts.feed,
    sinks: { results: opts.results },
    pipeline: core.pipeline,
    store: core.store,
    metrics: core.metrics,
    logger: opts.logger,
    pollMs: opts.pollMs,
  });
  runner.start();
  return {
    wake: () => runner.wake(),
    ocrState: () => core.describe.ocr,
    ready: () => core.store.ping(),
    async close() {
      await runner.close();
      await core.close();
    },
  };
}
