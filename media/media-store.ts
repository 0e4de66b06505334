/**
 * The object store behind one interface: files under `DATA_DIR` (the embedded default) or any
 * S3-compatible service. Keys are opaque strings built by `media-keys.ts`; bodies are never
 * altered, so a stored file's SHA-256 stays the one the document and the signatures name.
 */

export interface StoredObject {
  byteSize: number;
  contentType?: string;
}

/** How a device sends the bytes of one file: `method` to `url` with exactly these headers. */
export interface UploadTarget {
  url: string;
  method: 'PUT';
  headers: Array<{ name: string; value: string }>;
}

export interface UploadRequest {
  contentType: string;
  byteSize: number;
}

export interface MediaStore {
  readonly kind: 'files' | 's3';
  /** Writes the object; an existing key is replaced only by callers that own it (see README). */
  put(key: string, body: Uint8Array, contentType: string): Promise<void>;
  get(key: string): Promise<Uint8Array | undefined>;
  head(key: string): Promise<StoredObject | undefined>;
  delete(key: string): Promise<void>;
  /** A URL anyone holding it may GET the object with, until `ttlSeconds` from now. */
  downloadUrl(key: string, ttlSeconds: number): Promise<string>;
  ready(): Promise<boolean>;
  close(): Promise<void>;
  /** A time-limited upload the device performs itself (presigned PUT, or the server's own). */
  uploadTarget(key: string, request: UploadRequest, ttlSeconds: number): Promise<UploadTarget>;
  /** Keys under `prefix` with their last write time, for the cleanup of abandoned uploads. */
  list(prefix: string): AsyncIterable<ListedObject>;
}

export interface ListedObject {
  key: string;
  byteSize: number;
  modifiedAt: Date;
}

/** The store is unreachable or refused the call: transient, retry later. */
export class MediaStoreError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'MediaStoreError';
  }
}

/** Keys are built by the server only; this guards the file store against path tricks anyway. */
export function assertKey(key: string): void {
  if (
    !/^[A-Za-z0-9][A-Za-z0-9._-]*(\/[A-Za-z0-9][A-Za-z0-9._-]*)*$/.test(key) ||
    key.length > 512
  ) {
    throw new MediaStoreError(`invalid media key "${key.slice(0, 80)}"`);
  }
}
