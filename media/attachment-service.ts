/**
 * Attachments of a constat: upload slots, checking a file before it counts, what the app, the
 * insurers and the finalized event are shown, and the cleanup of files nobody kept.
 *
 * A file counts once the server has seen it in the store with the size, SHA-256 and type the
 * document names, uploaded by the party whose section names it. Stored objects are write-once
 * (a presigned PUT carries `If-None-Match: *`; the file store's route refuses an existing key),
 * so a file checked once stays checked; only its presence is confirmed again.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { ConstatError } from '../constat/errors.js';
import type { ConstatContent } from '../constat/constat-doc.js';
import type { Role } from '../constat/permissions.js';
import {
  isAttachmentKind,
  isAttachmentType,
  readAttachments,
  sectionOwner,
  ATTACHMENT_KINDS,
  ATTACHMENT_TYPES,
  type AttachmentEntry,
  type AttachmentSection,
} from '../constat/attachments.js';
import { MediaStoreError, type MediaStore, type UploadTarget } from './media-store.js';
import type {
  AttachmentRecord,
  AttachmentRecords,
  ExifFacts,
  NewAttachment,
} from './attachment-records.js';
import { inspectFile, typeMatches } from './inspect-file.js';

export interface AttachmentSettings {
  maxBytes: number;
  maxPerParty: number;
  uploadTtlSeconds: number;
  downloadTtlSeconds: number;
  retentionMs: number;
}

/** What the service reports to metrics. */
export interface AttachmentObserver {
  slotIssued(): void;
  fileChecked(outcome: 'verified' | 'mismatch'): void;
  cleaned(attachments: number, orphans: number): void;
}

export interface UploadSlot extends UploadTarget {
  attachmentId: string;
  expiresAt: string;
}

export type AttachmentState = 'PENDING' | 'VERIFIED' | 'MISSING' | 'MISMATCH';

/** One attachment as the app and insurers see it. */
export interface AttachmentView {
  id: string;
  role: Role | null;
  section: AttachmentSection;
  kind: string;
  contentType: string;
  byteSize: number;
  sha256: string;
  status: AttachmentState;
  problem: string | null;
  takenAt: string | null;
  /** What the file's own EXIF block says (metadata for fraud signals). */
  exif: ExifFacts | null;
  url: string | null;
}

/** As listed in the finalized event. */
export interface FinalizedAttachment {
  id: string;
  role: Role;
  section: AttachmentSection;
  kind: string;
  contentType: string;
  byteSize: number;
  sha256: string;
  takenAt?: string;
  exif?: ExifFacts;
  url: string;
  urlExpiresAt: string;
}

export interface AttachmentFieldError {
  path: string;
  code:
    | 'attachment_missing'
    | 'attachment_mismatch'
    | 'invalid_format'
    | 'unknown_value'
    | 'out_of_range';
  message: string;
}

/** The outcome of checking one entry against its slot and the stored file. */
type Check =
  | { state: 'VERIFIED'; record: AttachmentRecord }
  | { state: 'MISSING' | 'PENDING'; record: AttachmentRecord; problem: string }
  | { state: 'MISMATCH'; record: AttachmentRecord | undefined; problem: string };

const SHA256 = /^[0-9a-f]{64}$/;
/** Files checked at once by one request. */
const CHECKS_AT_ONCE = 4;

export class AttachmentService {
  readonly #inspecting = new Map<
    string,
    Promise<{ problem: string | undefined; exif: ExifFacts | null }>
  >();

  constructor(
    private readonly store: MediaStore,
    private readonly records: AttachmentRecords,
    private readonly settings: AttachmentSettings,
    private readonly logger: Logger,
    private readonly observer?: AttachmentObserver,
  ) {}

  get storeKind(): MediaStore['kind'] {
    return this.store.kind;
  }

