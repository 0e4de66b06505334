/**
 * One constat document live on this instance: the Y.Doc and its awareness, the devices
 * connected here, the hub subscription, sleep and wake. Created by LiveSessions (one per
 * session per instance), destroyed when its last device leaves. What happens to it is in
 * modules of their own:
 *
 * - an update a device sends goes through the update gate (update-gate.ts);
 * - signing, review and finalization are a state machine (finalization.ts);
 * - its changes reach storage through its durability (durability.ts): debounced draft saves
 *   on the in-process hub, the compactor on Redis.
 *
 * Beside the Y.Doc the document keeps its state as encoded updates (document-log.ts), so no
 * whole-document encoding runs on the event loop while it is edited: the size is kept
 * incrementally, and the whole state, when needed, is merged by a worker thread
 * (yjs-offload.ts).
 *
 * A document nobody touched for a while goes to sleep (`sleepIfIdle`): the Y.Doc is dropped
 * (its log is the sleeping state), while devices stay connected and presence keeps flowing.
 * The next use (an edit, a hub update, a signature) rebuilds it from that state. An idle
 * session then costs its sockets and a few KB instead of the whole Y.Doc (tens of KB with the
 * skeleton).
 *
 * (Over 300 lines, a third of them comments: what is left shares the document's private
 * awake-or-asleep state, which the modules above reach only through the hosts they are given.)
 */
import * as Y from 'yjs';
import * as awarenessProtocol from 'y-protocols/awareness';
import type { Logger } from 'pino';
import { ConstatError } from '../constat/errors.js';
import { writeEnded, type ConstatContent } from '../constat/constat-doc.js';
import type { Hub, HubMessage } from './hub.js';
import type { DraftStore } from './draft-store.js';
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
import { ContentCache } from './content-cache.js';
import { DocumentLog } from './document-log.js';
import type { DurabilityFactory } from './durability.js';
import { Finalization, type FinalizationHost, type SignInput } from './finalization.js';
import type { DeviceChannel, Durability, Finalizer, SyncObserver } from './ports.js';
import { CATCH_UP_DELAYS_MS, UpdateGate, type GateHost } from './update-gate.js';
import type { YjsOffload } from './yjs-offload.js';
import { applyParts, newDoc, rebuild } from './yjs-ops.js';
import { PresenceGate, safePresence } from './presence-gate.js';

export interface LiveSessionOptions {
  sessionId: string;
  formVersion: string;
  hub: Hub;
  /** Where the document is loaded from. */
  drafts: DraftStore;
  /** How its changes are stored (chosen by the hub the server runs on). */
  durability: DurabilityFactory;
  /** Whole-document Yjs work off the event loop. */
  offload: YjsOffload;
  logger: Logger;
  observer: SyncObserver;
  maxDocumentBytes: number;
  finalizer: Finalizer;
  /** When the session expires: devices are warned (`expiring`), then closed. */
  expiresAt: string;
  /** Told when signatures or the constat id change (subscriptions). */
  onChanged?: () => void;
}

// An instance that saw both signatures arrive from elsewhere finalizes after this long if the
// constat id has not arrived meanwhile (a shared hub only).
const FINALIZE_TAKEOVER_MS = 3_000;
// Devices get an `expiring` event this long before the session expires.
const EXPIRY_WARNING_MS = 10 * 60_000;
// Below this size (encoded) an awake document answers a device's sync from its Y.Doc, on the
// spot; above it, or asleep, from its log off the event loop.
const ANSWER_LIVE_BELOW = 64 * 1024;

export class LiveSession {
  /** Awake: the document. Asleep: undefined; `#encoded` holds its state. */
  #doc: Y.Doc | undefined = newDoc();
  /** The document's state as encoded updates (set once loaded). */
  #encoded!: DocumentLog;
  /** Asleep: the state vector the document had. */
  #asleepVector: Uint8Array | undefined;
  readonly #durability: Durability;
  #touchedAt = Date.now();
  // Presence is not document content: it has its own (empty) doc and survives the sleep.
  readonly awareness = new awarenessProtocol.Awareness(newDoc());
  readonly #channels = new Map<string, { channel: DeviceChannel }>();
  readonly #presence = new PresenceGate(this.awareness);
  readonly #opts: LiveSessionOptions;
  readonly #gate: UpdateGate;
  readonly #finalization: Finalization;
  #logger: Logger | undefined;
  #unsubscribe: () => void = () => {};
  #destroyed = false;
  #holds = 0;
  /** Settles once the server's own updates so far are in the hub (see broadcastEvent). */
  #serverAppends: Promise<unknown> = Promise.resolve();
  #timers: NodeJS.Timeout[] = [];
  #content: ContentCache | undefined;

