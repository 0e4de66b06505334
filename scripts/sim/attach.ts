/**
 * What a phone does to attach a photo or a scanned paper (docs/media.md): ask for an upload
 * slot, send the bytes with the slot's method, URL and headers, then record the attachment in
 * its own section's `attachments` map. Used by the simulator, the tests and the benchmark.
 */
import type * as Y from 'yjs';
import { gql, type GraphQLResponse } from '../../client/graphql.js';
import type {
  AttachmentEntry as DocumentAttachment,
  AttachmentSection,
} from '../../constat/attachments.js';

export interface UploadSlot {
  attachmentId: string;
  url: string;
  method: string;
  headers: Array<{ name: string; value: string }>;
  expiresAt: string;
}

/** The entry a phone writes under the attachment id (the section is where it writes it). */
export type AttachmentEntry = Omit<DocumentAttachment, 'section'>;

export const REQUEST_UPLOAD = `mutation Upload($sessionId: ID!, $kind: String!, $contentType: String!, $byteSize: Int!, $sha256: String!) {
  requestUpload(sessionId: $sessionId, kind: $kind, contentType: $contentType, byteSize: $byteSize, sha256: $sha256) {
    attachmentId url method headers { name value } expiresAt
  }
}`;

export function requestUpload(
  baseUrl: string,
  bearer: string,
  sessionId: string,
  file: { kind: string; contentType: string; byteSize: number; sha256: string },
): Promise<GraphQLResponse<{ requestUpload: UploadSlot }>> {
  return gql(baseUrl, bearer, REQUEST_UPLOAD, { sessionId, ...file });
}

/** Sends the bytes as the slot says; resolves with the HTTP status. */
export async function uploadBytes(slot: UploadSlot, bytes: Uint8Array): Promise<number> {
  const res = await fetch(slot.url, {
    method: slot.method,
    headers: Object.fromEntries(slot.headers.map((h) => [h.name, h.value])),
    body: bytes as Uint8Array<ArrayBuffer>,
    signal: AbortSignal.timeout(60_000),
  });
  await res.arrayBuffer();
  return res.status;
}

/** Records the attachment in the device's document, as one plain value under its id. */
export function recordAttachment(
  doc: Y.Doc,
  section: AttachmentSection,
  entry: AttachmentEntry,
): void {
  const map = doc.getMap(section).get('attachments') as Y.Map<unknown> | undefined;
  if (!map) throw new Error(`${section}.attachments is missing from the document`);
  map.set(entry.id, { ...entry });
}

/** Slot, upload, record: the whole attachment of one file. Throws with the server's reason. */
export async function attachFile(
  baseUrl: string,
  bearer: string,
  sessionId: string,
  doc: Y.Doc,
  section: AttachmentSection,
  file: { kind: string; contentType: string; bytes: Uint8Array; sha256: string; takenAt?: string },
): Promise<AttachmentEntry & { uploadMs: number }> {
  const slotted = await requestUpload(baseUrl, bearer, sessionId, {
    kind: file.kind,
    contentType: file.contentType,
    byteSize: file.bytes.byteLength,
    sha256: file.sha256,
  });
  if (slotted.errors) throw new Error(`requestUpload: ${slotted.errors[0]!.message}`);
  const slot = slotted.data!.requestUpload;
  const started = performance.now();
  const status = await uploadBytes(slot, file.bytes);
  const uploadMs = performance.now() - started;
  if (status !== 200) throw new Error(`upload answered HTTP ${status}`);
  const entry: AttachmentEntry = {
    id: slot.attachmentId,
    kind: file.kind,
    contentType: file.contentType,
    byteSize: file.bytes.byteLength,
    sha256: file.sha256,
    ...(file.takenAt ? { takenAt: file.takenAt } : {}),
  };
  recordAttachment(doc, section, entry);
  return { ...entry, uploadMs };
}
