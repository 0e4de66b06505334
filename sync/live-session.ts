/**
 * One constat document live on this instance: the Y.Doc and its awareness, the devices
 * connected here, the hub subscription and the debounced draft save. Created by
 * LiveSessions (one per session per instance), destroyed when its last device leaves.
 *
 * Beside the Y.Doc the document keeps its state as encoded updates (document-log.ts), so no
 * whole-document encoding runs on the event loop while it is edited: saves append what
 * changed (draft-writer.ts), the size is kept incrementally, and the whole state, when needed,
 * is merged by a worker thread (yjs-offload.ts).
 *
 * A document nobody touched for a while goes to sleep (`sleepIfIdle`): the Y.Doc is dropped
 * (its log is the sleeping state), while devices stay connected and presence keeps flowing.
 * The next use (an edit, a hub update, a signature) rebuilds it from that state. An idle
 * session then costs its sockets and a few KB instead of the whole Y.Doc (tens of KB with the
 * skeleton).
 */
import * as Y from 'yjs';
import * as awarenessProtocol from 'y-protocols/awareness';
import type { Logger } from 'pino';
import type { Hub, HubMessage } from './hub.js';
import type { DraftStore } from './draft-store.js';
import type { Role } from '../constat/permissions.js';
import { inspectUpdate } from './update-inspector.js';
import { ownerOf, recordOwners } from '../constat/client-owners.js';
import { HUB_ORIGIN, LOAD_ORIGIN, SERVER_ORIGIN } from './origins.js';
import {
  ProtocolError,
  writeAwareness,
  writeSessionEvent,
  writeSyncStep1,
  writeSyncStep2,
  writeUpdate,
  type IncomingMessage,
  type SessionEvent,
} from './protocol.js';
import { ConstatError } from '../constat/errors.js';
import {
  clearSignatures,
  readConstatId,
  readEnded,
  readSignatures,
  writeConstatId,
  writeEnded,
  writeSignature,
  type ConstatContent,
  type SignatureRecord,
} from '../constat/constat-doc.js';
import { ContentCache } from './content-cache.js';
import { DocumentLog } from './document-log.js';
import type { DraftFolder } from './draft-folder.js';
import { DraftWriter } from './draft-writer.js';
import type { YjsOffload } from './yjs-offload.js';
import { applyParts, rebuild } from './yjs-ops.js';
import { PresenceGate, safePresence } from './presence-gate.js';

/** A connected device as the live session sees it (the websocket lives in server/). */
export interface DeviceChannel {
  readonly id: string;
  readonly role: Role;
  send(frame: Uint8Array): void;
  /** Ends the connection for this reason (mapped to a close code by the channel). */
  end(reason: ConstatError): void;
}

