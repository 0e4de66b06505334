/**
 * The OCR function: for each licence, registration card and insurance certificate a party
 * attached, one `dz.ai.ocr_verified.v1` event with the verdict, the fields compared (typed and
 * read) and everything read. The fraud scorer, which runs after it, turns the mismatches into
 * its `ocr_mismatch` signal (`ocrMismatches`).
 */
import type { FinalizedAttachment } from '../../media/attachment-service.js';
import type { ConstatFinalizedData } from '../../integrations/events.js';
import type { AiFunction } from '../functions.js';
import { PAPER_KINDS, type PaperKind } from './extract.js';
import type { FieldCheck, Verdict } from './match.js';
import type { OcrReader } from './reader.js';

export interface OcrData extends Record<string, unknown> {
  document: PaperKind;
  verified: boolean;
  verdict: Verdict;
  /** Names of the fields that differ (the v1 schema's list). */
  mismatches: string[];
  attachmentId: string;
  role: 'A' | 'B';
  sha256: string;
  fields: FieldCheck[];
  read: Record<string, string>;
  reason?: string;
  engine: string;
}

/** The papers among the event's attachments, in the event's order. */
export function papersOf(
  event: ConstatFinalizedData,
): Array<FinalizedAttachment & { kind: PaperKind }> {
  return (event.attachments ?? []).filter((a): a is FinalizedAttachment & { kind: PaperKind } =>
    (PAPER_KINDS as readonly string[]).includes(a.kind),
  );
}

export function ocrFunction(reader: OcrReader): AiFunction {
  return {
    name: 'ocr',
    service: 'constat-ai-ocr',
    eventType: 'dz.ai.ocr_verified.v1',
    items: ({ event }) => papersOf(event).map((a) => a.id),
    async run({ view, event, item }) {
      const paper = papersOf(event).find((a) => a.id === item);
      if (!paper) throw new Error(`no paper ${item} in the event`);
      const result = await reader.read(
        paper.kind,
        {
          sessionId: event.sessionId,
          id: paper.id,
          sha256: paper.sha256,
          byteSize: paper.byteSize,
        },
        view.vehicles[paper.role] ?? {},
      );
      return {
        document: paper.kind,
        verified: result.verdict === 'verified',
        verdict: result.verdict,
        mismatches: result.fields.filter((f) => !f.match).map((f) => f.field),
        attachmentId: paper.id,
        role: paper.role,
        sha256: paper.sha256,
        fields: result.fields,
        read: result.read,
        ...(result.reason ? { reason: result.reason } : {}),
        engine: result.engine,
      } satisfies OcrData;
    },
  };
}

/** What the fraud scorer quotes: one line per field that differs, with both values. */
export function ocrMismatchLines(results: unknown): string[] {
  if (!Array.isArray(results)) return [];
  return (results as Partial<OcrData>[]).flatMap((d) =>
    d.verdict !== 'mismatch'
      ? []
      : (d.fields ?? [])
          .filter((f) => !f.match)
          .map(
            (f) => `${d.role} ${d.document} ${f.field}: typed "${f.typed ?? ''}", read "${f.read}"`,
          ),
  );
}
