/**
 * Reading one paper, end to end: fetch the photo from the media store (refused unless its
 * SHA-256 is the event's), prepare it, OCR it in French and Arabic, extract the fields and
 * compare them with the party's section. Every failure of the photo or the engine becomes an
 * `unreadable` verdict with its reason; only an unreachable media store is thrown (transient).
 * The engine opens in the background at start, so the service never waits for model loading.
 */
import type { Logger } from 'pino';
import { Counter, Histogram, type Registry } from 'prom-client';
import type { VehicleSection } from '../../constat/constat-doc.js';
import { MediaRefused, type AiMedia, type EventAttachmentRef } from '../media.js';
import { openEngine, OcrEngineError, type EngineSettings, type OcrEngine } from './engine.js';
import { extractFields, type PaperKind, type ReadFields } from './extract.js';
import { compare, COMPARED, type FieldCheck, type Verdict } from './match.js';
import { prepareImage, UnusableImage, type ImageLimits } from './normalise.js';

export interface OcrSettings extends EngineSettings, ImageLimits {
  /** `false` (OCR_ENGINE=off): the function does not run. */
  enabled: boolean;
}

export interface PaperResult {
  verdict: Verdict;
  fields: FieldCheck[];
  /** Everything extracted, for the reviewer (compared or not). */
  read: ReadFields;
  reason?: string;
  engine: string;
  ms: number;
}

/**
 * The fields of one prepared image: a French and Arabic pass, then, when a field the
 * comparison needs is missing, a French-only pass that fills the gaps (the bilingual model
 * now and then drops a Latin value on a mixed line; the Arabic values stay from the first).
 */
export async function readPaper(
  engine: OcrEngine,
  kind: PaperKind,
  png: Buffer,
): Promise<ReadFields> {
  const read = extractFields(kind, await engine.recognize(png, 'fra+ara'));
  if (Object.keys(COMPARED[kind]).every((field) => read[field])) return read;
  return { ...extractFields(kind, await engine.recognize(png, 'fra')), ...read };
}

export class OcrReader {
  #state = 'unavailable: starting';
  readonly #opening: Promise<OcrEngine | undefined>;
  readonly #documents: Counter<'verdict'>;
  readonly #seconds: Histogram<'engine'>;

  constructor(
    private readonly settings: OcrSettings,
    private readonly media: AiMedia,
    logger: Logger,
    registry: Registry,
  ) {
    this.#documents = new Counter({
      name: 'constat_ai_ocr_documents_total',
      help: 'Papers read by OCR, by verdict',
      labelNames: ['verdict'] as const,
      registers: [registry],
    });
    this.#seconds = new Histogram({
      name: 'constat_ai_ocr_seconds',
      help: 'Time to read one paper (fetch, prepare, OCR, compare), by engine',
      labelNames: ['engine'] as const,
      buckets: [0.25, 0.5, 1, 2, 5, 10, 30, 60],
      registers: [registry],
    });
    this.#opening = openEngine(settings).then(
      (engine) => {
        this.#state = `available (${engine.name}: ${engine.version})`;
        logger.info(
          { engine: engine.name, version: engine.version, concurrency: settings.concurrency },
          'OCR engine ready',
        );
        return engine;
      },
      (err: unknown) => {
        this.#state = `unavailable: ${(err as Error).message}`;
        logger.warn({ err }, 'OCR engine could not start: papers are not read');
        return undefined;
      },
    );
  }

  /** `available (engine: version)` or `unavailable: why`, for /readyz and the logs. */
  get state(): string {
    return this.#state;
  }

  /** Resolves once the engine is open (or failed to open). */
  async ready(): Promise<boolean> {
    return (await this.#opening) !== undefined;
  }

  async read(
    kind: PaperKind,
    attachment: EventAttachmentRef,
    section: VehicleSection,
  ): Promise<PaperResult> {
    const started = performance.now();
    const engine = await this.#opening;
    const engineName = engine ? `${engine.name}` : 'none';
    const done = (r: Omit<PaperResult, 'engine' | 'ms'>): PaperResult => {
      const ms = Math.round(performance.now() - started);
      this.#documents.inc({ verdict: r.verdict });
      this.#seconds.observe({ engine: engineName }, ms / 1000);
      return { ...r, engine: engine ? `${engine.name} ${engine.version}` : 'none', ms };
    };
    const unreadable = (reason: string) =>
      done({ verdict: 'unreadable', fields: [], read: {}, reason });
    if (!engine) return unreadable(`no OCR engine (${this.#state})`);
    let bytes: Uint8Array;
    try {
      bytes = await this.media.read(attachment, { maxBytes: this.settings.maxBytes });
    } catch (err) {
      if (err instanceof MediaRefused)
        return unreadable(`photo refused (${err.reason}): ${err.message}`);
      throw err;
    }
    let read: ReadFields;
    try {
      read = await readPaper(engine, kind, await prepareImage(bytes, this.settings));
    } catch (err) {
      if (err instanceof UnusableImage) return unreadable(`${err.reason}: ${err.message}`);
      if (err instanceof OcrEngineError) return unreadable(`${err.reason}: ${err.message}`);
      throw err;
    }
    const comparison = compare(kind, read, section);
    return done({
      verdict: comparison.verdict,
      fields: comparison.fields,
      read,
      ...(comparison.reason ? { reason: comparison.reason } : {}),
    });
  }

  async close(): Promise<void> {
    await (await this.#opening)?.close();
  }
}
