/**
 * The hub carries a session's accepted updates and awareness between the server instances
 * that hold a device of that session. An update is appended to the hub before it is applied
 * and fanned out locally, so an acknowledged edit is durable in the hub even if this instance
 * dies a moment later.
 *
 * Implementations: `MemoryHub` (embedded default: one instance, nothing to carry; the live
 * document saves its own drafts) and `RedisHub` (Redis streams; a compactor merges them into
 * the drafts). One contract suite runs against both (tests/hub.test.ts).
 */
export type HubMessage =
  { kind: 'update'; update: Uint8Array } | { kind: 'awareness'; update: Uint8Array };

export type HubListener = (message: HubMessage) => void;

export interface Hub {
  /**
   * True when other instances share the session through this hub. The hub then also keeps the
   * updates durable and a compactor merges them into drafts; when false (one instance) the
   * live document saves its own drafts.
   */
  readonly shared: boolean;
  /** Appends a message to the session's channel; resolves once it is durable there. */
  append(sessionId: string, message: HubMessage): Promise<void>;
  /**
   * Delivers every message of the session still held by the hub (its own appends included,
   * in order), then each new one another instance appends (an instance's own appends are
   * already applied where they were made; a shared hub may still deliver some back, after a
   * gap it had to read through: applying them again changes nothing). Resolves once the held messages were delivered: a caller that
   * loads the draft after that misses nothing, since messages are only dropped from the hub
   * after they were merged into the draft. `snapshot` returns the whole live document; the hub
   * re-appends it if it finds it lost the session's messages.
   */
  subscribe(
    sessionId: string,
    listener: HubListener,
    snapshot?: () => Promise<Uint8Array>,
  ): Promise<() => void>;
  close(): Promise<void>;
}

/** In-process hub: with a single instance there is no other instance to reach. */
export class MemoryHub implements Hub {
  readonly shared = false;

  async append(): Promise<void> {}

  async subscribe(): Promise<() => void> {
    return () => {};
  }

  async close(): Promise<void> {}
}
