/**
 * The AI service's access to the media store (the same `MEDIA_*` / `S3_*` configuration as
 * core): reading the photos a finalized constat names, never trusting the bytes until their
 * SHA-256 matches the event, and storing what the functions produce (content-addressed, so a
 * redelivered event writes the same object again under the same key).
 */
import { createHash } from 'node:crypto';
import { attachmentKey } from '../media/attachment-service.js';
import { createMediaStore, type MediaStoreConfig } from '../media/create-media-store.js';
import { MediaStoreError, type MediaStore } from '../media/media-store.js';

/** An object by key with the digest it must have (what `put` returns is one). */
export interface MediaRef {
  key: string;
  sha256: string;
  /** Expected size in bytes, when known: checked before the body is fetched. */
  size?: number;
}

/** An attachment as the finalized event lists it, with the session it belongs to. */
export interface EventAttachmentRef {
  sessionId: string;
  id: string;
  sha256: string;
  byteSize?: number;
}

export interface StoredMedia {
  key: string;
  sha256: string;
  size: number;
}

export interface ReadOptions {
  /** Refuse (before fetching the body) an object larger than this. */
  maxBytes?: number;
}

/** Why an object could not be used. Not transient: retrying gives the same answer. */
export class MediaRefused extends Error {
  constructor(
    readonly reason: 'missing' | 'hash_mismatch' | 'size_mismatch' | 'too_large' | 'invalid_ref',
    message: string,
  ) {
    super(message);
    this.name = 'MediaRefused';
  }
}

export interface AiMedia {
  readonly kind: MediaStore['kind'];
  /**
   * The bytes, verified: a digest other than the reference's is refused (`MediaRefused`),
   * so a file swapped in the store after signing is never read as the signed one. A store
   * that cannot be reached throws `MediaStoreError` (transient).
   */
  read(ref: MediaRef | EventAttachmentRef, options?: ReadOptions): Promise<Uint8Array>;
  /** Stores under `ai/sha256/<digest>`; an object already there is not written again. */
  put(bytes: Uint8Array, contentType: string): Promise<StoredMedia>;
  ready(): Promise<boolean>;
  close(): Promise<void>;
}

const SHA256_HEX = /^[0-9a-f]{64}$/;
export const AI_MEDIA_PREFIX = 'ai/sha256';

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** The key of content-addressed AI output. */
export function aiMediaKey(sha256: string): string {
  return `${AI_MEDIA_PREFIX}/${sha256}`;
}

function toRef(ref: MediaRef | EventAttachmentRef): MediaRef {
  if ('key' in ref) return ref;
  // Ids come from a validated event, but the key is built from them: refuse anything odd.
  const segment = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
  if (!segment.test(ref.sessionId) || !segment.test(ref.id)) {
    throw new MediaRefused('invalid_ref', 'attachment reference has an invalid session or id');
  }
  return {
    key: attachmentKey(ref.sessionId, ref.id),
    sha256: ref.sha256,
    ...(ref.byteSize !== undefined ? { size: ref.byteSize } : {}),
  };
}

/** Wraps a store already open (the embedded service shares core's). `close` leaves it open. */
export function aiMediaOver(store: MediaStore, options: { owned?: boolean } = {}): AiMedia {
  return {
    kind: store.kind,
    async read(given, opts = {}) {
      const ref = toRef(given);
      const expected = ref.sha256.toLowerCase();
      if (!SHA256_HEX.test(expected)) {
        throw new MediaRefused('invalid_ref', `"${ref.key}": expected digest is not SHA-256 hex`);
      }
      if (opts.maxBytes !== undefined) {
        if (ref.size !== undefined && ref.size > opts.maxBytes) {
          throw new MediaRefused('too_large', `"${ref.key}": ${ref.size} bytes > ${opts.maxBytes}`);
        }
        const head = await store.head(ref.key);
        if (!head) throw new MediaRefused('missing', `"${ref.key}" is not in the media store`);
        if (head.byteSize > opts.maxBytes) {
          throw new MediaRefused(
            'too_large',
            `"${ref.key}": ${head.byteSize} bytes > ${opts.maxBytes}`,
          );
        }
      }
      const body = await store.get(ref.key);
      if (!body) throw new MediaRefused('missing', `"${ref.key}" is not in the media store`);
      if (ref.size !== undefined && body.byteLength !== ref.size) {
        throw new MediaRefused(
          'size_mismatch',
          `"${ref.key}": ${body.byteLength} bytes stored, ${ref.size} named by the event`,
        );
      }
      const actual = sha256Hex(body);
      if (actual !== expected) {
        throw new MediaRefused(
          'hash_mismatch',
          `"${ref.key}": stored SHA-256 ${actual} is not the ${expected} the event names`,
        );
      }
      return body;
    },
    async put(bytes, contentType) {
      const sha256 = sha256Hex(bytes);
      const key = aiMediaKey(sha256);
      const head = await store.head(key);
      if (head?.byteSize !== bytes.byteLength) await store.put(key, bytes, contentType);
      return { key, sha256, size: bytes.byteLength };
    },
    ready: () => store.ready(),
    close: () => (options.owned ? store.close() : Promise.resolve()),
  };
}

/** Opens the store the configuration names, for `constat ai` running as its own process. */
export async function openAiMedia(config: MediaStoreConfig): Promise<AiMedia> {
  const store = await createMediaStore(config, () => {
    // The AI service hands out no URLs of the file store: only core serves those.
    throw new MediaStoreError('the AI service does not serve media URLs');
  });
  return aiMediaOver(store, { owned: true });
}
