/**
 * One constat document live on this instance: the Y.Doc and its awareness, the devices
 * connected here, the hub subscription and the debounced draft save. Created by
 * LiveSessions (one per session per instance), destroyed when its last device leaves.
 */
import * as Y from 'yjs';
import * as awarenessProtocol from 'y-protocols/awareness';
import type { Logger } from 'pino';
import type { Hub, HubMessage } from './hub.js';
import type { DraftStore } from './draft-store.js';
import type { Role } from './permissions.js';
import { inspectUpdate } from './update-inspector.js';
import { ownerOf, recordOwners } from './client-owners.js';
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
import { ConstatError } from './errors.js';

/** A connected device as the live session sees it (the websocket lives in server/). */
export interface DeviceChannel {
  readonly id: string;
  readonly role: Role;
  send(frame: Uint8Array): void;
}

export interface SyncObserver {
  updateAccepted(bytes: number): void;
  updateRejected(reason: 'forbidden' | 'retry' | 'malformed' | 'too-large'): void;
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

// While another instance's read loop has not caught up, an update may reference edits this
// instance has not read yet: wait this long, in steps, before refusing it as transient.
const CATCH_UP_DELAYS_MS = [10, 20, 50, 100, 200, 400];

export interface LiveSessionOptions {
  sessionId: string;
  formVersion: string;
  hub: Hub;
  drafts: DraftStore;
  /** Required with a shared hub: the live document never writes drafts itself then. */
  merger?: DraftMerger;
  logger: Logger;
  observer: SyncObserver;
  saveDebounceMs: number;
  maxDocumentBytes: number;
}

export class LiveSession {
  readonly doc = new Y.Doc();
  readonly awareness = new awarenessProtocol.Awareness(this.doc);
  readonly #channels = new Map<string, { channel: DeviceChannel; awarenessClients: Set<number> }>();
  readonly #opts: LiveSessionOptions;
  readonly #log: Logger;
  #unsubscribe: () => void = () => {};
  #saveTimer: NodeJS.Timeout | undefined;
  #dirty = false;
  #saving: Promise<void> | undefined;
  #approxBytes = 0;
  #destroyed = false;

  private constructor(opts: LiveSessionOptions) {
    this.#opts = opts;
    this.#log = opts.logger.child({ sessionId: opts.sessionId });
    this.awareness.setLocalState(null);
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
      () => Y.encodeStateAsUpdate(live.doc),
    );
    try {
      const draft = await opts.drafts.load(opts.sessionId);
      if (!draft) throw new ConstatError('NOT_FOUND', `no document for session ${opts.sessionId}`);
      Y.applyUpdate(live.doc, draft.state, LOAD_ORIGIN);
      // Stale presence from the catch-up is skipped: devices renew theirs every 15 s.
      for (const m of early)
        if (m.kind === 'update') Y.applyUpdate(live.doc, m.update, LOAD_ORIGIN);
      live.#approxBytes = Y.encodeStateAsUpdate(live.doc).byteLength;
    } catch (err) {
      live.#unsubscribe();
      live.awareness.destroy();
      live.doc.destroy();
      throw err;
    }
    live.#wire();
    ready = true;
    return live;
  }

