/**
 * How a live document's changes reach storage: one interface (`Durability`, ports.ts), two
 * implementations, chosen once per server by the hub it runs on.
 *
 * - In-process hub (`draftSaves`): nothing else holds the updates, so the live document saves
 *   its own draft, debounced, appending what changed (draft-writer.ts).
 * - Redis hub (`compaction`): every accepted update is already in the hub's stream before it
 *   is applied, and the compactor (hub/compactor.ts) merges streams into drafts; the live
 *   document stores nothing itself, except when it ends or unloads having changed since it
 *   was loaded: then its whole state is merged once more, which covers the one case where the
 *   hub lost edits it still holds.
 */
import type { Logger } from 'pino';
import type { DraftFolder } from './draft-folder.js';
import type { DraftStore } from './draft-store.js';
import { DraftWriter } from './draft-writer.js';
import type { DraftMerger, Durability, SyncObserver } from './ports.js';
import type { YjsOffload } from './yjs-offload.js';

export type DurabilityFactory = (session: {
  sessionId: string;
  logger: () => Logger;
  observer: SyncObserver;
}) => Durability;

/** In-process hub: debounced appends to the draft. */
export function draftSaves(opts: {
  drafts: DraftStore;
  folder: DraftFolder;
  offload: YjsOffload;
  debounceMs: number;
}): DurabilityFactory {
  return ({ sessionId, logger, observer }) =>
    new DraftWriter({
      sessionId,
      drafts: opts.drafts,
      folder: opts.folder,
      offload: opts.offload,
      debounceMs: opts.debounceMs,
      logger,
      onSaved: (ms) => observer.draftSaved(ms),
      onFailed: () => observer.draftSaveFailed(),
    });
}

/** Redis hub: the compactor stores; the live document's state is merged when it ends. */
export function compaction(merger: DraftMerger): DurabilityFactory {
  return ({ sessionId }) => new Compaction(sessionId, merger);
}

// How long an ending document waits for a compaction lease another instance holds.
const LEASE_WAIT_MS = 10_000;

/**
 * The wait before asking for the lease again: doubling from 50 ms to 1 s, jittered. When a
 * session's devices were on two instances both end it at once and one waits for the other,
 * which may have thousands of unloads queued (the end of a busy period); asking every 50 ms
 * made that up to 200 Redis round trips per session.
 */
export function leaseRetryMs(attempt: number, random = Math.random): number {
  return Math.min(50 * 2 ** attempt, 1_000) * (0.5 + random() / 2);
}

class Compaction implements Durability {
  /** Whether the document holds anything its draft did not when it was loaded. */
  #changed = false;

  constructor(
    private readonly sessionId: string,
    private readonly merger: DraftMerger,
  ) {}

  readonly pending = false;

  record(): void {
    this.#changed = true;
  }

  async flush(): Promise<void> {}

  async persist(state: () => Promise<Uint8Array>): Promise<void> {
    // Unchanged since it was loaded: its state is the draft's, stored already. (A session
    // opened and left without an edit, the common case of a phone checking in, then costs no
    // merge, and no wait for the lease another instance ending it too may hold.)
    if (!this.#changed) return;
    const whole = await state();
    const deadline = Date.now() + LEASE_WAIT_MS;
    for (let attempt = 0; ; attempt++) {
      const result = await this.merger.compact(this.sessionId, whole);
      if (result !== 'busy') return;
      if (Date.now() > deadline)
        throw new Error('compaction lease stayed busy; the hub still holds the edits');
      await new Promise((resolve) => setTimeout(resolve, leaseRetryMs(attempt)));
    }
  }

  close(): void {}
}
