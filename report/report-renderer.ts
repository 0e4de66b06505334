/**
 * A stored constat to PDF bytes: reads what the report shows from the constat row, draws the
 * QR code of its verification URL, fills the template and has the browser print it.
 */
import { createHash } from 'node:crypto';
import type { MediaStore } from '../media/media-store.js';
import { attachmentKey } from '../media/attachment-service.js';
import type { StoredConstat } from '../persistence/constats-repository.js';
import type { SignatureRecord } from '../constat/constat-doc.js';
import type { Role } from '../constat/permissions.js';
import { getFormVersion, DEFAULT_FORM_VERSION } from '../constat/form-versions.js';
import type { BrowserPool } from './browser-pool.js';
import { renderReportHtml, type ReportAttachment, type ReportInput } from './report-template.js';

export interface ReportRendererOptions {
  pool: BrowserPool;
  /** Company uid -> display name. */
  insurerName: (uid: string) => string;
  /** Public origin of the verification page (`https://host`), read at each render. */
  publicUrl: () => string;
  /** Where the attached photos are, for their thumbnails; absent: listed without pictures. */
  media?: MediaStore;
  /** Bytes of photos embedded in one report, in all; the rest are listed without a picture. */
  thumbnailBudgetBytes?: number;
}

/** Photo types Chromium draws; HEIC/HEIF photos and PDFs are listed without a picture. */
const DRAWABLE = new Set(['image/jpeg', 'image/png', 'image/webp']);
const DEFAULT_THUMBNAIL_BUDGET = 6 * 1024 * 1024;

type Json = Record<string, unknown>;
const asObject = (value: unknown): Json =>
  typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Json) : {};

/** The verification page of a constat, with its content hash: what the QR code holds. */
export function verifyUrl(publicUrl: string, constatId: string, contentHash: string): string {
  return `${publicUrl.replace(/\/$/, '')}/verify/${encodeURIComponent(constatId)}?h=${contentHash}`;
}

/** Attachments listed in the document (see docs/media.md): section.attachments id -> entry. */
export function attachmentsOf(content: unknown): ReportAttachment[] {
  const result: ReportAttachment[] = [];
  for (const section of ['accident', 'vehicleA', 'vehicleB']) {
    const entries = asObject(asObject(asObject(content)[section]).attachments);
    for (const [id, raw] of Object.entries(entries)) {
      const a = asObject(raw);
      result.push({
        id,
        section,
        kind: typeof a.kind === 'string' ? a.kind : '',
        contentType: typeof a.contentType === 'string' ? a.contentType : '',
        byteSize: typeof a.byteSize === 'number' ? a.byteSize : 0,
        sha256: typeof a.sha256 === 'string' ? a.sha256 : '',
        ...(typeof a.takenAt === 'string' ? { takenAt: a.takenAt } : {}),
      });
    }
  }
  return result;
}

export function reportInput(
  constat: StoredConstat,
  options: Pick<ReportRendererOptions, 'insurerName'>,
  url: string,
  qrSvg: string,
): ReportInput {
  const content = asObject(constat.content);
  const signatures = asObject(constat.signatures);
  const sigs: Partial<Record<Role, SignatureRecord>> = {};
  for (const role of ['A', 'B'] as const) {
    const s = asObject(signatures[role]);
    if (typeof s.signature === 'string') sigs[role] = s as unknown as SignatureRecord;
  }
  return {
    constatId: constat.id,
    form: getFormVersion(constat.formVersion) ?? getFormVersion(DEFAULT_FORM_VERSION)!,
    finalizedAt: constat.finalizedAt,
    contentHash: constat.contentHash,
    content: {
      accident: asObject(content.accident),
      vehicleA: asObject(content.vehicleA),
      vehicleB: asObject(content.vehicleB),
      sketch: asObject(content.sketch),
    },
    signatures: sigs,
    insurerName: options.insurerName,
    verifyUrl: url,
    qrSvg,
    attachments: attachmentsOf(constat.content),
  };
}

export class ReportRenderer {
  constructor(private readonly options: ReportRendererOptions) {}

  async render(constat: StoredConstat): Promise<Uint8Array> {
    const url = verifyUrl(this.options.publicUrl(), constat.id, constat.contentHash);
    const { default: QRCode } = await import('qrcode');
    const qrSvg = await QRCode.toString(url, { type: 'svg', margin: 0, errorCorrectionLevel: 'M' });
    const input = reportInput(constat, this.options, url, qrSvg);
    await this.addThumbnails(constat.sessionId, input.attachments);
    const { html, footer } = renderReportHtml(input);
    return this.options.pool.pdf(html, footer);
  }

  /**
   * Embeds the photos the drivers signed, as data: URIs (the page loads nothing). Only bytes
   * whose SHA-256 is the one in the signed content are shown: a picture in the report is the
   * picture both signed. Photos are embedded as stored (no resampling library here), so a
   * budget bounds the report's size.
   */
  private async addThumbnails(sessionId: string, attachments: ReportAttachment[]): Promise<void> {
    const { media } = this.options;
    if (!media) return;
    let budget = this.options.thumbnailBudgetBytes ?? DEFAULT_THUMBNAIL_BUDGET;
    for (const a of attachments) {
      if (!DRAWABLE.has(a.contentType) || a.byteSize <= 0 || a.byteSize > budget) continue;
      const bytes = await media.get(attachmentKey(sessionId, a.id)).catch(() => undefined);
      if (!bytes || createHash('sha256').update(bytes).digest('hex') !== a.sha256) continue;
      budget -= bytes.byteLength;
      a.thumbnail = `data:${a.contentType};base64,${Buffer.from(bytes).toString('base64')}`;
    }
  }
}