/** Turns a signed document into a stored constat (implemented outside sync/). */
export interface Finalizer {
  finalize(
    input: FinalizeInput,
  ): Promise<
    { kind: 'created' | 'exists'; constatId: string } | { kind: 'not-signable'; reason: string }
  >;
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

export interface SyncObserver {
  updateAccepted(bytes: number): void;
  updateRejected(reason: 'forbidden' | 'retry' | 'malformed' | 'too-large' | 'too-deep'): void;
  /** The inspector let through an update that left something pending (it was dropped). */
  pendingDropped(): void;
  /** Awareness entries a device may not write (another client's id), dropped. */
  presenceDropped(entries: number): void;
  /** A background task (review, timer, sweep) failed; it was logged and the process goes on. */
  backgroundFailed(task: string): void;
  draftSaved(ms: number): void;
  draftSaveFailed(): void;
}

/** Merges a live document into its draft when the hub keeps the updates (compactor.ts). */
export interface DraftMerger {
  compact(
    sessionId: string,
    extraState?: Uint8Array,
  ): Promise<'compacted' | 'nothing' | 'busy' | 'no-draft'>;
}

// An update may reference edits of another instance that have not reached this one yet:
// wait this long, in steps, before refusing it as transient.
const CATCH_UP_DELAYS_MS = [10, 20, 50, 100, 200, 400];

export interface LiveSessionOptions {
  sessionId: string;
  formVersion: string;
  hub: Hub;
  drafts: DraftStore;
  /** Folds appended draft updates into the draft (in-process hub: this document appends). */
  folder: DraftFolder;
  /** Whole-document Yjs work off the event loop. */
  offload: YjsOffload;
  /** Required with a shared hub: the live document never writes drafts itself then. */
  merger?: DraftMerger;
  logger: Logger;
  observer: SyncObserver;
  saveDebounceMs: number;
  maxDocumentBytes: number;
  finalizer: Finalizer;
  /** When the session expires: devices are warned (`expiring`), then closed. */
  expiresAt: string;
  /** Told when signatures or the constat id change (subscriptions). */
  onChanged?: () => void;
}

const FINALIZE_RETRY_MS = { first: 250, max: 10_000 };
// An instance that saw both signatures arrive from elsewhere finalizes after this long if the
// constat id has not arrived meanwhile.
const FINALIZE_TAKEOVER_MS = 3_000;
// Devices get an `expiring` event this long before the session expires.
const EXPIRY_WARNING_MS = 10 * 60_000;
// Near the size limit, the estimate is measured exactly (off the event loop) only if this
// much was recorded since the last measure; below it the estimate decides.
const REMEASURE_MIN_BYTES = 4 * 1024;
// A document at least this large (encoded) does not start asleep after loading: it is
// most likely loaded to be edited, and waking it means rebuilding it once more.
const START_AWAKE_BYTES = 64 * 1024;

export class LiveSession {
  /** Awake: the document. Asleep: undefined; `#encoded` holds its state. */
  #doc: Y.Doc | undefined = new Y.Doc();
  /** The document's state as encoded updates (set once loaded). */
  #encoded!: DocumentLog;
  /** Asleep: the state vector the document had. */
  #asleepVector: Uint8Array | undefined;
  /** In-process hub only: the draft saves. */
  #writer: DraftWriter | undefined;
  #touchedAt = Date.now();
  // Presence is not document content: it has its own (empty) doc and survives the sleep.
  readonly awareness = new awarenessProtocol.Awareness(new Y.Doc());
  readonly #channels = new Map<string, { channel: DeviceChannel }>();
  readonly #presence = new PresenceGate(this.awareness);
  readonly #opts: LiveSessionOptions;
  #logger: Logger | undefined;
  #unsubscribe: () => void = () => {};
  #destroyed = false;
  #holds = 0;
  /** Set once the document names its constat: read-only from then on. */
  #constatId: string | undefined;
  #ended: string | undefined;
  #reviewQueued = false;
  /** Settles once the server's own updates so far are in the hub (see broadcastEvent). */
  #serverAppends: Promise<unknown> = Promise.resolve();
  /** The first review of a loaded document has run (see #review). */
  #reviewed = false;
  #announced = new Map<Role, string>();
  #finalizing = false;
  /** When this instance wrote each party's signature (`signedAt`): who finalizes. */
  readonly #signedHere = new Map<Role, string>();
  #takeover: NodeJS.Timeout | undefined;
  /** Settles when the finalization under way stops (committed, refused or shut down). */
  #finalization: Promise<void> = Promise.resolve();
  #timers: NodeJS.Timeout[] = [];
  #content: ContentCache | undefined;