  /**
   * An upload slot for a party of an open session. The store is asked first whether it is
   * reachable, so a device is told now rather than by a failing upload, and no row is written
   * for a slot that is not handed out.
   */
  async requestUpload(input: Omit<NewAttachment, 'id' | 'objectKey'>): Promise<UploadSlot> {
    if (!isAttachmentKind(input.kind)) {
      throw new ConstatError(
        'BAD_USER_INPUT',
        `kind must be one of ${ATTACHMENT_KINDS.join(', ')}`,
        {
          field: 'kind',
        },
      );
    }
    if (!isAttachmentType(input.contentType)) {
      throw new ConstatError(
        'BAD_USER_INPUT',
        `contentType must be one of ${ATTACHMENT_TYPES.join(', ')}`,
        { field: 'contentType' },
      );
    }
    if (!Number.isSafeInteger(input.byteSize) || input.byteSize < 1) {
      throw new ConstatError('BAD_USER_INPUT', 'byteSize must be a positive integer', {
        field: 'byteSize',
      });
    }
    if (input.byteSize > this.settings.maxBytes) {
      throw new ConstatError('TOO_LARGE', `a file may be at most ${this.settings.maxBytes} bytes`, {
        field: 'byteSize',
        maxBytes: this.settings.maxBytes,
      });
    }
    if (!SHA256.test(input.sha256)) {
      throw new ConstatError('BAD_USER_INPUT', 'sha256 must be 64 lowercase hex digits', {
        field: 'sha256',
      });
    }
    if (!(await this.store.ready())) {
      throw new ConstatError(
        'UNAVAILABLE',
        'the media store is unreachable: try the upload again later',
      );
    }
    const id = randomUUID();
    const objectKey = attachmentKey(input.sessionId, id);
    const created = await this.records.create(
      { ...input, id, objectKey },
      this.settings.maxPerParty,
    );
    if (!created) {
      throw new ConstatError(
        'CONFLICT',
        `a party may attach at most ${this.settings.maxPerParty} files to a constat`,
        { maxPerParty: this.settings.maxPerParty },
      );
    }
    this.observer?.slotIssued();
    const ttl = this.settings.uploadTtlSeconds;
    const target = await this.store.uploadTarget(
      objectKey,
      { contentType: input.contentType, byteSize: input.byteSize },
      ttl,
    );
    return {
      attachmentId: id,
      ...target,
      expiresAt: new Date(Date.now() + ttl * 1000).toISOString(),
    };
  }

  /**
   * Field errors that keep the content from being signed: entries of the wrong shape, files
   * missing or not matching, entries naming another party's upload. A store that cannot be
   * reached is UNAVAILABLE (try again), never a verdict on the files.
   */
  async signingErrors(sessionId: string, content: ConstatContent): Promise<AttachmentFieldError[]> {
    const { entries, problems } = readAttachments(content, this.settings.maxBytes);
    const errors: AttachmentFieldError[] = [...problems];
    const checks = await this.checkAll(sessionId, entries, { storeDown: 'throw', confirm: false });
    for (const [i, check] of checks.entries()) {
      if (check.state === 'VERIFIED') continue;
      const entry = entries[i]!;
      errors.push({
        path: `${entry.section}.attachments.${entry.id}`,
        code: check.state === 'MISMATCH' ? 'attachment_mismatch' : 'attachment_missing',
        message: check.problem,
      });
    }
    return errors;
  }

  /** The attachments a live session's document names, checked as far as the store allows. */
  async forSession(sessionId: string, content: ConstatContent): Promise<AttachmentView[]> {
    const { entries } = readAttachments(content, this.settings.maxBytes);
    const checks = await this.checkAll(sessionId, entries, {
      storeDown: 'pending',
      confirm: false,
    });
    return Promise.all(entries.map((entry, i) => this.view(entry, checks[i]!)));
  }

  /** The attachments of a finalized constat: its signed content names them all. */
  async forConstat(sessionId: string, content: ConstatContent): Promise<AttachmentView[]> {
    const { entries } = readAttachments(content, Number.MAX_SAFE_INTEGER);
    const records = new Map(
      (
        await this.records.byIds(
          sessionId,
          entries.map((e) => e.id),
        )
      ).map((r) => [r.id, r]),
    );
    return Promise.all(
      entries.map((entry) => {
        const record = records.get(entry.id);
        // Checked at finalization; the row outlives the constat (the cleanup never takes it).
        const check: Check = record
          ? { state: 'VERIFIED', record }
          : { state: 'MISMATCH', record, problem: 'no record of this file' };
        return this.view(entry, check);
      }),
    );
  }

