/**
 * The live documents of this instance, one per session. Concurrent first connections share
 * one load; the document is unloaded (draft saved) when its last device leaves, unless a
 * device arrived while the unload was in flight. Documents left idle with their devices still
 * connected are put to sleep (LiveSession.sleepIfIdle) by a periodic sweep.
 */
import type { Logger } from 'pino';
import { LiveSession, type LiveSessionOptions } from './live-session.js';
import type { DeviceChannel } from './ports.js';

/** What a live document needs to know of its session. */
export interface LiveSessionRef {
  id: string;
  formVersion: string;
  expiresAt: string;
}

// Longest a sleep sweep holds the event loop at a time.
const SWEEP_SLICE_MS = 4;

export type LiveSessionFactory = (session: LiveSessionRef) => LiveSessionOptions;

export class LiveSessions {
  readonly #loading = new Map<string, Promise<LiveSession>>();
  // A document being unloaded must finish saving before it is loaded again, or the new copy
  // would start from a draft that lacks the last edits.
  readonly #unloading = new Map<string, Promise<void>>();
  /** The loaded ones (what `#loading` resolved to), for the sleep sweep. */
  readonly #loaded = new Map<string, LiveSession>();
  readonly #log: Logger;
  readonly #sleepAfterMs: number;
  readonly #sweeper: NodeJS.Timeout | undefined;
  #closed = false;
  #sweeping = false;

  /** `sleepAfterMs`: idle time after which a document sleeps; 0 keeps every document awake. */
  constructor(
    private readonly options: LiveSessionFactory,
    logger: Logger,
    { sleepAfterMs = 0 }: { sleepAfterMs?: number } = {},
  ) {
    this.#log = logger;
    this.#sleepAfterMs = sleepAfterMs;
    if (sleepAfterMs > 0) {
      this.#sweeper = setInterval(() => this.#sweep(), Math.min(5_000, sleepAfterMs / 4));
      this.#sweeper.unref();
    }
  }

  /**
   * Puts to sleep the documents idle for the configured time, in slices of a few ms: after a
   * burst of activity thousands may fall asleep in one sweep, and encoding them all at once
   * would stall every session of the instance.
   */
  #sweep(): void {
    if (this.#sweeping) return;
    this.#sweeping = true;
    const idleSince = Date.now() - this.#sleepAfterMs;
    const candidates = [...this.#loaded.values()];
    let next = 0;
    const slice = () => {
      const until = performance.now() + SWEEP_SLICE_MS;
      while (next < candidates.length && performance.now() < until) {
        candidates[next++]!.sleepIfIdle(idleSince);
      }
      if (next < candidates.length && !this.#closed) setImmediate(slice);
      else this.#sweeping = false;
    };
    slice();
  }

  /** Documents loaded here and asleep. */
  get asleep(): number {
    let n = 0;
    for (const live of this.#loaded.values()) if (live.asleep) n++;
    return n;
  }

  get size(): number {
    return this.#loading.size;
  }

  /** Loads (or reuses) the session's document and attaches the device to it. */
  async attach(session: LiveSessionRef, channel: DeviceChannel): Promise<LiveSession> {
    return this.#acquire(session, (live) => live.attach(channel));
  }

  async #acquire(session: LiveSessionRef, take: (live: LiveSession) => void): Promise<LiveSession> {
    const sessionId = session.id;
    for (;;) {
      let loading = this.#loading.get(sessionId);
      if (!loading) {
        const unloading = this.#unloading.get(sessionId);
        if (unloading) {
          await unloading;
          continue;
        }
        loading = LiveSession.load(this.options(session));
        this.#loading.set(sessionId, loading);
        loading.catch(() => {
          if (this.#loading.get(sessionId) === loading) this.#loading.delete(sessionId);
        });
      }
      const live = await loading;
      // Re-check after the await: the document may have been unloaded meanwhile.
      if (this.#loading.get(sessionId) === loading) {
        this.#loaded.set(sessionId, live);
        take(live);
        return live;
      }
    }
  }

  /** Detaches a device; the last one out unloads the document. */
  async detach(live: LiveSession, channel: DeviceChannel): Promise<void> {
    live.detach(channel);
    await this.#unloadIfIdle(live);
  }

  async #unloadIfIdle(live: LiveSession): Promise<void> {
    if (live.deviceCount > 0) return;
    const loading = this.#loading.get(live.sessionId);
    if (!loading) return;
    this.#loading.delete(live.sessionId);
    if (this.#loaded.get(live.sessionId) === live) this.#loaded.delete(live.sessionId);
    const unloading = live.destroy().catch((err: unknown) => {
      this.#log.error(
        { err, sessionId: live.sessionId },
        'failed to save the draft while unloading',
      );
    });
    this.#unloading.set(live.sessionId, unloading);
    try {
      await unloading;
    } finally {
      if (this.#unloading.get(live.sessionId) === unloading) this.#unloading.delete(live.sessionId);
    }
  }

  /**
   * Runs `fn` with the session's document loaded on this instance (loading it if no device of
   * this instance holds it), e.g. to verify a signature against the server's own copy.
   */
  async use<T>(session: LiveSessionRef, fn: (live: LiveSession) => Promise<T>): Promise<T> {
    const live = await this.#acquire(session, (l) => l.hold());
    try {
      return await fn(live);
    } finally {
      live.release();
      await this.#unloadIfIdle(live);
    }
  }

  ids(): IterableIterator<string> {
    return this.#loading.keys();
  }

  get(sessionId: string): Promise<LiveSession> | undefined {
    return this.#loading.get(sessionId);
  }

  /** Saves every live document and unloads it (shutdown). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#sweeper);
    const all = [...this.#loading.values()];
    this.#loading.clear();
    this.#loaded.clear();
    await Promise.allSettled([
      ...all.map(async (p) => (await p).destroy()),
      ...this.#unloading.values(),
    ]);
  }
}
