/**
 * The hub on Redis streams (the y-redis design): one stream per session; an accepted update is
 * appended (XADD) before it is applied and fanned out, and a compactor (compactor.ts) later
 * merges the stream into the session's draft and trims it.
 *
 * Delivery between instances costs what it carries, not what is live: the append script also
 * PUBLISHes the entry on the session's channel, with the id of the entry before it. An instance
 * subscribes to the channels of the sessions it holds; a notice whose previous id is the last
 * one a listener got is delivered as is (no read at all), and anything else (a notice missed
 * while the subscriber connection was down, an entry written by another tool) marks the
 * session behind, and a catch-up loop reads the stream of those sessions only. Pub/sub may
 * drop notices; the stream drops nothing until it is merged into the draft.
 *
 * Entry layout: field `m` = one type byte (0 update, 1 awareness) followed by the payload.
 * Awareness rides the same stream so it is ordered with updates; the compactor skips it.
 * Notice layout: `<previous id> <id> <entry>`.
 *
 * (Over 300 lines: appending, reading and the catch-up share one subscription table per
 * session; the keys are redis-keys.ts and the merging is compactor.ts.)
 */
import { LuaScript } from './lua-script.js';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Hub, HubListener, HubMessage } from '../sync/hub.js';
import type { RedisKeys } from './redis-keys.js';

const TYPE_UPDATE = 0;
const TYPE_AWARENESS = 1;
/** Streams named in one catch-up XREAD. */
const CATCH_UP_BATCH = 200;

export interface RedisHubOptions {
  /** Connection for commands. */
  redis: Redis;
  /** A dedicated connection for the notices (a subscribed connection serves nobody else). */
  subscriber: Redis;
  keys: RedisKeys;
  logger: Logger;
  /** Entries per stream and catch-up read; bounds the memory one read can take. */
  readCount?: number;
  /** How long after an update its session is due for compaction. */
  compactionDelayMs: number;
  /** Called for each delivery with how far behind the entry's append it is (ms). */
  onReadLag?: (ms: number) => void;
  onStreamLost?: () => void;
}

interface Reader {
  listener: HubListener;
  /** Last stream id delivered to this listener. */
  lastId: string;
  /** Its first read of the stream is done; notices before that only mark the session behind. */
  ready: boolean;
}

interface Subscription {
  readers: Set<Reader>;
  /** The channel subscription is confirmed (notices from then on reach us). */
  subscribed: Promise<unknown>;
  /** Some reader may be missing entries: read the stream. */
  behind: boolean;
  /** The stream is known to exist (it held entries, or we appended). */
  exists: boolean;
  /** The whole document, re-appended when the stream turns out to be lost. */
  snapshot: (() => Promise<Uint8Array>) | undefined;
  /** The session's index epoch when this instance last put it in the compaction index. */
  indexedEpoch: string | undefined;
}

// KEYS[1] stream, KEYS[2] the stream's last id, KEYS[3] the session's index epoch; ARGV[1]
// '1' when this instance knows the stream existed; ARGV[2] entry; ARGV[3] the session's
// channel. Returns the new id and the index epoch ('' before the first compaction). A stream
// is never deleted by us (trimming leaves it empty), so a known stream that is gone means
// Redis lost its data (a flush, a failover without persistence): refuse, and let the caller
// re-append the whole document first.
// The notice carries the previous id so a reader that has it applies the payload directly.
// That id is kept in its own key: XINFO STREAM would give it too, but its reply copies the
// stream's first and last entries, which costs as much as the document when the first entry
// is a whole-document snapshot (measured on Redis 7.0: 3 ms of Redis CPU per append with a
// 2 MB first entry, against 10 µs for GET). XINFO stays as the fallback for a stream whose
// last-id key is missing (it expired apart from the stream); the key then gets the stream's TTL.
const APPEND = `
local prev = '0'
local kept = false
if redis.call('EXISTS', KEYS[1]) == 1 then
  prev = redis.call('GET', KEYS[2])
  kept = prev ~= false
  if not kept then
    prev = '0'
    local info = redis.call('XINFO', 'STREAM', KEYS[1])
    for i = 1, #info, 2 do
      if info[i] == 'last-generated-id' then prev = info[i + 1] break end
    end
  end
elseif ARGV[1] == '1' then
  return false
end
local id = redis.call('XADD', KEYS[1], '*', 'm', ARGV[2])
if kept then
  redis.call('SET', KEYS[2], id, 'KEEPTTL')
else
  redis.call('SET', KEYS[2], id)
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ttl) end
end
redis.call('PUBLISH', ARGV[3], prev .. ' ' .. id .. ' ' .. ARGV[2])
return {id, redis.call('GET', KEYS[3]) or ''}
`;
const APPEND_SCRIPT = new LuaScript(APPEND);