  /** One bad hub entry is logged and skipped; it must not stop the session from loading. */
  #fromHub(message: HubMessage, origin: symbol = HUB_ORIGIN): void {
    try {
      if (message.kind === 'update') Y.applyUpdate(this.doc, message.update, origin);
      else awarenessProtocol.applyAwarenessUpdate(this.awareness, message.update, HUB_ORIGIN);
    } catch (err) {
      this.#log.error({ err }, 'ignored an undecodable hub message');
    }
  }

  get sessionId(): string {
    return this.#opts.sessionId;
  }

  get deviceCount(): number {
    return this.#channels.size;
  }

  #wire(): void {
    this.doc.on('update', (update: Uint8Array, origin: unknown) => {
      if (origin === LOAD_ORIGIN) return;
      const frame = writeUpdate(update);
      for (const { channel } of this.#channels.values()) {
        if (channel !== origin) channel.send(frame);
      }
      if (origin === SERVER_ORIGIN) {
        this.#opts.hub.append(this.sessionId, { kind: 'update', update }).catch((err: unknown) => {
          this.#log.error({ err }, 'failed to append a server update to the hub');
        });
      }
      this.#approxBytes += update.byteLength;
      this.#scheduleSave();
    });
    this.awareness.on(
      'update',
      (
        { added, updated, removed }: { added: number[]; updated: number[]; removed: number[] },
        origin: unknown,
      ) => {
        const changed = [...added, ...updated, ...removed];
        const entry = [...this.#channels.values()].find((e) => e.channel === origin);
        if (entry) {
          for (const id of added) entry.awarenessClients.add(id);
          for (const id of removed) entry.awarenessClients.delete(id);
        }
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
    this.#channels.set(channel.id, { channel, awarenessClients: new Set() });
    channel.send(writeSyncStep1(Y.encodeStateVector(this.doc)));
    const states = [...this.awareness.getStates().keys()];
    if (states.length > 0) {
      channel.send(writeAwareness(awarenessProtocol.encodeAwarenessUpdate(this.awareness, states)));
    }
  }

  /** Forgets a device and clears its awareness, so the other device sees it leave. */
  detach(channel: DeviceChannel): void {
    const entry = this.#channels.get(channel.id);
    if (!entry) return;
    this.#channels.delete(channel.id);
    if (entry.awarenessClients.size > 0) {
      awarenessProtocol.removeAwarenessStates(
        this.awareness,
        [...entry.awarenessClients],
        SERVER_ORIGIN,
      );
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
          diff = Y.encodeStateAsUpdate(this.doc, message.stateVector);
        } catch {
          throw new ProtocolError('malformed state vector');
        }
        channel.send(writeSyncStep2(diff));
        return;
      }
      case 'sync-step2':
      case 'update':
        return this.#applyDeviceUpdate(channel, message.update);
      case 'awareness':
        try {
          awarenessProtocol.applyAwarenessUpdate(this.awareness, message.update, channel);
        } catch {
          throw new ProtocolError('malformed awareness update');
        }
        return;
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
    const verdict = inspectUpdate(this.doc, update, channel.role, (client) =>
      ownerOf(this.doc, client),
    );
    switch (verdict.kind) {
      case 'malformed':
        this.#opts.observer.updateRejected('malformed');
        throw new ProtocolError(verdict.reason);
      case 'forbidden':
        this.#refuse(channel, 'forbidden', 'FORBIDDEN', verdict.reason);
      case 'retry':
        this.#refuse(channel, 'retry', 'UNAVAILABLE', verdict.reason);
      case 'ok':
        break;
    }
    if (!verdict.changes) return; // nothing new (a duplicate, or an empty step 2)
    if (this.#approxBytes + update.byteLength > this.#opts.maxDocumentBytes) {
      this.#approxBytes = Y.encodeStateAsUpdate(this.doc).byteLength;
      if (this.#approxBytes + update.byteLength > this.#opts.maxDocumentBytes) {
        this.#refuse(
          channel,
          'too-large',
          'TOO_LARGE',
          `document would exceed ${this.#opts.maxDocumentBytes} bytes`,
        );
      }
    }
    if (verdict.newClients.length > 0) {
      recordOwners(this.doc, verdict.newClients, channel.role, SERVER_ORIGIN);
    }
    await this.#opts.hub.append(this.sessionId, { kind: 'update', update });
    if (this.#destroyed) throw new ConstatError('UNAVAILABLE', 'session is shutting down');
    Y.applyUpdate(this.doc, update, channel);
    this.#opts.observer.updateAccepted(update.byteLength);
  }

  #refuse(
    channel: DeviceChannel,
    metric: 'forbidden' | 'retry' | 'too-large',
    code: 'FORBIDDEN' | 'UNAVAILABLE' | 'TOO_LARGE',
    reason: string,
  ): never {
    this.#opts.observer.updateRejected(metric);
    this.#log.info({ role: channel.role, reason }, 'update refused');
    this.sendEvent(channel, { type: 'rejected-update', reason, code });
    throw new ConstatError(code, reason);
  }

  sendEvent(channel: DeviceChannel, event: SessionEvent): void {
    channel.send(writeSessionEvent(event));
  }

  broadcastEvent(event: SessionEvent): void {
    const frame = writeSessionEvent(event);
    for (const { channel } of this.#channels.values()) channel.send(frame);
  }

  #scheduleSave(): void {
    if (this.#opts.hub.shared) return; // the compactor merges the hub's updates into the draft
    this.#dirty = true;
    if (this.#saveTimer || this.#destroyed) return;
    this.#saveTimer = setTimeout(() => {
      this.#saveTimer = undefined;
      this.flush().catch(() => {}); // flush logs its own failure and leaves the draft dirty
    }, this.#opts.saveDebounceMs);
  }

  /** Saves the draft now if anything changed; concurrent calls share one save. */
  async flush(): Promise<void> {
    if (this.#saving) await this.#saving;
    if (!this.#dirty) return;
    this.#dirty = false;
    const started = performance.now();
    const state = Y.encodeStateAsUpdate(this.doc);
    this.#approxBytes = state.byteLength;
    this.#saving = this.#opts.drafts
      .save({
        sessionId: this.sessionId,
        formVersion: this.#opts.formVersion,
        state,
        stateVector: Y.encodeStateVector(this.doc),
      })
      .then(
        (saved) => {
          this.#opts.observer.draftSaved(performance.now() - started);
          if (!saved) this.#log.warn('draft is closed; live edits were not saved over it');
        },
        (err: unknown) => {
          this.#dirty = true;
          this.#opts.observer.draftSaveFailed();
          this.#log.error({ err }, 'draft save failed; will retry');
          if (!this.#destroyed) this.#scheduleSave();
          throw err;
        },
      )
      .finally(() => {
        this.#saving = undefined;
      });
    return this.#saving;
  }

  /**
   * With a shared hub everything this document holds is already in the hub or the draft; the
   * merge covers the one case where it is not (the hub lost its data while we held the edits).
   */
  async #mergeIntoDraft(): Promise<void> {
    if (!this.#opts.merger) throw new Error('a shared hub needs a draft merger');
    const state = Y.encodeStateAsUpdate(this.doc);
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
    clearTimeout(this.#saveTimer);
    this.#saveTimer = undefined;
    try {
      if (this.#opts.hub.shared) await this.#mergeIntoDraft();
      else await this.flush();
    } finally {
      this.#unsubscribe();
      this.awareness.destroy();
      this.doc.destroy();
    }
  }
}
