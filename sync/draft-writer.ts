/**
 * Draft saves of one live document on the in-process hub. The updates applied since the last
 * save are kept (not the document), and `DRAFT_SAVE_DEBOUNCE_MS` after a change they are
 * merged into one update and appended to the draft: a save costs what changed, however large
 * the document (a 1.7 MB sketch used to cost ~50 ms of event loop per save to encode, plus
 * write). The draft folder merges the appended updates into the draft's base in the
 * background. Saves never overlap; a failed save keeps its updates and retries.
 */
import type { Logger } from 'pino';
import type { DraftFolder } from './draft-folder.js';
import type { DraftStore } from './draft-store.js';
import type { YjsOffload } from './yjs-offload.js';
import type { Durability } from './ports.js';

export interface DraftWriterOptions {
  sessionId: string;
  drafts: DraftStore;
  folder: DraftFolder;
  offload: YjsOffload;
  debounceMs: number;
  logger: () => Logger;
  onSaved: (ms: number) => void;
  onFailed: () => void;
}

/** The in-process hub's durability (durability.ts). */
export class DraftWriter implements Durability {
  readonly #opts: DraftWriterOptions;
  #unsaved: Uint8Array[] = [];
  #timer: NodeJS.Timeout | undefined;
  #saving: Promise<void> | undefined;
  #closed = false;

  constructor(opts: DraftWriterOptions) {
    this.#opts = opts;
  }

  /** An update the document applied: saved with the next save. */
  record(update: Uint8Array): void {
    this.#unsaved.push(update);
    this.#schedule();
  }

  /** Something is not yet stored (or being stored). */
  get pending(): boolean {
    return this.#unsaved.length > 0 || this.#saving !== undefined || this.#timer !== undefined;
  }

  #schedule(): void {
    if (this.#timer || this.#closed) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.flush().catch(() => {}); // flush logs its own failure and keeps the updates
    }, this.#opts.debounceMs);
  }

  /** Saves now what is unsaved; concurrent calls share one save. */
  async flush(): Promise<void> {
    if (this.#saving) await this.#saving;
    if (this.#unsaved.length === 0) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const parts = this.#unsaved.splice(0);
    const { sessionId, drafts, folder, offload } = this.#opts;
    const started = performance.now();
    this.#saving = (async () => {
      const outcome = await drafts.append(sessionId, await offload.merge(parts));
      this.#opts.onSaved(performance.now() - started);
      if (outcome.kind !== 'appended') {
        this.#opts.logger().warn('draft is closed; live edits were not saved over it');
      }
      folder.afterAppend(sessionId, outcome);
    })()
      .catch((err: unknown) => {
        // Put back in front: the next save stores them with whatever came since, in order.
        this.#unsaved.unshift(...parts);
        this.#opts.onFailed();
        this.#opts.logger().error({ err }, 'draft save failed; will retry');
        this.#schedule();
        throw err;
      })
      .finally(() => {
        this.#saving = undefined;
      });
    return this.#saving;
  }

  /** The document ends or unloads: what is unsaved is saved (the draft holds the rest). */
  persist(): Promise<void> {
    return this.flush();
  }

  /** No more scheduled saves (a last `flush` still works). */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
