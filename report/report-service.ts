/**
 * Renders each finalized constat's report once, after finalization and never in its way:
 * finalization only queues a job (persistence: `document_renders`); this worker leases jobs,
 * prints the PDF, stores it in the media store under its SHA-256, and records the version and
 * its announcement to the insurers (`dz.constat.document_ready.v1`, through the outbox) in one
 * transaction. A failed render is retried with backoff; jobs survive a restart (they are rows,
 * and a start-up scan queues constats finalized while no instance recorded a job).
 *
 * Without Chromium the worker does not run: jobs wait for an instance that has it, and a
 * request for a report that does not exist yet answers UNAVAILABLE.
 */
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { MediaStore } from '../media/media-store.js';
import type {
  DocumentsRepository,
  RenderJob,
  StoredDocument,
} from '../persistence/documents-repository.js';
import type { StoredConstat } from '../persistence/constats-repository.js';
import { TEMPLATE_VERSION } from './report-template.js';
import { ReportRenderer } from './report-renderer.js';
import { BrowserPool } from './browser-pool.js';
import { chromiumPath } from './chromium.js';
import {
  cloudEvent,
  eventHeaders,
  EventType,
  type ConstatDocumentReadyData,
} from '../integrations/events.js';

export const PDF_CONTENT_TYPE = 'application/pdf';

export interface ReportServiceOptions {
  documents: DocumentsRepository;
  constats: { get(id: string): Promise<StoredConstat | null> };
  media: MediaStore;
  /** Absent when no Chromium was found: the feature is unavailable on this instance. */
  renderer: ReportRenderer | undefined;
  /** Why the feature is unavailable (for /readyz and errors). */
  unavailableReason?: string;
  logger: Logger;
  /** Renders at once (and jobs leased per poll). */
  concurrency: number;
  /** How often to look for jobs when not woken. */
  pollMs: number;
  /** How long a leased job is kept from other instances (longer than a render can take). */
  leaseMs: number;
  /** Lifetime of the download link in the document_ready event. */
  urlTtlSeconds: number;
  /** After a report was stored: subscribers of the constat are told (constatChanged). */
  onRendered?: (seconds: number, constatId: string) => void;
  onFailed?: () => void;
}

/** Media key of a report: content-addressed, so two renders never overwrite each other. */
export function reportKey(constatId: string, sha256: string): string {
  return `reports/${constatId}/${sha256}.pdf`;
}

/** Insurer topics a document is announced on: each distinct insurer of the constat. */
function insurerTopics(constat: StoredConstat): string[] {
  return [...new Set([constat.insurerA, constat.insurerB].filter((t): t is string => !!t))];
}

export class ReportService {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private closed = false;

  constructor(private readonly options: ReportServiceOptions) {}

  get available(): boolean {
    return this.options.renderer !== undefined;
  }

  get unavailableReason(): string {
    return this.options.unavailableReason ?? 'PDF reports are unavailable on this server';
  }

  /** Queues constats that have no report (finalized while nothing rendered), then polls. */
  start(): void {
    if (!this.available) return;
    this.options.documents.enqueueMissing().then(
      (n) => {
        if (n > 0) this.options.logger.info({ queued: n }, 'reports queued for finalized constats');
        this.wake();
      },
      (err: unknown) => this.options.logger.error({ err }, 'report scan failed'),
    );
    this.schedule();
  }

  /**
   * Called after a constat was committed. Queues its render (even on an instance without
   * Chromium, so another may do it) and never throws: finalization has already succeeded, and
   * the start-up scan catches a job that could not be written.
   */
  finalized(constatId: string): void {
    this.options.documents.enqueue(constatId, 'finalized').then(
      () => this.wake(),
      (err: unknown) =>
        this.options.logger.warn({ err, constatId }, 'could not queue the report render'),
    );
  }

  /** Renders a new version (after a template change); earlier versions stay retrievable. */
  async rerender(constatId: string): Promise<void> {
    await this.options.documents.enqueue(constatId, 'rerender');
    this.wake();
  }

  /** A download link for a stored version. */
  url(document: StoredDocument, ttlSeconds = this.options.urlTtlSeconds): Promise<string> {
    return this.options.media.downloadUrl(document.mediaKey, ttlSeconds);
  }

  /** Looks for work now rather than at the next poll. */
  wake(): void {
    if (this.closed || !this.available) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.drain()
      .catch((err: unknown) => this.options.logger.error({ err }, 'report worker failed'))
      .finally(() => {
        this.running = undefined;
        if (this.again) {
          this.again = false;
          this.wake();
        }
      });
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    await this.running;
  }

  private schedule(): void {
    if (this.closed) return;
    this.timer = setTimeout(() => {
      this.wake();
      this.schedule();
    }, this.options.pollMs);
    this.timer.unref();
  }

  private async drain(): Promise<void> {
    const { documents, concurrency, leaseMs } = this.options;
    for (;;) {
      if (this.closed) return;
      const jobs = await documents.claim(concurrency, leaseMs);
      if (jobs.length === 0) return;
      await Promise.all(jobs.map((job) => this.run(job)));
      if (jobs.length < concurrency) return;
    }
  }

