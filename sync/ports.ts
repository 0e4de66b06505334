/**
 * The room engine's ports: what a live document needs from the world around it, implemented
 * outside sync/ (the websocket in server/, the finalizer in finalization/, the metrics in
 * server/) or by the durability modules here. The hub's port is in hub.ts, the session
 * store's in session-store.ts and the draft store's in draft-store.ts.
 */
import type { ConstatError } from '../constat/errors.js';
import type { ConstatContent, SignatureRecord } from '../constat/constat-doc.js';
import type { Role } from '../constat/permissions.js';

/** A connected device as the live session sees it (the websocket lives in server/). */
export interface DeviceChannel {
  readonly id: string;
  readonly role: Role;
  send(frame: Uint8Array): void;
  /** Ends the connection for this reason (mapped to a close code by the channel). */
  end(reason: ConstatError): void;
}

export type FinalizeOutcome =
  { kind: 'created' | 'exists'; constatId: string } | { kind: 'not-signable'; reason: string };

/** Turns a signed document into a stored constat (finalization/finalizer.ts). */
export interface Finalizer {
  finalize(input: FinalizeInput): Promise<FinalizeOutcome>;
}

export interface FinalizeInput {
  sessionId: string;
  formVersion: string;
  snapshot: Uint8Array;
  content: ConstatContent;
  canonicalJson: string;
  contentHash: string;
  signatures: Record<Role, SignatureRecord>;
}

export type RejectReason = 'forbidden' | 'retry' | 'malformed' | 'too-large' | 'too-deep';

/** What the room engine reports (server/metrics.ts counts it). */
export interface SyncObserver {
  updateAccepted(bytes: number): void;
  updateRejected(reason: RejectReason): void;
  /** The inspector let through an update that left something pending (it was dropped). */
  pendingDropped(): void;
  /** Awareness entries a device may not write (another client's id), dropped. */
  presenceDropped(entries: number): void;
  /** A background task (review, timer, sweep) failed; it was logged and the process goes on. */
  backgroundFailed(task: string): void;
  draftSaved(ms: number): void;
  draftSaveFailed(): void;
}

/**
 * How a live document's changes reach storage (durability.ts): debounced draft saves on the
 * in-process hub, the compactor's merges of the hub's streams on Redis.
 */
export interface Durability {
  /** The document changed (any origin but loading). */
  record(update: Uint8Array): void;
  /** Something is not stored yet: the document must stay awake until it is. */
  readonly pending: boolean;
  /** Stores what is unsaved now, if this durability saves on its own (concurrent calls share). */
  flush(): Promise<void>;
  /** Stores everything the document holds (it ends or unloads); `state` is its whole state. */
  persist(state: () => Promise<Uint8Array>): Promise<void>;
  /** Stops background work. */
  close(): void;
}

/** Merges a live document into its draft when the hub keeps the updates (hub/compactor.ts). */
export interface DraftMerger {
  compact(
    sessionId: string,
    extraState?: Uint8Array,
  ): Promise<'compacted' | 'nothing' | 'busy' | 'no-draft'>;
}