  private constructor(opts: LiveSessionOptions) {
    this.#opts = opts;
    this.awareness.setLocalState(null);
    if (!opts.hub.shared) {
      this.#writer = new DraftWriter({
        sessionId: opts.sessionId,
        drafts: opts.drafts,
        folder: opts.folder,
        offload: opts.offload,
        debounceMs: opts.saveDebounceMs,
        logger: () => this.#log,
        onSaved: (ms) => opts.observer.draftSaved(ms),
        onFailed: () => opts.observer.draftSaveFailed(),
      });
    }
  }

  /**
   * Loads the session's draft. A session without a draft cannot be served: it was never
   * opened here, and an empty document must never be saved over what storage may hold.
   */
  static async load(opts: LiveSessionOptions): Promise<LiveSession> {
    const live = new LiveSession(opts);
    // Subscribe before reading the draft: the hub drops messages only after merging them into
    // the draft, so whatever the catch-up misses, the draft read afterwards holds.
    const early: HubMessage[] = [];
    let ready = false;
    live.#unsubscribe = await opts.hub.subscribe(
      opts.sessionId,
      (message) => (ready ? live.#fromHub(message) : early.push(message)),
      async () => (await live.#encoded.state()).update,
    );
    try {
      const draft = await opts.drafts.load(opts.sessionId);
      if (!draft) throw new ConstatError('NOT_FOUND', `no document for session ${opts.sessionId}`);
      // Stale presence from the catch-up is skipped: devices renew theirs every 15 s.
      const since = [
        ...draft.updates,
        ...early.flatMap((m) => (m.kind === 'update' ? [m.update] : [])),
      ];
      live.#encoded = new DocumentLog(draft.state, since, {
        offload: opts.offload,
        live: () => live.#doc,
        logger: () => live.#log,
      });
      applyParts(live.doc, live.#encoded.parts, LOAD_ORIGIN);
    } catch (err) {
      live.#unsubscribe();
      live.awareness.destroy();
      live.awareness.doc.destroy();
      live.#doc?.destroy();
      throw err;
    }
    live.#wire();
    ready = true;
    // Most loads are a device connecting to a session nobody is typing in: the document starts
    // asleep once its first review ran (queued by #wire), and the first edit wakes it.
    await null;
    if (live.#encoded.bytes < START_AWAKE_BYTES) live.#sleep();
    return live;
  }

  /** One bad hub entry is logged and skipped; it must not stop the session from loading. */
  #fromHub(message: HubMessage, origin: symbol = HUB_ORIGIN): void {
    try {
      if (message.kind === 'update') Y.applyUpdate(this.doc, message.update, origin);
      else {
        const presence = safePresence(message.update);
        if (presence) awarenessProtocol.applyAwarenessUpdate(this.awareness, presence, HUB_ORIGIN);
      }
    } catch (err) {
      this.#log.error({ err }, 'ignored an undecodable hub message');
    }
  }

  // Made on first use: most sessions never log, and a child logger per session is not free.
  get #log(): Logger {
    return (this.#logger ??= this.#opts.logger.child({ sessionId: this.#opts.sessionId }));
  }

  get sessionId(): string {
    return this.#opts.sessionId;
  }

  /** The document, woken up if it was asleep. Every use counts as activity. */
  get doc(): Y.Doc {
    this.#touchedAt = Date.now();
    return this.#doc ?? this.#wake();
  }

  get asleep(): boolean {
    return this.#doc === undefined;
  }

  #wake(): Y.Doc {
    const doc = rebuild(this.#encoded.parts, LOAD_ORIGIN);
    this.#asleepVector = undefined;
    this.#doc = doc;
    this.#wireDoc(doc);
    return doc;
  }

  /**
   * Puts the document to sleep if nothing used it since `idleSince` (ms epoch) and nothing is
   * pending on it (a save, a review, a finalization, a signing request). True if it slept.
   */
  sleepIfIdle(idleSince: number): boolean {
    if (this.#touchedAt > idleSince) return false;
    let slept = false;
    this.#guard('sleep', () => (slept = this.#sleep()));
    return slept;
  }

  #sleep(): boolean {
    const doc = this.#doc;
    if (!doc || this.#destroyed) return false;
    if (this.#holds > 0 || this.#finalizing || this.#reviewQueued) return false;
    if (this.#writer?.pending) return false;
    // Nothing is encoded here: the log already holds the state (merged into one part in the
    // background, off the event loop for a large document). The vector answers devices that
    // connect meanwhile.
    this.#asleepVector = Y.encodeStateVector(doc);
    this.#encoded.compact(); // while the Y.Doc is here: a small one is encoded from it at once
    this.#doc = undefined;
    this.#content = undefined;
    doc.destroy();
    return true;
  }

  /** Devices attached, plus server-side holds (a signing request using the document). */
  get deviceCount(): number {
    return this.#channels.size + this.#holds;
  }

  hold(): void {
    this.#holds++;
  }

  release(): void {
    this.#holds = Math.max(0, this.#holds - 1);
  }

  get constatId(): string | undefined {
    return this.#constatId;
  }

  /** A finalization is under way (or about to start: a review is queued). */
  get finalizing(): boolean {
    return this.#finalizing || this.#reviewQueued;
  }

  /** Relays a document's changes to devices and the hub, and saves and reviews them. */
  #wireDoc(doc: Y.Doc): void {
    doc.on('update', (update: Uint8Array, origin: unknown) => {
      if (origin === LOAD_ORIGIN) return;
      this.#encoded.record(update);
      this.#writer?.record(update);
      const frame = writeUpdate(update);
      for (const { channel } of this.#channels.values()) {
        if (channel !== origin) channel.send(frame);
      }
      if (origin === SERVER_ORIGIN) {
        const appended = this.#opts.hub
          .append(this.sessionId, { kind: 'update', update })
          .catch((err: unknown) => {
            this.#log.error({ err }, 'failed to append a server update to the hub');
          });
        this.#serverAppends = Promise.all([this.#serverAppends, appended]);
      }
      this.#queueReview();
    });
  }

  #wire(): void {
    this.#wireDoc(this.doc);
    this.#queueReview();
    this.#scheduleExpiry();
    this.awareness.on(
      'update',
      (
        { added, updated, removed }: { added: number[]; updated: number[]; removed: number[] },
        origin: unknown,
      ) => {
        const changed = [...added, ...updated, ...removed];
        const update = awarenessProtocol.encodeAwarenessUpdate(this.awareness, changed);
        // Sent to every device, the sender included: stock clients treat a silent connection
        // as dead after 30 s, and their own awareness renewal coming back keeps it alive.
        const frame = writeAwareness(update);
        for (const e of this.#channels.values()) e.channel.send(frame);
        if (origin !== HUB_ORIGIN) {
          this.#opts.hub
            .append(this.sessionId, { kind: 'awareness', update })
            .catch((err: unknown) => {
              this.#log.warn({ err }, 'failed to append awareness to the hub');
            });
        }
      },
    );
  }

  /** Starts the sync handshake with a newly connected device. */
  attach(channel: DeviceChannel): void {
    if (this.#destroyed) throw new ConstatError('UNAVAILABLE', 'session is shutting down');
    this.#channels.set(channel.id, { channel });
    this.#presence.connect(channel.id, channel.role);
    // Answered from the sleeping state as well: a device (re)connecting does not wake it.
    const stateVector = this.#doc ? Y.encodeStateVector(this.#doc) : this.#asleepVector!;
    channel.send(writeSyncStep1(stateVector));
    const states = [...this.awareness.getStates().keys()];
    if (states.length > 0) {
      channel.send(writeAwareness(awarenessProtocol.encodeAwarenessUpdate(this.awareness, states)));
    }
    const untilExpiry = Date.parse(this.#opts.expiresAt) - Date.now();
    if (untilExpiry > 0 && untilExpiry <= EXPIRY_WARNING_MS) {
      this.sendEvent(channel, { type: 'expiring', expiresAt: this.#opts.expiresAt });
    }
    if (this.#constatId) {
      channel.end(
        new ConstatError('GONE', 'the constat is finalized', { constatId: this.#constatId }),
      );
    } else if (this.#ended) {
      channel.end(new ConstatError('NOT_FOUND', `session is ${this.#ended}`));
    }
  }

  /** Forgets a device and clears its awareness, so the other device sees it leave. */
  detach(channel: DeviceChannel): void {
    const entry = this.#channels.get(channel.id);
    if (!entry) return;
    this.#channels.delete(channel.id);
    const leaving = this.#presence.disconnect(channel.id);
    if (leaving.length > 0) {
      awarenessProtocol.removeAwarenessStates(this.awareness, leaving, SERVER_ORIGIN);
    }
  }

  /**
   * Handles one message from a device. Resolves when it is fully applied; throws a
   * ConstatError for a refusal (mapped to a close code by the caller) after telling the device
   * why with a `rejected-update` event.
   */
  async handle(channel: DeviceChannel, message: IncomingMessage): Promise<void> {
    switch (message.kind) {
      case 'sync-step1': {
        let diff: Uint8Array;
        try {
          // A small awake document answers from the Y.Doc; a sleeping or large one from its
          // log, off the event loop when large (a new device asks for the whole document).
          diff =
            this.#doc && this.#encoded.bytes < START_AWAKE_BYTES
              ? Y.encodeStateAsUpdate(this.#doc, message.stateVector)
              : await this.#opts.offload.diff(this.#encoded.parts, message.stateVector);
        } catch {
          throw new ProtocolError('malformed state vector');
        }
        channel.send(writeSyncStep2(diff));
        return;
      }
      case 'sync-step2':
      case 'update':
        return this.#applyDeviceUpdate(channel, message.update);
      case 'awareness': {
        const { update, dropped } = this.#presence.admit(channel.id, message.update);
        if (dropped > 0) this.#opts.observer.presenceDropped(dropped);
        if (!update) return;
        try {
          awarenessProtocol.applyAwarenessUpdate(this.awareness, update, channel);
        } catch {
          throw new ProtocolError('malformed awareness update');
        }
        return;
      }
      case 'query-awareness':
        channel.send(
          writeAwareness(
            awarenessProtocol.encodeAwarenessUpdate(this.awareness, [
              ...this.awareness.getStates().keys(),
            ]),
          ),
        );
        return;
    }
  }

  async #applyDeviceUpdate(channel: DeviceChannel, update: Uint8Array): Promise<void> {
    this.#assertWritable();
    // No structs, no deletions: what a device in sync answers to our sync step 1. Nothing to
    // check or apply (and no reason to wake a sleeping document).
    if (update.byteLength === 2 && update[0] === 0 && update[1] === 0) return;
    const inspect = () =>
      inspectUpdate(
        this.doc,
        update,
        channel.role,
        (client) => ownerOf(this.doc, client),
        (client) => this.#presence.announcedBy(client),
      );
    let verdict = inspect();
    if (this.#opts.hub.shared) {
      for (const delay of CATCH_UP_DELAYS_MS) {
        if (verdict.kind !== 'retry') break;
        await new Promise((resolve) => setTimeout(resolve, delay));
        this.#assertWritable();
        if (this.#destroyed) throw new ConstatError('UNAVAILABLE', 'session is shutting down');
        verdict = inspect();
      }
    }
    switch (verdict.kind) {
      case 'malformed':
        this.#opts.observer.updateRejected('malformed');
        throw new ProtocolError(verdict.reason);
      case 'forbidden':
        this.#refuse(channel, 'forbidden', 'FORBIDDEN', verdict.reason);
      case 'too-deep':
        this.#refuse(channel, 'too-deep', 'TOO_LARGE', verdict.reason);
      case 'retry':
        this.#refuse(channel, 'retry', 'UNAVAILABLE', verdict.reason);
      case 'ok':
        break;
    }
    if (!verdict.changes) return; // nothing new (a duplicate, or an empty step 2)
    const max = this.#opts.maxDocumentBytes;
    if (this.#encoded.bytes + update.byteLength > max) {
      // The estimate says no; measure exactly (off the event loop) unless it just was.
      if (this.#encoded.bytesSinceMerge >= REMEASURE_MIN_BYTES) {
        await this.#encoded.state();
        this.#assertWritable();
        if (this.#destroyed) throw new ConstatError('UNAVAILABLE', 'session is shutting down');
      }
      if (this.#encoded.bytes + update.byteLength > max) {
        this.#refuse(channel, 'too-large', 'TOO_LARGE', `document would exceed ${max} bytes`);
      }
    }
    if (verdict.newClients.length > 0) {
      recordOwners(this.doc, verdict.newClients, channel.role, SERVER_ORIGIN);
    }
    await this.#opts.hub.append(this.sessionId, { kind: 'update', update });
    if (this.#destroyed) throw new ConstatError('UNAVAILABLE', 'session is shutting down');
    Y.applyUpdate(this.doc, update, channel);
    this.#dropPending();
    this.#opts.observer.updateAccepted(update.byteLength);
  }

  /**
   * The inspector accepts only updates that integrate completely, so this never finds
   * anything; if it ever does (a gap in the inspector), what Yjs parked is dropped rather than
   * kept to be applied over whatever arrives under those clocks later, and the gap is counted.
   */
  #dropPending(): void {
    const store = this.doc.store;
    if (!store.pendingStructs && !store.pendingDs) return;
    store.pendingStructs = null;
    store.pendingDs = null;
    this.#opts.observer.pendingDropped();
    this.#log.error('an accepted update left content pending; it was dropped');
  }

  #refuse(
    channel: DeviceChannel,
    metric: 'forbidden' | 'retry' | 'too-large' | 'too-deep',
    code: 'FORBIDDEN' | 'UNAVAILABLE' | 'TOO_LARGE',
    reason: string,
  ): never {
    this.#opts.observer.updateRejected(metric);
    this.#log.info({ role: channel.role, reason }, 'update refused');
    this.sendEvent(channel, { type: 'rejected-update', reason, code });
    throw new ConstatError(code, reason);
  }

  #assertWritable(): void {
    if (this.#constatId) {
      throw new ConstatError('GONE', 'the constat is finalized and can no longer change', {
        constatId: this.#constatId,
      });
    }
    if (this.#ended) throw new ConstatError('NOT_FOUND', `session is ${this.#ended}`);
  }

  /**
   * Accepts a driver's signature: the hash must be the server's own hash of its copy (given a
   * moment to catch up with edits still in flight), the content complete, the signature valid.
   */
  async sign(input: {
    role: Role;
    userId: string;
    deviceId: string;
    hash: string;
    signature: string;
    validate: (
      content: ConstatContent,
    ) =>
      | Array<{ path: string; code: string; message: string }>
      | Promise<Array<{ path: string; code: string; message: string }>>;
    verify: (message: string) => boolean;
    signingMessage: string;
    /** The key that verified the signature (base64), kept with it: keys can be replaced later. */
    publicKey: string;
    /** Its key id (RFC 7638 thumbprint), under which the key stays registered. */
    keyId: string;
  }): Promise<void> {
    this.#assertWritable();
    let current = this.contentHash();
    for (const deadline = Date.now() + 2_000; current !== input.hash && Date.now() < deadline;) {
      await new Promise((resolve) => setTimeout(resolve, 25));
      if (this.#destroyed) throw new ConstatError('UNAVAILABLE', 'session is shutting down');
      current = this.contentHash();
    }
    if (current !== input.hash) {
      throw new ConstatError('CONFLICT', 'the content changed: sign the current content hash', {
        currentHash: current,
      });
    }
    const fieldErrors = await input.validate(this.#contentCache().get().content);
    if (fieldErrors.length > 0) {
      throw new ConstatError('BAD_USER_INPUT', 'the constat is not complete', { fieldErrors });
    }
    // Validation may have waited on the media store: what it judged must still be the content.
    this.#assertWritable();
    if (this.contentHash() !== input.hash) {
      throw new ConstatError('CONFLICT', 'the content changed: sign the current content hash', {
        currentHash: this.contentHash(),
      });
    }
    if (!input.verify(input.signingMessage)) {
      throw new ConstatError('FORBIDDEN', 'the signature does not verify with the device key');
    }
    this.#assertWritable();
    const record: SignatureRecord = {
      hash: input.hash,
      signature: input.signature,
      deviceId: input.deviceId,
      userId: input.userId,
      publicKey: input.publicKey,
      keyId: input.keyId,
      signedAt: new Date().toISOString(),
    };
    writeSignature(this.doc, input.role, record, SERVER_ORIGIN);
    this.#signedHere.set(input.role, record.signedAt);
  }

  contentHash(): string {
    return this.#contentCache().get().hash;
  }

  /** The content as it would be signed now (materialised once per change). */
  content(): ConstatContent {
    return this.#contentCache().get().content;
  }

  #contentCache(): ContentCache {
    return (this.#content ??= new ContentCache(this.doc));
  }

  /**
   * Resolves once a finalization started by the latest change has ended, or after `timeoutMs`:
   * a signing request can then answer with the constat id.
   */
  async finalizationSettled(timeoutMs: number): Promise<void> {
    await null; // a review queued by the caller's change runs first
    if (!this.#finalizing) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.#finalization,
      new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs))),
    ]);
    clearTimeout(timer);
  }

  /**
   * Marks the session as ended (abandoned, expired) in the document, for every instance, and
   * stores what the document holds before the caller closes the draft for good.
   */
  async end(status: 'abandoned' | 'expired'): Promise<void> {
    if (this.#ended || this.#constatId) return;
    writeEnded(this.doc, status, new Date().toISOString(), SERVER_ORIGIN);
    if (this.#writer) await this.#writer.flush();
    else await this.#mergeIntoDraft();
  }

  #queueReview(): void {
    if (this.#reviewQueued || this.#destroyed) return;
    this.#reviewQueued = true;
    queueMicrotask(() => {
      this.#reviewQueued = false;
      if (!this.#destroyed) this.#guard('review', () => this.#review());
    });
  }

  /**
   * Runs a background step (a microtask or timer nobody awaits). A throw there would end the
   * process — one bad document taking every session down — so it is logged and counted and
   * the session goes on; what the step would have derived is derived again on the next change.
   */
  #guard(task: string, step: () => void): void {
    try {
      step();
    } catch (err) {
      this.#opts.observer.backgroundFailed(task);
      this.#log.error({ err, task }, 'background task failed');
    }
  }

  /**
   * Derives what follows from the document's state, the same way on every instance: the
   * constat id appearing ends editing; a signature over a hash that is no longer the content's
   * voids every signature; two signatures over the current hash start finalization.
   */
  #review(): void {
    // The first review of a loaded document learns what the document already says (signed,
    // finalized): that is no change. Announcing it would make every reader that loads the
    // document raise a change, and a subscription whose answer reads the signatures would
    // load it again for that change, and again, forever. Voiding is a change and is announced.
    const restated = !this.#reviewed;
    this.#reviewed = true;
    const constatId = readConstatId(this.doc);
    if (constatId && !this.#constatId) {
      this.#constatId = constatId;
      this.broadcastEvent({ type: 'finalized', constatId }, !restated);
      this.#endAll(new ConstatError('GONE', 'the constat is finalized', { constatId }));
      return;
    }
    if (this.#constatId) return;
    const ended = readEnded(this.doc);
    if (ended && !this.#ended) {
      this.#ended = ended;
      this.#endAll(new ConstatError('NOT_FOUND', `session is ${ended}`));
      return;
    }
    const signatures = readSignatures(this.doc);
    const roles = (['A', 'B'] as const).filter((r) => signatures[r]);
    if (roles.length === 0) {
      this.#announced.clear();
      return;
    }
    const hash = this.contentHash();
    if (roles.some((r) => signatures[r]!.hash !== hash)) {
      clearSignatures(this.doc, roles, SERVER_ORIGIN);
      this.#announced.clear();
      this.broadcastEvent({
        type: 'signatures-voided',
        reason: 'the content changed after signing',
      });
      return;
    }
    for (const r of roles) {
      if (this.#announced.get(r) !== hash) {
        this.#announced.set(r, hash);
        this.broadcastEvent({ type: 'signed', role: r, hash }, !restated);
      }
    }
    if (signatures.A && signatures.B) {
      // One instance finalizes: the one that wrote the later signature (B's on a tie), which
      // every instance can tell from the document alone, however the two arrived. The others
      // take over only if no constat id reached them in time (that instance died, say); the
      // transaction is exactly-once either way, this only saves the duplicate work.
      const last = signatures.A.signedAt > signatures.B.signedAt ? 'A' : 'B';
      const mine = this.#signedHere.get(last) === signatures[last]!.signedAt;
      if (mine || !this.#opts.hub.shared) this.#finalize();
      else this.#finalizeLater();
    }
  }

  #finalizeLater(): void {
    if (this.#takeover) return;
    this.#takeover = setTimeout(() => {
      this.#takeover = undefined;
      if (!this.#constatId && !this.#destroyed)
        this.#guard('finalize-takeover', () => this.#finalize());
    }, FINALIZE_TAKEOVER_MS);
    this.#timers.push(this.#takeover);
  }

  /** Runs finalization until it succeeds, retrying with backoff while storage is unavailable. */
  #finalize(): void {
    if (this.#finalizing) return;
    this.#finalizing = true;
    this.#finalization = (async () => {
      let delay = FINALIZE_RETRY_MS.first;
      try {
        while (!this.#destroyed && !this.#constatId) {
          const signatures = readSignatures(this.doc);
          const { content, canonical, hash } = this.#contentCache().get();
          if (
            !signatures.A ||
            !signatures.B ||
            signatures.A.hash !== hash ||
            signatures.B.hash !== hash
          )
            return;
          try {
            // The log is in step with the document: this is the state the content came from
            // (taken now, merged off the event loop).
            const { update: snapshot } = await this.#encoded.state();
            const outcome = await this.#opts.finalizer.finalize({
              sessionId: this.sessionId,
              formVersion: this.#opts.formVersion,
              snapshot,
              content,
              canonicalJson: canonical,
              contentHash: hash,
              signatures: { A: signatures.A, B: signatures.B },
            });
            if (outcome.kind === 'not-signable') {
              this.#log.warn({ reason: outcome.reason }, 'signed session cannot be finalized');
              return;
            }
            if (this.#destroyed) return;
            this.#log.info(
              { constatId: outcome.constatId, outcome: outcome.kind },
              'constat finalized',
            );
            writeConstatId(this.doc, outcome.constatId, SERVER_ORIGIN);
            return;
          } catch (err) {
            this.#log.error({ err, retryInMs: delay }, 'finalization failed; retrying');
            await new Promise((resolve) => {
              const timer = setTimeout(resolve, delay);
              this.#timers.push(timer);
            });
            delay = Math.min(delay * 2, FINALIZE_RETRY_MS.max);
          }
        }
      } finally {
        this.#finalizing = false;
      }
    })().catch((err: unknown) => this.#log.error({ err }, 'finalization stopped'));
  }

  #endAll(reason: ConstatError): void {
    for (const { channel } of this.#channels.values()) channel.end(reason);
  }

  #scheduleExpiry(): void {
    const at = Date.parse(this.#opts.expiresAt);
    const now = Date.now();
    const warnIn = at - EXPIRY_WARNING_MS - now;
    if (warnIn > 0 && warnIn < 2 ** 31 - 1) {
      this.#timers.push(
        setTimeout(
          () =>
            this.#guard('expiry-warning', () =>
              this.broadcastEvent({ type: 'expiring', expiresAt: this.#opts.expiresAt }),
            ),
          warnIn,
        ),
      );
    }
    if (at - now < 2 ** 31 - 1) {
      this.#timers.push(
        setTimeout(
          () =>
            this.#guard('expiry', () => {
              if (!this.#constatId) this.#endAll(new ConstatError('NOT_FOUND', 'session expired'));
            }),
          Math.max(0, at - now),
        ),
      );
    }
    for (const t of this.#timers) t.unref();
  }

  sendEvent(channel: DeviceChannel, event: SessionEvent): void {
    channel.send(writeSessionEvent(event));
  }

  /** Sends `event` to every device; `changed`: subscribers are told too (if it is a change). */
  broadcastEvent(event: SessionEvent, changed = true): void {
    if (
      changed &&
      (event.type === 'signed' || event.type === 'signatures-voided' || event.type === 'finalized')
    ) {
      // Told once the change is in the hub: a subscriber on another instance reads it from
      // there, and would otherwise find the document as it was before.
      const onChanged = this.#opts.onChanged;
      if (onChanged) void this.#serverAppends.then(onChanged);
    }
    const frame = writeSessionEvent(event);
    for (const { channel } of this.#channels.values()) channel.send(frame);
  }

  /** Saves the draft now if anything changed (in-process hub); concurrent calls share one save. */
  async flush(): Promise<void> {
    await this.#writer?.flush();
  }

  /**
   * With a shared hub everything this document holds is already in the hub or the draft; the
   * merge covers the one case where it is not (the hub lost its data while we held the edits).
   */
  async #mergeIntoDraft(): Promise<void> {
    if (!this.#opts.merger) throw new Error('a shared hub needs a draft merger');
    const { update: state } = await this.#encoded.state();
    const deadline = Date.now() + 10_000;
    for (;;) {
      const result = await this.#opts.merger.compact(this.sessionId, state);
      if (result !== 'busy') return;
      if (Date.now() > deadline)
        throw new Error('compaction lease stayed busy; the hub still holds the edits');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** Saves what is unsaved and releases timers and subscriptions. Idempotent. */
  async destroy(): Promise<void> {
    if (this.#destroyed) return;
    this.#destroyed = true;
    this.#writer?.close();
    for (const t of this.#timers) clearTimeout(t);
    try {
      // Finalized: the constat's transaction stored the signed document as the last draft and
      // closed it; nothing after it may be stored.
      if (this.#constatId) return;
      if (this.#writer) await this.#writer.flush();
      else await this.#mergeIntoDraft();
    } finally {
      this.#unsubscribe();
      this.awareness.destroy();
      this.awareness.doc.destroy();
      this.#doc?.destroy();
    }
  }
}
