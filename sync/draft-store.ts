/** What the live document needs from storage (implemented by persistence/drafts-repository). */
export interface StoredDraft {
  sessionId: string;
  formVersion: string;
  /** The base: the document as of the draft's last fold. */
  state: Uint8Array;
  /** Updates appended since, in order: the document is `state` with each of these applied. */
  updates: Uint8Array[];
  /** Their ids, for `fold`. */
  updateSeqs: number[];
  status: string;
  /** Changes with every save and fold (a fold checks it did not change meanwhile). */
  version: number;
}

/** What an append did, and how much the draft holds beside its base (to decide a fold). */
export type AppendOutcome =
  | { kind: 'appended'; pendingRows: number; pendingBytes: number; baseBytes: number }
  | { kind: 'closed' }
  | { kind: 'missing' };

export interface DraftStore {
  /** False when the stored draft is closed (finalized, abandoned, expired): nothing was written. */
  save(draft: {
    sessionId: string;
    formVersion: string;
    state: Uint8Array;
    stateVector?: Uint8Array;
  }): Promise<boolean>;
  load(sessionId: string): Promise<StoredDraft | null>;
  /** Appends an update to a live draft (the cost of a save is the edit, not the document). */
  append(sessionId: string, update: Uint8Array): Promise<AppendOutcome>;
  /**
   * Replaces the base by `state` (the base read at `version` merged with the updates `seqs`)
   * and drops those updates. False, changing nothing, if the draft changed since `version`.
   */
  fold(draft: {
    sessionId: string;
    version: number;
    state: Uint8Array;
    stateVector: Uint8Array;
    seqs: number[];
  }): Promise<boolean>;
  /** Closes a live draft for good; it then keeps the content it had. */
  setStatus(sessionId: string, status: 'abandoned' | 'expired' | 'finalized'): Promise<boolean>;
}