  /**
   * The list for the finalized event. Throws while the store is unreachable or a file is not
   * as signed, so the finalizer retries rather than publishing a constat with a hole in it.
   */
  async forFinalization(
    sessionId: string,
    content: ConstatContent,
  ): Promise<FinalizedAttachment[]> {
    const { entries } = readAttachments(content, Number.MAX_SAFE_INTEGER);
    const checks = await this.checkAll(sessionId, entries, { storeDown: 'throw', confirm: true });
    const ttl = this.settings.downloadTtlSeconds;
    const urlExpiresAt = new Date(Date.now() + ttl * 1000).toISOString();
    return Promise.all(
      entries.map(async (entry, i) => {
        const check = checks[i]!;
        if (check.state !== 'VERIFIED') {
          throw new MediaStoreError(`attachment ${entry.id} is not as signed: ${check.problem}`);
        }
        const { record } = check;
        const item: FinalizedAttachment = {
          id: entry.id,
          role: record.role,
          section: entry.section,
          kind: entry.kind,
          contentType: entry.contentType,
          byteSize: entry.byteSize,
          sha256: entry.sha256,
          url: await this.store.downloadUrl(record.objectKey, ttl),
          urlExpiresAt,
        };
        if (entry.takenAt) item.takenAt = entry.takenAt;
        if (record.exif) item.exif = record.exif;
        return item;
      }),
    );
  }

  private async view(entry: AttachmentEntry, check: Check): Promise<AttachmentView> {
    const record = check.record;
    return {
      id: entry.id,
      role: record?.role ?? sectionOwner(entry.section) ?? null,
      section: entry.section,
      kind: entry.kind,
      contentType: entry.contentType,
      byteSize: entry.byteSize,
      sha256: entry.sha256,
      status: check.state,
      problem: check.state === 'VERIFIED' ? null : check.problem,
      takenAt: entry.takenAt ?? record?.exif?.takenAt ?? null,
      exif: record?.exif ?? null,
      url:
        check.state === 'VERIFIED' && record
          ? await this.store.downloadUrl(record.objectKey, this.settings.downloadTtlSeconds)
          : null,
    };
  }

  private async checkAll(
    sessionId: string,
    entries: AttachmentEntry[],
    /** `confirm`: look for a verified file again (finalization), not only for unchecked ones. */
    opts: { storeDown: 'throw' | 'pending'; confirm: boolean },
  ): Promise<Check[]> {
    if (entries.length === 0) return [];
    const records = new Map(
      (
        await this.records.byIds(
          sessionId,
          entries.map((e) => e.id),
        )
      ).map((r) => [r.id, r]),
    );
    // A few at a time: a check may read a whole file (up to MEDIA_MAX_BYTES in memory), and
    // a store's latency, not its bandwidth, dominates small files.
    const checks: Check[] = new Array<Check>(entries.length);
    let next = 0;
    const worker = async () => {
      for (let i = next++; i < entries.length; i = next++) {
        const entry = entries[i]!;
        try {
          checks[i] = await this.check(entry, records.get(entry.id), opts.confirm);
        } catch (err) {
          if (!(err instanceof MediaStoreError)) throw err;
          if (opts.storeDown === 'throw') {
            throw new ConstatError(
              'UNAVAILABLE',
              'the media store is unreachable, so the attachments cannot be checked: try again',
            );
          }
          const record = records.get(entry.id)!;
          checks[i] = { state: 'PENDING', record, problem: 'the media store is unreachable' };
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(CHECKS_AT_ONCE, entries.length) }, worker));
    return checks;
  }

  private async check(
    entry: AttachmentEntry,
    record: AttachmentRecord | undefined,
    confirm: boolean,
  ): Promise<Check> {
    if (!record) {
      return { state: 'MISMATCH', record, problem: 'no upload slot with this id in this session' };
    }
    const owner = sectionOwner(entry.section);
    if (owner && owner !== record.role) {
      return {
        state: 'MISMATCH',
        record,
        problem: `uploaded by party ${record.role}: a party attaches only its own files to its section`,
      };
    }
    for (const field of ['kind', 'contentType', 'byteSize', 'sha256'] as const) {
      if (entry[field] !== record[field]) {
        return {
          state: 'MISMATCH',
          record,
          problem: `${field} differs from the upload slot (${String(record[field])})`,
        };
      }
    }
    if (record.status === 'mismatch') {
      return { state: 'MISMATCH', record, problem: record.problem ?? 'the file does not match' };
    }
    // Verified once is verified for good while the session lives: objects are write-once and
    // the cleanup never takes a live session's files. Finalization still confirms presence.
    if (record.status === 'verified' && !confirm) return { state: 'VERIFIED', record };
    const head = await this.store.head(record.objectKey);
    if (!head) return { state: 'MISSING', record, problem: 'the file has not been uploaded' };
    if (record.status === 'verified' && head.byteSize === record.byteSize) {
      return { state: 'VERIFIED', record };
    }
    // Both drivers signing at once check the same files: one read per file, shared.
    let inspection = this.#inspecting.get(record.id);
    if (!inspection) {
      inspection = this.inspect(record, head.byteSize).finally(() =>
        this.#inspecting.delete(record.id),
      );
      this.#inspecting.set(record.id, inspection);
    }
    const { problem, exif } = await inspection;
    if (problem) {
      return { state: 'MISMATCH', record: { ...record, status: 'mismatch', problem }, problem };
    }
    return { state: 'VERIFIED', record: { ...record, status: 'verified', exif } };
  }

