/**
 * The hub carries a session's accepted updates and awareness between the server instances
 * that hold a device of that session. An update is appended to the hub before it is applied
 * and fanned out locally, so an acknowledged edit is durable in the hub even if this instance
 * dies a moment later.
 *
 * Implementations: `MemoryHub` (embedded default: one instance, nothing to carry) and the
 * Redis streams hub. One contract suite runs against both.
 */
export type HubMessage =
  { kind: 'update'; update: Uint8Array } | { kind: 'awareness'; update: Uint8Array };

export type HubListener = (message: HubMessage) => void;

export interface Hub {
  /** Appends a message to the session's channel; resolves once it is durable there. */
  append(sessionId: string, message: HubMessage): Promise<void>;
  /** Receives the session's messages appended by other instances. */
  subscribe(sessionId: string, listener: HubListener): () => void;
  close(): Promise<void>;
}

/** In-process hub: with a single instance there is no other instance to reach. */
export class MemoryHub implements Hub {
  readonly #listeners = new Map<string, Set<HubListener>>();

  async append(): Promise<void> {}

  subscribe(sessionId: string, listener: HubListener): () => void {
    let set = this.#listeners.get(sessionId);
    if (!set) this.#listeners.set(sessionId, (set = new Set()));
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0) this.#listeners.delete(sessionId);
    };
  }

  async close(): Promise<void> {
    this.#listeners.clear();
  }
}
