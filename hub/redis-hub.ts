/**
 * The hub on Redis streams (the y-redis design): one stream per session; an accepted update is
 * appended (XADD) before it is applied and fanned out, and a compactor (compactor.ts) later
 * merges the stream into the session's draft and trims it.
 *
 * Delivery between instances costs what it carries, not what is live: each hub instance has
 * one pub/sub channel of its own, and each session a set of the instances holding it. The
 * append script PUBLISHes the entry, with the id of the entry before it, to the channel of
 * every other member; the appending instance learns both ids from the script's reply, so its
 * own appends never come back to it. A notice whose previous id is the last one a listener got
 * is delivered as is (no read at all), and anything else (a notice missed while the subscriber
 * connection was down, an entry written by another tool) marks the session behind, and a
 * catch-up loop reads the stream of those sessions only. Pub/sub may drop notices; the stream
 * drops nothing until it is merged into the draft. A member whose channel has no subscriber
 * (an instance gone, or its subscriber connection down) is removed by the append that finds
 * it so; an instance adds itself back to every session it holds when its subscriber
 * reconnects, then reads what it missed.
 *
 * Entry layout: field `m` = one type byte (0 update, 1 awareness) followed by the payload.
 * Awareness rides the same stream so it is ordered with updates; the compactor skips it.
 * Notice layout: `<session id> <previous id> <id> <entry>`.
 *
 * (Over 300 lines: appending, reading and the catch-up share one subscription table per
 * session; the keys are redis-keys.ts and the merging is compactor.ts.)
 */
import { randomBytes } from 'node:crypto';
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
  /**
   * How long a session's member set outlives the last instance that joined it: longer than a
   * session can live, so only the sets of instances that died holding a session ever expire.
   */
  membersExpiryMs: number;
  /** This instance's id on the hub (default: random). */
  instanceId?: string;
  /**
   * How often the instance checks that Redis still holds its marker (default 1 s): a Redis
   * that lost its data (a flush, a restart or failover without persistence) lost the member
   * sets too, and an instance that only receives would not notice otherwise.
   */
  markerCheckMs?: number;
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
  /**
   * This instance's appends whose notice it does not get: previous id → id. A reader whose
   * last id is a key here moves on to the value; usually empty (see #chainOwn).
   */
  own: Map<string, string>;
  /** Some reader may be missing entries: read the stream. */
  behind: boolean;
  /** The stream is known to exist (it held entries, or we appended). */
  exists: boolean;
  /** The whole document, re-appended when the stream turns out to be lost. */
  snapshot: (() => Promise<Uint8Array>) | undefined;
  /** The session's index epoch when this instance last put it in the compaction index. */
  indexedEpoch: string | undefined;
}

/** Own appends remembered per session at most (they are chained within a round trip). */
const OWN_MAX = 64;

// KEYS[1] stream, KEYS[2] the stream's last id, KEYS[3] the session's index epoch, KEYS[4] the
// session's members; ARGV[1] '1' when this instance knows the stream existed; ARGV[2] entry;
// ARGV[3] the instance channels' prefix; ARGV[4] this instance's id; ARGV[5] the session id.
// Returns the new id, the index epoch ('' before the first compaction) and the previous id. A
// stream is never deleted by us (trimming leaves it empty), so a known stream that is gone
// means Redis lost its data (a flush, a failover without persistence): refuse, and let the
// caller re-append the whole document first.
// The notice carries the previous id so a reader that has it applies the payload directly.
// That id is kept in its own key: XINFO STREAM would give it too, but its reply copies the
// stream's first and last entries, which costs as much as the document when the first entry
// is a whole-document snapshot (measured on Redis 7.0: 3 ms of Redis CPU per append with a
// 2 MB first entry, against 10 µs for GET). XINFO stays as the fallback for a stream whose
// last-id key is missing (it expired apart from the stream); the key then gets the stream's TTL.
// A member nobody listens for (PUBLISH reaches no one) is dropped from the set.
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
local notice = false
for _, member in ipairs(redis.call('SMEMBERS', KEYS[4])) do
  if member ~= ARGV[4] then
    notice = notice or (ARGV[5] .. ' ' .. prev .. ' ' .. id .. ' ' .. ARGV[2])
    if redis.call('PUBLISH', ARGV[3] .. member, notice) == 0 then
      redis.call('SREM', KEYS[4], member)
    end
  end
end
return {id, redis.call('GET', KEYS[3]) or '', prev}
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