export function encodeEntry(message: HubMessage): Buffer {
  const out = Buffer.allocUnsafe(message.update.byteLength + 1);
  out[0] = message.kind === 'update' ? TYPE_UPDATE : TYPE_AWARENESS;
  out.set(message.update, 1);
  return out;
}

/** The message in an entry's `m` value, or undefined when it is not one. */
export function decodeValue(value: Buffer): HubMessage | undefined {
  if (value.byteLength < 1) return undefined;
  const update = new Uint8Array(value.buffer, value.byteOffset + 1, value.byteLength - 1);
  if (value[0] === TYPE_UPDATE) return { kind: 'update', update };
  if (value[0] === TYPE_AWARENESS) return { kind: 'awareness', update };
  return undefined;
}

export function decodeEntry(fields: Buffer[]): HubMessage | undefined {
  for (let i = 0; i + 1 < fields.length; i += 2) {
    if (fields[i]!.toString() === 'm') return decodeValue(fields[i + 1]!);
  }
  return undefined;
}

/** `<previous id> <id> <entry>` → its parts, or undefined when malformed. */
export function decodeNotice(
  notice: Buffer,
): { prevId: string; id: string; value: Buffer } | undefined {
  const first = notice.indexOf(0x20);
  const second = first < 0 ? -1 : notice.indexOf(0x20, first + 1);
  if (second < 0) return undefined;
  return {
    prevId: notice.toString('latin1', 0, first),
    id: notice.toString('latin1', first + 1, second),
    value: notice.subarray(second + 1),
  };
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
  #catchingUp: Promise<void> | undefined;
  #closed = false;

  constructor(opts: RedisHubOptions) {
    this.#opts = opts;
    this.#log = opts.logger.child({ component: 'redis-hub' });
    opts.subscriber.on('messageBuffer', (channel: Buffer, notice: Buffer) =>
      this.#onNotice(channel, notice),
    );
    // After a reconnect (ioredis subscribes again) notices sent meanwhile are gone: read every
    // stream held here once, after the subscriptions are back.
    opts.subscriber.on('ready', () => {
      if (this.#closed || this.#subs.size === 0) return;
      opts.subscriber
        .ping()
        .then(() => {
          for (const sub of this.#subs.values()) sub.behind = true;
          this.#catchUp();
        })
        .catch((err: unknown) => this.#log.warn({ err }, 'could not resume after a reconnect'));
    });
  }

  async append(sessionId: string, message: HubMessage): Promise<void> {
    const sub = this.#subs.get(sessionId);
    let added = await this.#append(sessionId, message, sub?.exists === true);
    if (added === null) {
      this.#log.warn(
        { sessionId },
        'update stream lost (Redis data loss?); re-appending the whole document',
      );
      this.#opts.onStreamLost?.();
      if (sub?.snapshot) {
        await this.#append(sessionId, { kind: 'update', update: await sub.snapshot() }, false);
      }
      added = await this.#append(sessionId, message, false);
      if (sub) sub.indexedEpoch = undefined;
    }
    if (sub) sub.exists = true;
    if (message.kind === 'update') await this.#schedule(sessionId, sub, added?.epoch);
  }

  /**
   * Makes the session due for compaction at the latest one delay after this update (ZADD LT:
   * never later than already due). The index is one key for every session, so in a cluster it
   * cannot be written by the append script. Most updates skip it: if the session's index epoch
   * is what it was at this instance's last ZADD, no compaction has moved or removed the
   * session since (the compactor bumps the epoch before it does; an append that saw the old
   * epoch came before that, and the compaction merges it or puts the session back), so that
   * ZADD, one delay after an earlier update, still stands. It then costs one command per
   * session per compaction rather than one per update.
   */
  async #schedule(
    sessionId: string,
    sub: Subscription | undefined,
    epoch: string | undefined,
  ): Promise<void> {
    if (sub && epoch !== undefined && sub.indexedEpoch === epoch) return;
    const { redis, keys } = this.#opts;
    await redis.zadd(
      keys.compactionIndex,
      'LT',
      Date.now() + this.#opts.compactionDelayMs,
      sessionId,
    );
    if (sub) sub.indexedEpoch = epoch;
  }

  /** The new entry's id and the session's index epoch, or null when the stream is lost. */
  async #append(
    sessionId: string,
    message: HubMessage,
    known: boolean,
  ): Promise<{ id: string; epoch: string } | null> {
    const { redis, keys } = this.#opts;
    const reply = await APPEND_SCRIPT.run(
      redis,
      [keys.updates(sessionId), keys.lastId(sessionId), keys.indexEpoch(sessionId)],
      [known ? '1' : '0', encodeEntry(message), keys.channel(sessionId)],
    );
    if (reply === null) return null;
    const [id, epoch] = reply as [string, string];
    return { id, epoch };
  }

  async subscribe(
    sessionId: string,
    listener: HubListener,
    snapshot?: () => Promise<Uint8Array>,
  ): Promise<() => void> {
    const { redis, subscriber, keys } = this.#opts;
    let sub = this.#subs.get(sessionId);
    if (!sub) {
      sub = {
        readers: new Set(),
        subscribed: subscriber.subscribe(keys.channel(sessionId)),
        behind: false,
        exists: false,
        snapshot,
        indexedEpoch: undefined,
      };
      this.#subs.set(sessionId, sub);
    }
    const reader: Reader = { listener, lastId: '0', ready: false };
    sub.readers.add(reader);
    const unsubscribe = this.#unsubscriber(sessionId, sub, reader);
    try {
      // Subscribed first, then read: whatever is appended after the read is noticed.
      await sub.subscribed;
      const held = await redis.xrangeBuffer(keys.updates(sessionId), '-', '+');
      if (held.length > 0 || (await redis.exists(keys.updates(sessionId))) === 1) sub.exists = true;
      for (const [rawId, fields] of held) {
        const message = decodeEntry(fields);
        if (message) listener(message);
        reader.lastId = rawId.toString();
      }
    } catch (err) {
      unsubscribe();
      throw err;
    }
    reader.ready = true;
    if (sub.behind) this.#catchUp();
    return unsubscribe;
  }

  /** An anonymous function on purpose: a named one costs a property dictionary per reader. */
  #unsubscriber(sessionId: string, sub: Subscription, reader: Reader): () => void {
    return () => {
      sub.readers.delete(reader);
      if (sub.readers.size === 0 && this.#subs.get(sessionId) === sub) {
        this.#subs.delete(sessionId);
        if (!this.#closed) {
          this.#opts.subscriber
            .unsubscribe(this.#opts.keys.channel(sessionId))
            .catch((err: unknown) => {
              this.#log.warn({ err, sessionId }, 'could not unsubscribe');
            });
        }
      }
    };
  }

  #onNotice(channel: Buffer, notice: Buffer): void {
    const sessionId = this.#opts.keys.sessionOfChannel(channel.toString());
    const sub = sessionId ? this.#subs.get(sessionId) : undefined;
    if (!sub) return;
    const parts = decodeNotice(notice);
    if (!parts) {
      this.#log.warn({ sessionId }, 'skipped a malformed notice; reading the stream');
      sub.behind = true;
      this.#catchUp();
      return;
    }
    const message = decodeValue(parts.value);
    for (const reader of sub.readers) {
      if (!reader.ready || compareIds(parts.id, reader.lastId) <= 0) {
        if (!reader.ready) sub.behind = true;
        continue;
      }
      if (parts.prevId !== reader.lastId) {
        sub.behind = true; // a gap: the catch-up delivers this entry after the missing ones
        continue;
      }
      reader.lastId = parts.id;
      if (message) this.#deliver(sessionId!, reader, message, parts.id);
    }
    if (sub.behind) this.#catchUp();
  }

  #deliver(sessionId: string, reader: Reader, message: HubMessage, id: string): void {
    this.#opts.onReadLag?.(Math.max(0, Date.now() - idTime(id)));
    try {
      reader.listener(message);
    } catch (err) {
      this.#log.error({ err, sessionId }, 'hub listener failed');
    }
  }

  /** Reads the streams of the sessions marked behind until none is. One loop at a time. */
  #catchUp(): void {
    if (this.#catchingUp || this.#closed) return;
    this.#catchingUp = this.#runCatchUp()
      .catch((err: unknown) => this.#log.error({ err }, 'catch-up stopped'))
      .finally(() => (this.#catchingUp = undefined));
  }

  async #runCatchUp(): Promise<void> {
    const { redis, keys } = this.#opts;
    const count = this.#opts.readCount ?? 1000;
    while (!this.#closed) {
      const batch: Array<[string, Subscription]> = [];
      for (const [sessionId, sub] of this.#subs) {
        if (!sub.behind) continue;
        const readers = [...sub.readers].filter((r) => r.ready);
        if (readers.length === 0) continue; // its subscribe() calls back here when ready
        sub.behind = false;
        batch.push([sessionId, sub]);
        if (batch.length === CATCH_UP_BATCH) break;
      }
      if (batch.length === 0) return;
      const from = batch.map(([, sub]) => minLastId(sub));
      let result: Array<[Buffer, Array<[Buffer, Buffer[]]>]> | null;
      try {
        result = (await redis.xreadBuffer(
          'COUNT',
          count,
          'STREAMS',
          ...batch.map(([sessionId]) => keys.updates(sessionId)),
          ...from,
        )) as typeof result;
      } catch (err) {
        for (const [, sub] of batch) sub.behind = true;
        if (this.#closed) return;
        // One bad read must not stop delivery for good: log, pause, go on.
        this.#log.warn({ err }, 'stream read failed; retrying');
        await new Promise((r) => setTimeout(r, 500));
        continue;
      }
      for (const [key, entries] of result ?? []) {
        const sessionId = keys.sessionOfUpdates(key.toString());
        const sub = sessionId ? this.#subs.get(sessionId) : undefined;
        if (!sub) continue;
        if (entries.length >= count) sub.behind = true; // more to read
        for (const [rawId, fields] of entries) {
          const id = rawId.toString();
          const message = decodeEntry(fields);
          if (!message) this.#log.warn({ sessionId, id }, 'skipped an undecodable stream entry');
          for (const reader of sub.readers) {
            if (!reader.ready || compareIds(id, reader.lastId) <= 0) continue;
            reader.lastId = id;
            if (message) this.#deliver(sessionId!, reader, message, id);
          }
        }
      }
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#subs.clear();
    this.#opts.subscriber.disconnect();
    await this.#catchingUp;
  }
}

function minLastId(sub: Subscription): string {
  let min: string | undefined;
  for (const reader of sub.readers) {
    if (reader.ready && (min === undefined || compareIds(reader.lastId, min) < 0))
      min = reader.lastId;
  }
  return min ?? '0';
}

/** Orders stream ids (`ms-seq`) numerically. */
export function compareIds(a: string, b: string): number {
  const [am, as = '0'] = a.split('-');
  const [bm, bs = '0'] = b.split('-');
  return Number(am) - Number(bm) || Number(as) - Number(bs);
}