  private constructor(opts: LiveSessionOptions) {
    this.#opts = opts;
    this.awareness.setLocalState(null);
    const live = this;
    // A method, not an arrow function: see #GateHost.
    const { logger } = {
      logger() {
        return live.#log;
      },
    };
    this.#durability = opts.durability({
      sessionId: opts.sessionId,
      logger,
      observer: opts.observer,
    });
    // Whether other instances serve this session too: they may hold edits this one has not
    // read yet, and one of them may be the one that finalizes.
    const shared = opts.hub.shared;
    this.#gate = new UpdateGate(new LiveSession.#GateHost(this), {
      hub: opts.hub,
      observer: opts.observer,
      maxDocumentBytes: opts.maxDocumentBytes,
      catchUpDelaysMs: shared ? CATCH_UP_DELAYS_MS : [],
    });
    this.#finalization = new Finalization(new LiveSession.#FinalizationHost(this), {
      finalizer: opts.finalizer,
      takeoverMs: shared ? FINALIZE_TAKEOVER_MS : 0,
    });
  }

  /**
   * What the update gate sees of a live session. The hosts are classes, not object literals:
   * V8 keeps an object literal with a getter in dictionary mode (about 500 bytes each), and tsx
   * compiles with esbuild's keepNames, which gives every arrow function assigned to a name its
   * own property dictionary (about 250 bytes each). With a few such functions elsewhere, that was
   * about 6 KiB of heap per idle session. A class's getters and methods are shared by its
   * instances.
   */
  static readonly #GateHost = class implements GateHost {
    constructor(readonly live: LiveSession) {}
    get sessionId(): string {
      return this.live.sessionId;
    }
    get doc(): Y.Doc {
      return this.live.doc;
    }
    get log(): DocumentLog {
      return this.live.#encoded;
    }
    get presence(): PresenceGate {
      return this.live.#presence;
    }
    assertWritable(): void {
      this.live.#finalization.assertWritable();
    }
    assertAlive(): void {
      this.live.#assertAlive();
    }
    sendEvent(channel: DeviceChannel, event: SessionEvent): void {
      this.live.sendEvent(channel, event);
    }
    logger(): Logger {
      return this.live.#log;
    }
  };

  /** What the finalization sees of a live session (a class: see #GateHost). */
  static readonly #FinalizationHost = class implements FinalizationHost {
    constructor(readonly live: LiveSession) {}
    get sessionId(): string {
      return this.live.sessionId;
    }
    get formVersion(): string {
      return this.live.#opts.formVersion;
    }
    get doc(): Y.Doc {
      return this.live.doc;
    }
    get destroyed(): boolean {
      return this.live.#destroyed;
    }
    content(): ContentCache {
      return this.live.#contentCache();
    }
    async state(): Promise<Uint8Array> {
      return (await this.live.#encoded.state()).update;
    }
    broadcastEvent(event: SessionEvent, changed?: boolean): void {
      this.live.broadcastEvent(event, changed);
    }
    endAll(reason: ConstatError): void {
      this.live.#endAll(reason);
    }
    guard(task: string, step: () => void): void {
      this.live.#guard(task, step);
    }
    timer(ms: number, fn: () => void): void {
      this.live.#timers.push(setTimeout(fn, ms));
    }
    logger(): Logger {
      return this.live.#log;
    }
  };

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
        measureAbove: opts.maxDocumentBytes,
        live() {
          return live.#doc;
        },
        logger() {
          return live.#log;
        },
      });
      applyParts(live.doc, live.#encoded.parts, LOAD_ORIGIN);
      // What the hub delivered before the draft was read is not in the draft yet.
      for (const update of since.slice(draft.updates.length)) live.#durability.record(update);
    } catch (err) {
      live.#unsubscribe();
      live.#durability.close();
      live.awareness.destroy();
      live.awareness.doc.destroy();
      live.#doc?.destroy();
      throw err;
    }
    live.#wire();
    ready = true;
    // Awake: a device connects to edit, most often. Putting the document to sleep at once
    // meant rebuilding it at the first edit (two rebuilds per load); an idle one sleeps with
    // the sweep like any other.
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
    if (this.#holds > 0 || this.#finalization.finalizing) return false;
    if (this.#durability.pending) return false;
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
    return this.#finalization.constatId;
  }

  /** A finalization is under way (or about to start: a review is queued). */
  get finalizing(): boolean {
    return this.#finalization.finalizing;
  }

  /** Relays a document's changes to devices and the hub, and saves and reviews them. */
  #wireDoc(doc: Y.Doc): void {
    doc.on('update', (update: Uint8Array, origin: unknown) => {
      if (origin === LOAD_ORIGIN) return;
      this.#encoded.record(update);
      this.#durability.record(update);
      const frame = writeUpdate(update);
      for (const { channel } of this.#channels.values()) {
        if (channel !== origin) channel.send(frame);
      }
      if (origin === SERVER_ORIGIN) {
        const message: HubMessage = { kind: 'update', update };
        const appended = this.#opts.hub.append(this.sessionId, message).catch((err: unknown) => {
          this.#log.error({ err }, 'failed to append a server update to the hub');
        });
        this.#serverAppends = Promise.all([this.#serverAppends, appended]);
      }
      this.#finalization.queueReview();
    });
  }

  #wire(): void {
    this.#wireDoc(this.doc);
    this.#finalization.queueReview();
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
          const message: HubMessage = { kind: 'awareness', update };
          this.#opts.hub.append(this.sessionId, message).catch((err: unknown) => {
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
    const { constatId, ended } = this.#finalization;
    if (constatId) {
      channel.end(new ConstatError('GONE', 'the constat is finalized', { constatId }));
    } else if (ended) {
      channel.end(new ConstatError('NOT_FOUND', `session is ${ended}`));
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
            this.#doc && this.#encoded.bytes < ANSWER_LIVE_BELOW
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
        return this.#gate.admit(channel, message.update);
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

  #assertAlive(): void {
    if (this.#destroyed) throw new ConstatError('UNAVAILABLE', 'session is shutting down');
  }

  /** Accepts a driver's signature (finalization.ts). */
  sign(input: SignInput): Promise<void> {
    return this.#finalization.sign(input);
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
  finalizationSettled(timeoutMs: number): Promise<void> {
    return this.#finalization.settled(timeoutMs);
  }

  /**
   * Marks the session as ended (abandoned, expired) in the document, for every instance, and
   * stores what the document holds before the caller closes the draft for good.
   */
  async end(status: 'abandoned' | 'expired'): Promise<void> {
    if (this.#finalization.ended || this.#finalization.constatId) return;
    writeEnded(this.doc, status, new Date().toISOString(), SERVER_ORIGIN);
    await this.#persist();
  }

  /** Everything the document holds, stored (its durability decides how). */
  #persist(): Promise<void> {
    return this.#durability.persist(async () => (await this.#encoded.state()).update);
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
              if (!this.#finalization.constatId)
                this.#endAll(new ConstatError('NOT_FOUND', 'session expired'));
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

  /** Saves now what is unsaved, if this document saves on its own (in-process hub). */
  async flush(): Promise<void> {
    await this.#durability.flush();
  }

  /** Saves what is unsaved and releases timers and subscriptions. Idempotent. */
  async destroy(): Promise<void> {
    if (this.#destroyed) return;
    this.#destroyed = true;
    this.#durability.close();
    for (const t of this.#timers) clearTimeout(t);
    try {
      // Finalized: the constat's transaction stored the signed document as the last draft and
      // closed it; nothing after it may be stored.
      if (this.#finalization.constatId) return;
      await this.#persist();
    } finally {
      this.#unsubscribe();
      this.awareness.destroy();
      this.awareness.doc.destroy();
      this.#doc?.destroy();
    }
  }
}
