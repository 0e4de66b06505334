/**
 * The hub on Redis streams (the y-redis design): one stream per session; an accepted update is
 * appended (XADD) before it is applied and fanned out; each instance runs ONE blocking read
 * loop over the streams of the sessions it holds and hands entries to their live documents.
 * A compactor (compactor.ts) later merges the stream into the session's draft and trims it.
 *
 * Entry layout: field `m` = one type byte (0 update, 1 awareness) followed by the payload.
 * Awareness rides the same stream so it is ordered with updates; the compactor skips it.
 */
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Hub, HubListener, HubMessage } from './hub.js';
import type { RedisKeys } from './redis-keys.js';

const TYPE_UPDATE = 0;
const TYPE_AWARENESS = 1;

export interface RedisHubOptions {
  /** Connection for commands. */
  redis: Redis;
  /** A dedicated connection for the blocking read (a blocked connection serves nobody else). */
  reader: Redis;
  keys: RedisKeys;
  logger: Logger;
  /** Entries per XREAD; bounds the memory one read can take. */
  readCount?: number;
  /** Upper bound of one blocking read; new subscriptions interrupt it anyway. */
  blockMs?: number;
  /** How long after an update its session is due for compaction. */
  compactionDelayMs: number;
  /** Called after each read with how far behind the newest entry read was (ms). */
  onReadLag?: (ms: number) => void;
  onStreamLost?: () => void;
}

interface Subscription {
  listeners: Set<HubListener>;
  /** Last stream id delivered. */
  lastId: string;
  /** The stream is known to exist (it held entries, or we appended). */
  exists: boolean;
  /** The whole document, re-appended when the stream turns out to be lost. */
  snapshot: (() => Uint8Array) | undefined;
}

// KEYS[1] stream; ARGV[1] '1' when this instance knows the stream existed; ARGV[2] entry.
// A stream is never deleted by us (trimming leaves it empty), so a known stream that is gone
// means Redis lost its data (a flush, a failover without persistence): refuse, and let the
// caller re-append the whole document first.
const APPEND = `
if ARGV[1] == '1' and redis.call('EXISTS', KEYS[1]) == 0 then return false end
return redis.call('XADD', KEYS[1], '*', 'm', ARGV[2])
`;

export function encodeEntry(message: HubMessage): Buffer {
  const out = Buffer.allocUnsafe(message.update.byteLength + 1);
  out[0] = message.kind === 'update' ? TYPE_UPDATE : TYPE_AWARENESS;
  out.set(message.update, 1);
  return out;
}

export function decodeEntry(fields: Buffer[]): HubMessage | undefined {
  for (let i = 0; i + 1 < fields.length; i += 2) {
    if (fields[i]!.toString() !== 'm') continue;
    const value = fields[i + 1]!;
    if (value.byteLength < 1) return undefined;
    const update = new Uint8Array(value.buffer, value.byteOffset + 1, value.byteLength - 1);
    if (value[0] === TYPE_UPDATE) return { kind: 'update', update };
    if (value[0] === TYPE_AWARENESS) return { kind: 'awareness', update };
    return undefined;
  }
  return undefined;
}

/** Milliseconds part of a stream id. */
export function idTime(id: string): number {
  return Number(id.slice(0, id.indexOf('-')));
}

export class RedisHub implements Hub {
  readonly shared = true;
  readonly #opts: RedisHubOptions;
  readonly #log: Logger;
  readonly #subs = new Map<string, Subscription>();
  #readerId: number | undefined;
  #wake: (() => void) | undefined;
  #loop: Promise<void> | undefined;
  #closed = false;

  constructor(opts: RedisHubOptions) {
    this.#opts = opts;
    this.#log = opts.logger.child({ component: 'redis-hub' });
  }

