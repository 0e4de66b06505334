/** What the live document needs from storage (implemented by persistence/drafts-repository). */
export interface StoredDraft {
  sessionId: string;
  formVersion: string;
  state: Uint8Array;
  status: string;
}

export interface DraftStore {
  /** False when the stored draft is closed (finalized, abandoned, expired): nothing was written. */
  save(draft: {
    sessionId: string;
    formVersion: string;
    state: Uint8Array;
    stateVector?: Uint8Array;
  }): Promise<boolean>;
  load(sessionId: string): Promise<StoredDraft | null>;
  /** Closes a live draft for good; it then keeps the content it had. */
  setStatus(sessionId: string, status: 'abandoned' | 'expired' | 'finalized'): Promise<boolean>;
}