/** `<session id> <previous id> <id> <entry>` → its parts, or undefined when malformed. */
export function decodeNotice(
  notice: Buffer,
): { sessionId: string; prevId: string; id: string; value: Buffer } | undefined {
  const first = notice.indexOf(0x20);
  const second = first < 0 ? -1 : notice.indexOf(0x20, first + 1);
  const third = second < 0 ? -1 : notice.indexOf(0x20, second + 1);
  if (third < 0) return undefined;
  return {
    sessionId: notice.toString('latin1', 0, first),
    prevId: notice.toString('latin1', first + 1, second),
    id: notice.toString('latin1', second + 1, third),
    value: notice.subarray(third + 1),
  };
}

/** Milliseconds part of a stream id. */
export function idTime(id: string): number {
  return Number(id.slice(0, id.indexOf('-')));
}

export class RedisHub implements Hub {
  readonly shared = true;
  readonly instanceId: string;
  readonly #opts: RedisHubOptions;
  readonly #log: Logger;
  readonly #subs = new Map<string, Subscription>();
  readonly #channel: string;
  /** This instance's channel is subscribed: a session joined after it misses no notice. */
  readonly #listening: Promise<unknown>;
  #catchingUp: Promise<void> | undefined;
  #catchUpRunning = false;
  /** A catch-up was asked for while the loop ran. */
  #catchUpAgain = false;
  #checkingMarker = false;
  readonly #markerTimer: NodeJS.Timeout;
  #closed = false;