  /** Reads the file once and records the verdict; returns the problem, or undefined. */
  private async inspect(
    record: AttachmentRecord,
    storedSize: number,
  ): Promise<{ problem: string | undefined; exif: ExifFacts | null }> {
    let problem: string | undefined;
    let exif: ExifFacts | null = null;
    if (storedSize !== record.byteSize) {
      problem = `the file has ${storedSize} bytes, not ${record.byteSize}`;
    } else {
      const bytes = await this.store.get(record.objectKey);
      if (!bytes) throw new MediaStoreError(`${record.objectKey} vanished while being read`);
      const facts = await inspectFile(bytes);
      exif = facts.exif;
      if (facts.byteSize !== record.byteSize) {
        problem = `the file has ${facts.byteSize} bytes, not ${record.byteSize}`;
      } else if (facts.sha256 !== record.sha256) {
        problem = `the file's SHA-256 is ${facts.sha256}, not the one declared`;
      } else if (!typeMatches(record.contentType, facts.sniffedType)) {
        problem = `the file is ${facts.sniffedType ?? 'of an unknown type'}, not ${record.contentType}`;
      }
    }
    // A stored object is never replaced, so a mismatch is final: a new slot is needed.
    await this.records.setStatus(
      record.id,
      problem ? 'mismatch' : 'verified',
      problem ?? null,
      exif,
    );
    this.observer?.fileChecked(problem ? 'mismatch' : 'verified');
    if (problem) this.logger.info({ attachmentId: record.id, problem }, 'attachment refused');
    return { problem, exif };
  }

  /**
   * Removes what nobody keeps, past the retention period: uploads of sessions that ended
   * without a constat, uploads a finalized constat does not name, and objects without a row.
   * A file a finalized constat names is never removed (the repository's statements guard it).
   */
  async cleanup(limit = 500): Promise<{ attachments: number; orphans: number }> {
    let attachments = 0;
    for (const record of await this.records.expired(this.settings.retentionMs, limit)) {
      // Row first: if the object's deletion fails, the object is an orphan found below later;
      // the other order could delete a file whose row then refused to go.
      if (!(await this.records.remove(record.id))) continue;
      await this.store.delete(record.objectKey);
      attachments += 1;
    }
    let orphans = 0;
    const cutoff = Date.now() - this.settings.retentionMs;
    let batch: string[] = [];
    const sweep = async () => {
      const known = await this.records.knownKeys(batch);
      for (const key of batch) {
        if (known.has(key)) continue;
        await this.store.delete(key);
        orphans += 1;
      }
      batch = [];
    };
    for await (const object of this.store.list(`${ATTACHMENTS_PREFIX}/`)) {
      if (object.modifiedAt.getTime() >= cutoff) continue;
      batch.push(object.key);
      if (batch.length >= 100) await sweep();
    }
    if (batch.length > 0) await sweep();
    if (attachments + orphans > 0) {
      this.observer?.cleaned(attachments, orphans);
      this.logger.info({ attachments, orphans }, 'media cleaned up');
    }
    return { attachments, orphans };
  }
}

export const ATTACHMENTS_PREFIX = 'attachments';

/** Object key of an attachment: by session, so a session's files can be listed together. */
export function attachmentKey(sessionId: string, attachmentId: string): string {
  return `${ATTACHMENTS_PREFIX}/${sessionId}/${attachmentId}`;
}
