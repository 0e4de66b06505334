/**
 * The AI service's parts, assembled once: its store (migrated), the functions with their data
 * (rule set, optional trained model, cost tables), the pipeline, metrics and the retention
 * sweep. Both transports (Kafka in `constat ai`, the embedded outbox feed in `constat serve`)
 * run on what this returns.
 */
import type postgres from 'postgres';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { createEventValidator } from '../integrations/event-validator.js';
import { loadCostTables } from './cost/tables.js';
import { costFunction, fraudFunction } from './functions.js';
import { loadModel, loadRuleSet } from './fraud/rules.js';
import { AiMetrics } from './metrics.js';
import { AiPipeline } from './pipeline.js';
import type { AiMedia } from './media.js';
import { ocrFunction } from './ocr/ocr-function.js';
import { OcrReader, type OcrSettings } from './ocr/reader.js';
import { createAiStore, migrateAiStore, type AiStore } from './store.js';

export interface AiSettings {
  /** Fraud rule set file; the shipped expert priors when absent. */
  rulesFile?: string;
  /** A model written by `constat ai train`; the rule set's weights when absent. */
  modelFile?: string;
  retentionDays: number;
  /** Reading the drivers' papers; absent or disabled: the OCR function is off. */
  ocr?: OcrSettings;
}

export interface AiCore {
  pipeline: AiPipeline;
  store: AiStore;
  metrics: AiMetrics;
  /** The rule set and model in use, for logs and /readyz. */
  describe: { ruleSet: string; model: string; costTables: string[]; readonly ocr: string };
  /** The OCR reader when it is on (tests and the benchmark wait for its engine). */
  ocr: OcrReader | undefined;
  close(): Promise<void>;
}

const PRUNE_EVERY_MS = 3600_000;

export async function createAiCore(
  sql: postgres.Sql,
  settings: AiSettings,
  logger: Logger,
  registry?: Registry,
  /** The media store (photos of the papers); without it the OCR function is off. */
  media?: AiMedia,
): Promise<AiCore> {
  // Data files first: a bad edit fails the start, naming the file.
  const rules = loadRuleSet(settings.rulesFile);
  const model = settings.modelFile ? loadModel(settings.modelFile) : undefined;
  const tables = loadCostTables();
  await migrateAiStore(sql, logger);
  const store = createAiStore(sql);
  const metrics = new AiMetrics(registry);
  const ocr =
    settings.ocr?.enabled && media
      ? new OcrReader(settings.ocr, media, logger, metrics.registry)
      : undefined;
  const ocrOff = !media ? 'unavailable: no media store' : 'unavailable: OCR_ENGINE=off';
  const pipeline = new AiPipeline({
    // OCR before fraud: its mismatches are one of the fraud signals.
    functions: [
      costFunction(tables),
      ...(ocr ? [ocrFunction(ocr)] : []),
      fraudFunction(rules, model),
    ],
    store,
    validator: createEventValidator(),
    metrics,
    logger,
  });
  const prune = () =>
    store
      .prune(settings.retentionDays)
      .then((n) => n > 0 && logger.info({ rows: n }, 'AI feature store: forgot expired rows'))
      .catch((err: unknown) => logger.warn({ err }, 'AI feature store retention sweep failed'));
  await prune();
  const timer = setInterval(() => void prune(), PRUNE_EVERY_MS);
  timer.unref();
  const describe = {
    ruleSet: rules.id,
    model: model?.id ?? rules.id,
    costTables: [tables.segments.version, tables.parts.version, tables.rates.version],
    get ocr() {
      return ocr?.state ?? ocrOff;
    },
  };
  logger.info(describe, 'AI functions ready');
  return {
    pipeline,
    store,
    metrics,
    describe,
    ocr,
    async close() {
      clearInterval(timer);
      await ocr?.close();
    },
  };
}