  constructor(opts: RedisHubOptions) {
    this.#opts = opts;
    this.instanceId = opts.instanceId ?? randomBytes(8).toString('hex');
    this.#log = opts.logger.child({ component: 'redis-hub' });
    this.#channel = opts.keys.instanceChannel(this.instanceId);
    opts.subscriber.on('messageBuffer', (channel: Buffer, notice: Buffer) => {
      if (channel.toString() === this.#channel) this.#onNotice(notice);
    });
    this.#listening = opts.subscriber
      .subscribe(this.#channel)
      .then(() =>
        opts.redis.set(opts.keys.instanceMarker(this.instanceId), '1', 'PX', opts.membersExpiryMs),
      );
    // Awaited by each subscribe(); a failure here is theirs to report.
    this.#listening.catch(() => {});
    this.#markerTimer = setInterval(() => this.#checkMarker(), opts.markerCheckMs ?? 1_000);
    this.#markerTimer.unref();
    // After a reconnect (ioredis subscribes again) notices sent meanwhile are gone, and appends
    // that found no one listening dropped this instance from its sessions' members: join them
    // again, then read every stream held here once.
    opts.subscriber.on('ready', () => {
      if (this.#closed || this.#subs.size === 0) return;
      opts.subscriber
        .ping()
        .then(() => this.#rejoin())
        .catch((err: unknown) => this.#log.warn({ err }, 'could not resume after a reconnect'));
    });
  }

  /**
   * Redis without this instance's marker lost its data: the sessions' member sets went with
   * it, and appends since then notified no one here. Join again and read what was missed.
   * (The marker is set again first: a rejoin that fails is retried at the next check.)
   */
  async #checkMarker(): Promise<void> {
    if (this.#checkingMarker || this.#closed || this.#subs.size === 0) return;
    this.#checkingMarker = true;
    try {
      const had = await this.#opts.redis.set(
        this.#opts.keys.instanceMarker(this.instanceId),
        '1',
        'PX',
        this.#opts.membersExpiryMs,
        'GET',
      );
      if (had === null && !this.#closed) {
        this.#log.warn("the hub's marker is gone from Redis (data lost?); joining sessions again");
        await this.#rejoin().catch(async (err: unknown) => {
          await this.#opts.redis.del(this.#opts.keys.instanceMarker(this.instanceId));
          throw err;
        });
      }
    } catch (err) {
      if (!this.#closed) this.#log.warn({ err }, "could not check the hub's marker");
    } finally {
      this.#checkingMarker = false;
    }
  }

  /** Joins the members of every session held here again, then reads each of their streams. */
  async #rejoin(): Promise<void> {
    const { redis, keys, membersExpiryMs } = this.#opts;
    const sessions = [...this.#subs.keys()];
    for (let i = 0; i < sessions.length; i += CATCH_UP_BATCH) {
      const pipeline = redis.pipeline();
      for (const sessionId of sessions.slice(i, i + CATCH_UP_BATCH)) {
        pipeline.sadd(keys.members(sessionId), this.instanceId);
        pipeline.pexpire(keys.members(sessionId), membersExpiryMs);
      }
      for (const [err] of (await pipeline.exec()) ?? []) if (err) throw err;
    }
    for (const sub of this.#subs.values()) sub.behind = true;
    this.#catchUp();
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
      [
        keys.updates(sessionId),
        keys.lastId(sessionId),
        keys.indexEpoch(sessionId),
        keys.members(sessionId),
      ],
      [
        known ? '1' : '0',
        encodeEntry(message),
        keys.instanceChannel(''), // every instance's channel is this followed by its id
        this.instanceId,
        sessionId,
      ],
    );
    if (reply === null) return null;
    const [id, epoch, prevId] = reply as [string, string, string];
    const sub = this.#subs.get(sessionId);
    if (sub) this.#chainOwn(sub, prevId, id);
    return { id, epoch };
  }

  /**
   * Our own append is not noticed back: readers that had the entry before it move past it at
   * once. A reader still short of that entry (a peer's notice for it is on its way on the
   * other connection) moves past ours when it gets there; one that never does reads the
   * stream, like after any gap, and gets our entry too (applying it again changes nothing).
   */
  #chainOwn(sub: Subscription, prevId: string, id: string): void {
    let pending = false;
    for (const reader of sub.readers) {
      if (!reader.ready) continue;
      if (reader.lastId === prevId) reader.lastId = id;
      else if (compareIds(reader.lastId, prevId) < 0) pending = true;
    }
    if (!pending) return;
    sub.own.set(prevId, id);
    if (sub.own.size > OWN_MAX) sub.own.delete(sub.own.keys().next().value!);
  }

  /** Moves a reader past our own appends that follow what it has. */
  #skipOwn(sub: Subscription, reader: Reader): void {
    if (sub.own.size === 0) return;
    for (let next = sub.own.get(reader.lastId); next; next = sub.own.get(reader.lastId)) {
      reader.lastId = next;
    }
    for (const prevId of sub.own.keys()) {
      if (compareIds(prevId, minLastId(sub)) < 0) sub.own.delete(prevId);
    }
  }

  async subscribe(
    sessionId: string,
    listener: HubListener,
    snapshot?: () => Promise<Uint8Array>,
  ): Promise<() => void> {
    const { redis, keys, membersExpiryMs } = this.#opts;
    let sub = this.#subs.get(sessionId);
    if (!sub) {
      sub = {
        readers: new Set(),
        own: new Map(),
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
      await this.#listening;
      // Joined first, then read, in one round trip: whatever is appended after the read is
      // noticed.
      const replies = await redis
        .pipeline()
        .sadd(keys.members(sessionId), this.instanceId)
        .pexpire(keys.members(sessionId), membersExpiryMs)
        .xrangeBuffer(keys.updates(sessionId), '-', '+')
        .exists(keys.updates(sessionId))
        .exec();
      for (const [err] of replies ?? []) if (err) throw err;
      const held = replies![2]![1] as Array<[Buffer, Buffer[]]>;
      if (held.length > 0 || replies![3]![1] === 1) sub.exists = true;
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
          this.#opts.redis
            .srem(this.#opts.keys.members(sessionId), this.instanceId)
            .catch((err: unknown) => {
              this.#log.warn({ err, sessionId }, "could not leave the session's members");
            });
        }
      }
    };
  }

  #onNotice(notice: Buffer): void {
    const parts = decodeNotice(notice);
    const sub = parts ? this.#subs.get(parts.sessionId) : undefined;
    if (!parts || !sub) {
      // A notice for a session no longer held here (it left meanwhile) is of no use; one that
      // cannot be read names no session to read: every held stream is read once.
      if (!parts) {
        this.#log.warn('skipped a malformed notice; reading every stream held');
        for (const held of this.#subs.values()) held.behind = true;
        this.#catchUp();
      }
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
      if (message) this.#deliver(parts.sessionId, reader, message, parts.id);
      this.#skipOwn(sub, reader);
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
    if (this.#closed) return;
    if (this.#catchUpRunning) {
      // The loop may already have made its last scan: it looks again before it stops.
      this.#catchUpAgain = true;
      return;
    }
    this.#catchUpRunning = true;
    this.#catchingUp = this.#runCatchUp().catch((err: unknown) =>
      this.#log.error({ err }, 'catch-up stopped'),
    );
  }

  async #runCatchUp(): Promise<void> {
    try {
      do {
        this.#catchUpAgain = false;
        await this.#readBehind();
        // A request made while the loop was finishing (a subscribe() ready in the same
        // socket read as the last XREAD, its session marked behind earlier) is served here:
        // dropped, its entries would wait for a notice that after a burst's last edit never comes.
      } while (this.#catchUpAgain && !this.#closed);
    } finally {
      this.#catchUpRunning = false;
    }
  }

  async #readBehind(): Promise<void> {
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
        for (const reader of sub.readers) if (reader.ready) this.#skipOwn(sub, reader);
      }
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#markerTimer);
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
