/**
 * Folds a draft's appended updates into its base, in the background, once they outgrow it:
 * loading a draft then stays one base and a few updates, and the whole-document merge runs
 * off the event loop (yjs-offload.ts) and only now and then — after about a quarter of the
 * base's size in updates, or `FOLD_ROWS` of them. Both the live documents (in-process hub) and
 * the compactor (Redis hub) append; this decides when to fold, for both.
 *
 * A fold reads and writes the whole document, and the driver decodes and encodes those
 * megabytes (bytea travels as hex text) on the thread that runs the statement: for a 1.7 MB
 * sketch, tens of milliseconds of event loop each way. With a database server, folds run on a
 * worker thread that has its own connection (`runner`, persistence/draft-folds.ts); the
 * embedded database takes one connection only, so there the fold runs here (`foldDraft`).
 *
 * A fold is optimistic: it is written only if the draft's version did not move since it was
 * read (drafts.fold), so two instances folding the same draft at once, or a fold racing a
 * save, cost at most one wasted merge and never lose an update.
 */
import type { Logger } from 'pino';
import type { AppendOutcome, DraftStore } from './draft-store.js';
import type { EncodedDocument, YjsOffload } from './yjs-offload.js';

/** Fold once this many updates sit beside the base… */
export const FOLD_ROWS = 64;
/** …or once they weigh a quarter of the base, and at least this much. */
export const FOLD_MIN_BYTES = 32 * 1024;

export type FoldResult = 'folded' | 'nothing' | 'stale' | 'closed' | 'missing';

export interface DraftFolderOptions {
  drafts: DraftStore;
  offload: YjsOffload;
  logger: Logger;
  /** Runs one fold elsewhere (a worker thread with a connection of its own); default here. */
  runner?: (sessionId: string) => Promise<FoldResult>;
  onFolded?: (ms: number) => void;
}

/**
 * One fold: the draft read, merged (`merge`: its parts into one update and a state vector) and
 * written back in one statement, if its version did not move meanwhile.
 */
export async function foldDraft(
  drafts: DraftStore,
  merge: (parts: Uint8Array[]) => Promise<EncodedDocument>,
  sessionId: string,
): Promise<FoldResult> {
  const draft = await drafts.load(sessionId);
  if (!draft) return 'missing';
  if (draft.status !== 'live') return 'closed';
  if (draft.updates.length === 0) return 'nothing';
  const merged = await merge([draft.state, ...draft.updates]);
  const folded = await drafts.fold({
    sessionId,
    version: draft.version,
    state: merged.update,
    stateVector: merged.vector,
    seqs: draft.updateSeqs,
  });
  return folded ? 'folded' : 'stale';
}

export function foldDue(outcome: AppendOutcome): boolean {
  if (outcome.kind !== 'appended') return false;
  return (
    outcome.pendingRows >= FOLD_ROWS ||
    outcome.pendingBytes >= Math.max(FOLD_MIN_BYTES, outcome.baseBytes / 4)
  );
}

export class DraftFolder {
  readonly #opts: DraftFolderOptions;
  readonly #log: Logger;
  /** One fold per draft at a time on this instance. */
  readonly #folding = new Map<string, Promise<FoldResult>>();

  constructor(opts: DraftFolderOptions) {
    this.#opts = opts;
    this.#log = opts.logger.child({ component: 'draft-folder' });
  }

  /** After an append: folds in the background if the draft's updates have outgrown its base. */
  afterAppend(sessionId: string, outcome: AppendOutcome): void {
    if (!foldDue(outcome)) return;
    this.fold(sessionId).catch((err: unknown) => {
      // Nothing is lost: the updates stay appended, and the next append tries again.
      this.#log.warn({ err, sessionId }, 'draft fold failed');
    });
  }

  /** Merges the draft's appended updates into its base now (shared if one is under way). */
  fold(sessionId: string): Promise<FoldResult> {
    let folding = this.#folding.get(sessionId);
    if (!folding) {
      folding = this.#fold(sessionId).finally(() => this.#folding.delete(sessionId));
      this.#folding.set(sessionId, folding);
    }
    return folding;
  }

  async #fold(sessionId: string): Promise<FoldResult> {
    const { drafts, offload, runner } = this.#opts;
    const started = performance.now();
    const result = runner
      ? await runner(sessionId)
      : await foldDraft(drafts, (parts) => offload.state(parts), sessionId);
    if (result === 'folded') this.#opts.onFolded?.(performance.now() - started);
    return result;
  }

  /** Waits for the folds under way (shutdown: storage closes next). */
  async close(): Promise<void> {
    await Promise.allSettled([...this.#folding.values()]);
  }
}