  /** One job: render, store, record. Every failure is caught here and retried later. */
  private async run(job: RenderJob): Promise<void> {
    const { logger } = this.options;
    const started = performance.now();
    try {
      const recorded = await this.render(job);
      if (recorded) {
        this.options.onRendered?.((performance.now() - started) / 1000, job.constatId);
        logger.info(
          { constatId: job.constatId, version: recorded.version, sha256: recorded.sha256 },
          'report rendered',
        );
      }
    } catch (err) {
      this.options.onFailed?.();
      const retryInMs = backoffMs(job.attempts);
      logger.warn(
        {
          err: (err as Error).message,
          constatId: job.constatId,
          attempts: job.attempts,
          retryInMs,
        },
        'report render failed; will retry',
      );
      await this.options.documents
        .fail(job.constatId, (err as Error).message || 'render failed', retryInMs)
        .catch((e: unknown) =>
          logger.error({ err: e, constatId: job.constatId }, 'could not record a failed render'),
        );
    }
  }

  private async render(job: RenderJob): Promise<StoredDocument | undefined> {
    const { documents, media, constats, renderer } = this.options;
    const constat = await constats.get(job.constatId);
    if (!constat) throw new Error(`constat ${job.constatId} not found`);
    const pdf = await renderer!.render(constat);
    const sha256 = createHash('sha256').update(pdf).digest('hex');
    const mediaKey = reportKey(constat.id, sha256);
    await media.put(mediaKey, pdf, PDF_CONTENT_TYPE);
    const urlExpiresAt = new Date(Date.now() + this.options.urlTtlSeconds * 1000);
    const url = await media.downloadUrl(mediaKey, this.options.urlTtlSeconds);
    const outcome = await documents.complete(
      job,
      {
        template: TEMPLATE_VERSION,
        mediaKey,
        contentType: PDF_CONTENT_TYPE,
        byteSize: pdf.byteLength,
        sha256,
      },
      (document) => {
        const data: ConstatDocumentReadyData = {
          constatId: constat.id,
          contentHash: constat.contentHash,
          document: {
            version: document.version,
            sha256: document.sha256,
            byteSize: document.byteSize,
            contentType: document.contentType,
            template: document.template,
            createdAt: document.createdAt.toISOString(),
          },
          url,
          urlExpiresAt: urlExpiresAt.toISOString(),
        };
        const event = cloudEvent(EventType.documentReady, constat.id, data);
        return {
          topics: insurerTopics(constat),
          key: constat.id,
          payload: event,
          headers: eventHeaders(event),
        };
      },
    );
    if (outcome.kind === 'recorded') return outcome.document;
    // Another instance recorded this constat's report first: ours is an orphan, unless it is
    // byte for byte the one recorded (same key).
    const recorded = (await documents.listFor([constat.id])).get(constat.id) ?? [];
    if (!recorded.some((d) => d.mediaKey === mediaKey)) await media.delete(mediaKey);
    return undefined;
  }
}

/** 2 s, 4 s, 8 s … up to 10 minutes, with jitter so instances do not retry in step. */
export function backoffMs(attempts: number): number {
  const base = Math.min(600_000, 1_000 * 2 ** Math.min(attempts, 20));
  return Math.round(base * (0.8 + Math.random() * 0.4));
}

export interface ReportSetup {
  /** CHROMIUM_PATH as configured (absent: look for Debian's). */
  chromiumPath: string | undefined;
  concurrency: number;
  timeoutMs: number;
  pollMs: number;
  urlTtlSeconds: number;
}

/**
 * The report feature of one instance: with Chromium, a warm browser, the renderer and the
 * worker; without, the same service reporting itself unavailable (jobs still queue).
 */
export function createReportService(
  setup: ReportSetup,
  deps: Pick<
    ReportServiceOptions,
    'documents' | 'constats' | 'media' | 'logger' | 'onRendered' | 'onFailed'
  > & {
    insurerName: (uid: string) => string;
    publicUrl: () => string;
  },
): { service: ReportService; pool: BrowserPool | undefined } {
  const executablePath = chromiumPath(
    setup.chromiumPath ? { CHROMIUM_PATH: setup.chromiumPath } : {},
  );
  const pool = executablePath
    ? new BrowserPool({
        executablePath,
        concurrency: setup.concurrency,
        timeoutMs: setup.timeoutMs,
        logger: deps.logger,
      })
    : undefined;
  const service = new ReportService({
    ...deps,
    renderer: pool
      ? new ReportRenderer({
          pool,
          insurerName: deps.insurerName,
          publicUrl: deps.publicUrl,
          media: deps.media,
        })
      : undefined,
    unavailableReason: `PDF reports are unavailable: Chromium not found (${
      setup.chromiumPath
        ? `CHROMIUM_PATH=${setup.chromiumPath}`
        : `install Debian's chromium or set CHROMIUM_PATH`
    })`,
    concurrency: setup.concurrency,
    pollMs: setup.pollMs,
    leaseMs: setup.timeoutMs + 30_000,
    urlTtlSeconds: setup.urlTtlSeconds,
  });
  return { service, pool };
}
