/** The attachment rows the media service reads and writes (persistence/attachments-repository.ts). */
import type { Role } from '../constat/permissions.js';

export type AttachmentStatus = 'pending' | 'verified' | 'missing' | 'mismatch';

/** What the file's EXIF block says, when it has one. Metadata only: the file is never altered. */
export interface ExifFacts {
  takenAt?: string;
  gps?: { lat: number; lon: number };
}

export interface NewAttachment {
  id: string;
  sessionId: string;
  role: Role;
  userId: string;
  kind: string;
  contentType: string;
  byteSize: number;
  sha256: string;
  objectKey: string;
}

export interface AttachmentRecord extends NewAttachment {
  status: AttachmentStatus;
  problem: string | null;
  exif: ExifFacts | null;
  createdAt: Date;
}

export interface AttachmentRecords {
  /** False when the party already has `maxPerParty` slots in this session. */
  create(attachment: NewAttachment, maxPerParty: number): Promise<boolean>;
  forSession(sessionId: string): Promise<AttachmentRecord[]>;
  byIds(sessionId: string, ids: readonly string[]): Promise<AttachmentRecord[]>;
  setStatus(
    id: string,
    status: AttachmentStatus,
    problem: string | null,
    exif?: ExifFacts | null,
  ): Promise<void>;
  /** Rows past retention whose file may go (see the repository for the rule). */
  expired(olderThanMs: number, limit: number): Promise<AttachmentRecord[]>;
  /** Deletes the row unless a finalized constat names it; true when it was deleted. */
  remove(id: string): Promise<boolean>;
  /** Which of these object keys have a row. */
  knownKeys(keys: readonly string[]): Promise<Set<string>>;
  isFinalized(sessionId: string): Promise<boolean>;
}
