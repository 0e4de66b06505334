/**
 * A live document's state as encoded updates, kept beside its Y.Doc: a base and every update
 * applied since. With it, whole-document work leaves the event loop:
 * - sleeping costs nothing: the log is the sleeping state, nothing is encoded;
 * - the whole state (for the draft, the hub, a finalization) is merged by a worker thread;
 * - the encoded size is known incrementally (`bytes`: the base plus what came since, at least
 *   the size the document encodes to), and measured exactly off the event loop when it matters.
 * When what came since outgrows the base, it is merged into a new base in the background, so
 * the log's memory stays within about twice the document's encoded size.
 */
import * as Y from 'yjs';
import type { Logger } from 'pino';
import type { EncodedDocument, YjsOffload } from './yjs-offload.js';

/** Merge into a new base once the updates since weigh half the base, and at least this. */
const REBASE_MIN_BYTES = 64 * 1024;
/**
 * Above `measureAbove`, merge (measure exactly) once this much was recorded since the last
 * merge: the size check then finds an exact figure rather than waiting for one.
 */
const REMEASURE_MIN_BYTES = 4 * 1024;
/**
 * Below this size an awake document is encoded from its Y.Doc, on the spot: well under a
 * millisecond, where rebuilding it from many small updates would take far longer.
 */
const ENCODE_LIVE_BELOW = 64 * 1024;

export interface DocumentLogOptions {
  offload: YjsOffload;
  /**
   * Above this estimated size (the document's size limit), the size is measured exactly in the
   * background as edits come, so a size check near the limit does not wait for a measure.
   */
  measureAbove?: number;
  /** The Y.Doc the log is kept in step with, while it is awake. */
  live: () => Y.Doc | undefined;
  logger: () => Logger;
}

export class DocumentLog {
  #base: Uint8Array;
  /** The base's state vector, once a merge computed it. */
  #baseVector: Uint8Array | undefined;
  #since: Uint8Array[];
  #sinceBytes: number;
  #rebasing = false;
  readonly #opts: DocumentLogOptions;

  constructor(base: Uint8Array, since: Uint8Array[], opts: DocumentLogOptions) {
    this.#base = base;
    this.#since = [...since];
    this.#sinceBytes = since.reduce((n, u) => n + u.byteLength, 0);
    this.#opts = opts;
  }

  /** Records an update the document applied (in the order it applied them). */
  record(update: Uint8Array): void {
    this.#since.push(update);
    this.#sinceBytes += update.byteLength;
    if (this.#due()) this.#rebase();
  }

  /**
   * A merge is due once the updates since outgrow the base (memory), or, near the size limit,
   * once the estimate is over it by more than a rounding (a size check would wait for it).
   */
  #due(): boolean {
    const since = this.#sinceBytes;
    if (since >= Math.max(REBASE_MIN_BYTES, this.#base.byteLength / 2)) return true;
    const above = this.#opts.measureAbove;
    return above !== undefined && since >= REMEASURE_MIN_BYTES && this.bytes > above;
  }

  /** The base and the updates since: applied in order, they rebuild the document. */
  get parts(): Uint8Array[] {
    return [this.#base, ...this.#since];
  }

  /**
   * The size the document encodes to, give or take: exact right after a merge, then plus the
   * size of every update since (an update grows the encoding by about its own size at most,
   * often less: merged runs, deleted content collected).
   */
  get bytes(): number {
    return this.#base.byteLength + this.#sinceBytes;
  }

  /** Bytes recorded since the last merge (0: `bytes` is exact). */
  get bytesSinceMerge(): number {
    return this.#sinceBytes;
  }

  /**
   * The whole document as one update and its state vector, merged off the event loop, as of
   * this call (later updates are not in it). It becomes the new base.
   */
  async state(): Promise<EncodedDocument> {
    const parts = this.parts;
    if (parts.length === 1 && this.#baseVector) {
      return { update: parts[0]!, vector: this.#baseVector };
    }
    const doc = this.#opts.live();
    if (doc && this.bytes < ENCODE_LIVE_BELOW) {
      const encoded = { update: Y.encodeStateAsUpdate(doc), vector: Y.encodeStateVector(doc) };
      this.#rebaseTo(parts, encoded);
      return encoded;
    }
    const merged = await this.#opts.offload.state(parts);
    this.#rebaseTo(parts, merged);
    return merged;
  }

  /** `merged` (made of `parts`) becomes the base, unless another merge got there first. */
  #rebaseTo(parts: Uint8Array[], merged: EncodedDocument): void {
    if (this.#base !== parts[0]) return; // its base is as good
    const dropped = this.#since.splice(0, parts.length - 1);
    for (const u of dropped) this.#sinceBytes -= u.byteLength;
    this.#base = merged.update;
    this.#baseVector = merged.vector;
  }

  /** Merges into a new base in the background (memory, and an exact `bytes`). */
  #rebase(): void {
    if (this.#rebasing) return;
    this.#rebasing = true;
    this.state().then(
      () => {
        this.#rebasing = false;
        // What came meanwhile may make another one due (edits faster than merges).
        if (this.#due()) this.#rebase();
      },
      (err: unknown) => {
        this.#rebasing = false;
        this.#opts.logger().warn({ err }, 'could not merge the document log');
      },
    );
  }

  /** Merges now if anything came since the last merge (sleeping: one part is the least memory). */
  compact(): void {
    if (this.#since.length > 0) this.#rebase();
  }
}