  async append(sessionId: string, message: HubMessage): Promise<void> {
    const { redis, keys } = this.#opts;
    const sub = this.#subs.get(sessionId);
    const key = keys.updates(sessionId);
    const added = await redis.eval(APPEND, 1, key, sub?.exists ? '1' : '0', encodeEntry(message));
    if (added === null) {
      this.#log.warn(
        { sessionId },
        'update stream lost (Redis data loss?); re-appending the whole document',
      );
      this.#opts.onStreamLost?.();
      if (sub?.snapshot) {
        await redis.xadd(key, '*', 'm', encodeEntry({ kind: 'update', update: sub.snapshot() }));
      }
      await redis.xadd(key, '*', 'm', encodeEntry(message));
    }
    if (sub) sub.exists = true;
    if (message.kind === 'update') {
      // LT: due at the latest one delay after this update, never later than already due. A
      // separate command: the index and the stream live in different slots of a cluster.
      await redis.zadd(
        keys.compactionIndex,
        'LT',
        Date.now() + this.#opts.compactionDelayMs,
        sessionId,
      );
    }
  }

  async subscribe(
    sessionId: string,
    listener: HubListener,
    snapshot?: () => Uint8Array,
  ): Promise<() => void> {
    let sub = this.#subs.get(sessionId);
    if (!sub) {
      sub = { listeners: new Set(), lastId: '0', exists: false, snapshot };
      this.#subs.set(sessionId, sub);
    }
    // Catch up on what the stream holds for this listener alone, then join the shared loop
    // (which delivers from the subscription's lastId on).
    const held = await this.#opts.redis.xrangeBuffer(this.#opts.keys.updates(sessionId), '-', '+');
    if (
      held.length > 0 ||
      (await this.#opts.redis.exists(this.#opts.keys.updates(sessionId))) === 1
    )
      sub.exists = true;
    for (const [id, fields] of held) {
      const message = decodeEntry(fields);
      if (message) listener(message);
      if (compareIds(id.toString(), sub.lastId) > 0 && sub.listeners.size === 0)
        sub.lastId = id.toString();
    }
    sub.listeners.add(listener);
    this.#ensureLoop();
    this.#interrupt();
    return () => {
      sub.listeners.delete(listener);
      if (sub.listeners.size === 0 && this.#subs.get(sessionId) === sub) {
        this.#subs.delete(sessionId);
        this.#interrupt();
      }
    };
  }

  #ensureLoop(): void {
    if (this.#loop || this.#closed) return;
    this.#loop = this.#run().catch((err: unknown) => this.#log.error({ err }, 'read loop stopped'));
  }

  /** Unblocks the pending XREAD so the next one includes the current set of streams. */
  #interrupt(): void {
    this.#wake?.();
    if (this.#readerId !== undefined) {
      this.#opts.redis.client('UNBLOCK', this.#readerId).catch((err: unknown) => {
        this.#log.warn({ err }, 'could not interrupt the read loop');
      });
    }
  }

  async #run(): Promise<void> {
    const { reader, keys } = this.#opts;
    this.#readerId = Number(await reader.client('ID'));
    while (!this.#closed) {
      if (this.#subs.size === 0) {
        await new Promise<void>((resolve) => (this.#wake = resolve));
        this.#wake = undefined;
        continue;
      }
      const sessions = [...this.#subs.keys()];
      const streamKeys = sessions.map((s) => keys.updates(s));
      const ids = sessions.map((s) => this.#subs.get(s)!.lastId);
      let result: Array<[Buffer, Array<[Buffer, Buffer[]]>]> | null;
      try {
        result = (await reader.xreadBuffer(
          'COUNT',
          this.#opts.readCount ?? 1000,
          'BLOCK',
          this.#opts.blockMs ?? 10_000,
          'STREAMS',
          ...streamKeys,
          ...ids,
        )) as typeof result;
      } catch (err) {
        if (this.#closed) return;
        // One bad read must not stop fan-out for every session: log, pause, go on.
        this.#log.warn({ err }, 'stream read failed; retrying');
        await new Promise((r) => setTimeout(r, 500));
        continue;
      }
      if (!result) continue;
      let newest = 0;
      for (const [key, entries] of result) {
        const sessionId = keys.sessionOfUpdates(key.toString());
        const sub = sessionId ? this.#subs.get(sessionId) : undefined;
        if (!sub) continue;
        for (const [rawId, fields] of entries) {
          const id = rawId.toString();
          if (compareIds(id, sub.lastId) <= 0) continue;
          sub.lastId = id;
          newest = Math.max(newest, idTime(id));
          const message = decodeEntry(fields);
          if (!message) {
            this.#log.warn({ sessionId, id }, 'skipped an undecodable stream entry');
            continue;
          }
          for (const listener of sub.listeners) {
            try {
              listener(message);
            } catch (err) {
              this.#log.error({ err, sessionId }, 'hub listener failed');
            }
          }
        }
      }
      if (newest > 0) this.#opts.onReadLag?.(Math.max(0, Date.now() - newest));
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#subs.clear();
    this.#wake?.();
    this.#opts.reader.disconnect();
    await this.#loop;
  }
}

/** Orders stream ids (`ms-seq`) numerically. */
export function compareIds(a: string, b: string): number {
  const [am, as = '0'] = a.split('-');
  const [bm, bs = '0'] = b.split('-');
  return Number(am) - Number(bm) || Number(as) - Number(bs);
}
