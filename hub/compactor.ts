/**
 * Merges sessions' update streams into their drafts and trims them, so Redis holds only recent
 * edits and losing Redis costs nothing older than the last compaction.
 *
 * A compaction costs what the stream holds, not the document: the new entries are merged into
 * one update and appended to the draft (drafts are incremental); the draft folder merges the
 * appended updates into the draft's base now and then, off the event loop (draft-folder.ts).
 *
 * Every instance runs one; a per-session lease (SET NX PX) makes sure only one compacts a
 * session at a time, and a dead worker's lease simply expires. A draft only ever gains
 * updates, and a fold replaces its base by a merge of itself with them, so it never loses
 * anything it held.
 *
 * Merged entries stay in the stream for `minLifetimeMs` before they are trimmed: an instance
 * that is a little behind must still find them there.
 */
import { randomUUID } from 'node:crypto';
import * as Y from 'yjs';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { DraftFolder } from '../sync/draft-folder.js';
import type { DraftStore } from '../sync/draft-store.js';
import type { YjsOffload } from '../sync/yjs-offload.js';
import type { RedisKeys } from './redis-keys.js';
import { decodeEntry, idTime } from './redis-hub.js';
import { isNoScript, LuaScript } from './lua-script.js';

// One compaction is three round trips to Redis whatever it finds: BEGIN, END, then the index
// update pipelined with CHECK. All keys of a script are the session's own (one hash slot);
// the compaction index is not, so it is written beside the scripts, never from them.

// KEYS[1] lease, KEYS[2] merged-id key, KEYS[3] stream; ARGV[1] owner, ARGV[2] lease (ms),
// ARGV[3] cutoff time (ms): entries at or before it may be trimmed.
// Takes the lease, or returns false if another holds it. Returns the merged id ('0' if none),
// the entries after it, and the id of the last entry at or before the cutoff (or false).
const BEGIN = new LuaScript(`
if not redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') then return false end
local merged = redis.call('GET', KEYS[2]) or '0'
local entries = redis.call('XRANGE', KEYS[3], '(' .. merged, '+')
local trimmable = redis.call('XREVRANGE', KEYS[3], ARGV[3], '-', 'COUNT', 1)
return {merged, entries, trimmable[1] and trimmable[1][1] or false}
`);

// KEYS[1] stream, KEYS[2] merged-id key, KEYS[3] last-id key, KEYS[4] index epoch; ARGV[1]
// last merged id ('' if none), ARGV[2] min id to keep, ARGV[3] expiry (ms).
// Records what was merged, trims, and returns the time-ordered oldest id left, or false.
// Expiry lets the keys of a session that ended go away; an active session refreshes it at
// every compaction. The epoch moves before the caller reschedules or removes the session in
// the index (the hub skips its ZADD while the epoch stays what it was at its last one:
// redis-hub.ts).
const END = new LuaScript(`
if ARGV[1] ~= '' then redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[3]) end
redis.call('XTRIM', KEYS[1], 'MINID', ARGV[2])
redis.call('INCR', KEYS[4])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call('PEXPIRE', KEYS[3], ARGV[3])
redis.call('PEXPIRE', KEYS[4], ARGV[3])
local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
if #first == 0 then return false end
return first[1][1]
`);

// KEYS[1] stream, KEYS[2] merged-id key, KEYS[3] lease; ARGV[1] owner.
// Runs after the index update: 1 if an entry newer than the merged id is in the stream (an
// append that landed meanwhile, whose own ZADD the index update may have overwritten).
// Releases the lease if it is still ours.
const CHECK = new LuaScript(`
local merged = redis.call('GET', KEYS[2])
local newer = redis.call('XRANGE', KEYS[1], merged and ('(' .. merged) or '-', '+', 'COUNT', 1)
if redis.call('GET', KEYS[3]) == ARGV[1] then redis.call('DEL', KEYS[3]) end
return #newer
`);

// KEYS[1] lease; ARGV[1] owner. Releases only our own lease (when a compaction stops early).
const RELEASE = new LuaScript(
  `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`,
);

export interface CompactorOptions {
  redis: Redis;
  keys: RedisKeys;
  drafts: DraftStore;
  folder: DraftFolder;
  offload: YjsOffload;
  logger: Logger;
  /** How often this instance looks for sessions due for compaction. */
  intervalMs: number;
  /** How long after an update its session is due (the same delay the hub uses). */
  delayMs: number;
  minLifetimeMs: number;
  /** Stream keys expire this long after the last compaction. */
  keyExpiryMs: number;
  leaseMs?: number;
  /**
   * What a whole document holds that the session's draft lacks, worked out elsewhere (a worker
   * thread with a connection of its own, which reads the draft there: megabytes the driver
   * would otherwise decode on the event loop). Default: the draft is read here.
   */
  lacking?: (
    sessionId: string,
    extra: Uint8Array,
  ) => Promise<Uint8Array | undefined | 'missing' | 'closed'>;
  onCompacted?: (ms: number, entries: number) => void;
  onFailed?: () => void;
}

export type CompactionResult = 'compacted' | 'nothing' | 'busy' | 'no-draft';

export class Compactor {
  readonly #opts: CompactorOptions;
  readonly #owner = randomUUID();
  readonly #log: Logger;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #closed = false;

  constructor(opts: CompactorOptions) {
    this.#opts = opts;
    this.#log = opts.logger.child({ component: 'compactor' });
  }

  start(): void {
    if (this.#timer || this.#closed) return;
    const tick = () => {
      this.#running = this.sweep()
        .catch((err: unknown) => this.#log.error({ err }, 'compaction sweep failed'))
        .finally(() => {
          this.#running = undefined;
          if (!this.#closed) this.#timer = setTimeout(tick, this.#opts.intervalMs);
        });
    };
    this.#timer = setTimeout(tick, this.#opts.intervalMs);
  }

  /** Compacts every session that is due. */
  async sweep(): Promise<void> {
    const { redis, keys } = this.#opts;
    const due = await redis.zrangebyscore(
      keys.compactionIndex,
      '-inf',
      Date.now(),
      'LIMIT',
      0,
      200,
    );
    for (const sessionId of due) {
      if (this.#closed) return;
      try {
        await this.compact(sessionId);
      } catch (err) {
        this.#opts.onFailed?.();
        this.#log.error({ err, sessionId }, 'compaction failed; will retry');
      }
    }
  }

  /**
   * Merges the session's unmerged stream entries (and `extraState`, a live document's full
   * state) into its draft, then trims entries old enough.
   */
  async compact(sessionId: string, extraState?: Uint8Array): Promise<CompactionResult> {
    const { redis, keys } = this.#opts;
    const lease = keys.compactionLease(sessionId);
    const stream = keys.updates(sessionId);
    const cutoff = Date.now() - this.#opts.minLifetimeMs;
    const begun = (await BEGIN.runBuffer(
      redis,
      [lease, keys.mergedId(sessionId), stream],
      [this.#owner, this.#opts.leaseMs ?? 30_000, String(cutoff)],
    )) as [Buffer, Array<[Buffer, Buffer[]]>, Buffer | null] | null;
    if (!begun) return 'busy';
    const started = performance.now();
    const held = { released: false };
    try {
      const [, entries, trimmable] = begun;
      const updates: Uint8Array[] = [];
      let lastMerged: string | undefined;
      for (const [rawId, fields] of entries) {
        lastMerged = rawId.toString();
        const message = decodeEntry(fields);
        if (message?.kind === 'update') updates.push(message.update);
      }
      let result: CompactionResult = 'nothing';
      if (updates.length > 0 || extraState) {
        result = await this.#merge(sessionId, updates, extraState);
        if (result === 'no-draft') return result;
      }
      await this.#endAndReschedule(
        sessionId,
        lastMerged,
        trimmable?.toString() ?? lastMerged,
        held,
      );
      if (result === 'compacted')
        this.#opts.onCompacted?.(performance.now() - started, updates.length);
      return result;
    } finally {
      if (!held.released) {
        await RELEASE.run(redis, [lease], [this.#owner]).catch((err: unknown) => {
          this.#log.warn(
            { err, sessionId },
            'could not release the compaction lease; it will expire',
          );
        });
      }
    }
  }

  async #merge(
    sessionId: string,
    updates: Uint8Array[],
    extraState: Uint8Array | undefined,
  ): Promise<CompactionResult> {
    const { offload } = this.#opts;
    let result: CompactionResult = 'nothing';
    if (updates.length > 0) {
      let merged: Uint8Array;
      try {
        merged = await offload.merge(updates);
      } catch (err) {
        // One undecodable entry must not stop the session's compaction: merge the others.
        this.#log.error({ err, sessionId }, 'skipped updates that do not merge');
        merged = await offload.merge(updates.filter(decodes));
      }
      result = await this.#append(sessionId, merged);
      if (result !== 'compacted') return result;
    }
    if (extraState) {
      // A live document's whole state: almost always the draft already holds all of it, and
      // appending megabytes that say nothing new would cost a fold. Only what it lacks is
      // appended (worked out off the event loop).
      const lacking = await this.#lacking(sessionId, extraState);
      if (lacking === 'missing') return this.#append(sessionId, extraState); // reports it
      if (lacking === 'closed') return result;
      if (lacking) result = await this.#append(sessionId, lacking);
    }
    return result;
  }

  #lacking(
    sessionId: string,
    extra: Uint8Array,
  ): Promise<Uint8Array | undefined | 'missing' | 'closed'> {
    const { drafts, offload, lacking } = this.#opts;
    if (lacking) return lacking(sessionId, extra);
    return (async () => {
      const draft = await drafts.load(sessionId);
      if (!draft) return 'missing';
      if (draft.status !== 'live') return 'closed';
      return offload.missing([draft.state, ...draft.updates], extra);
    })();
  }

  async #append(sessionId: string, update: Uint8Array): Promise<CompactionResult> {
    const { drafts, folder, redis, keys } = this.#opts;
    // append() refuses a draft closed meanwhile by itself.
    const outcome = await drafts.append(sessionId, update);
    if (outcome.kind === 'missing') {
      // No draft: the session was never opened through this deployment. Leave the stream be.
      this.#log.warn({ sessionId }, 'stream without a draft; not compacted');
      // The epoch moves before the index changes (see TRIM), and expires like the stream.
      const epoch = keys.indexEpoch(sessionId);
      await redis.multi().incr(epoch).pexpire(epoch, this.#opts.keyExpiryMs).exec();
      await redis.zrem(keys.compactionIndex, sessionId);
      return 'no-draft';
    }
    // A closed draft (finalized, abandoned, expired) is never written again.
    if (outcome.kind === 'closed') return 'nothing';
    folder.afterAppend(sessionId, outcome);
    return 'compacted';
  }

  /**
   * Records what was merged, trims merged entries older than the minimum lifetime, sets when
   * the session is next due (when its oldest remaining entry may be trimmed, or never if none
   * is left), and releases the lease (`held.released` once it is).
   */
  async #endAndReschedule(
    sessionId: string,
    lastMerged: string | undefined,
    trimThrough: string | undefined,
    held: { released: boolean },
  ): Promise<void> {
    const { redis, keys } = this.#opts;
    const stream = keys.updates(sessionId);
    const cutoff = Date.now() - this.#opts.minLifetimeMs;
    const keep = trimThrough && idTime(trimThrough) <= cutoff ? nextId(trimThrough) : '0';
    const oldest = (await END.run(
      redis,
      [stream, keys.mergedId(sessionId), keys.lastId(sessionId), keys.indexEpoch(sessionId)],
      [lastMerged ?? '', keep, this.#opts.keyExpiryMs],
    )) as string | null;
    const checkKeys = [stream, keys.mergedId(sessionId), keys.compactionLease(sessionId)];
    const pipeline = redis.pipeline();
    if (oldest)
      pipeline.zadd(
        keys.compactionIndex,
        'XX',
        idTime(oldest) + this.#opts.minLifetimeMs,
        sessionId,
      );
    else pipeline.zrem(keys.compactionIndex, sessionId);
    CHECK.queue(pipeline, checkKeys, [this.#owner]);
    const replies = await pipeline.exec();
    if (!replies) throw new Error('the index update got no reply');
    if (replies[0]![0]) throw replies[0]![0];
    const [checkError, checked] = replies[1]!;
    let newer = checked;
    if (isNoScript(checkError)) newer = await CHECK.run(redis, checkKeys, [this.#owner]);
    else if (checkError) throw checkError;
    held.released = true;
    if (Number(newer) > 0) {
      await redis.zadd(keys.compactionIndex, 'LT', Date.now() + this.#opts.delayMs, sessionId);
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    await this.#running;
  }
}

function decodes(update: Uint8Array): boolean {
  try {
    Y.decodeUpdate(update);
    return true;
  } catch {
    return false;
  }
}

/** The smallest stream id greater than `id`. */
function nextId(id: string): string {
  const [ms, seq = '0'] = id.split('-');
  return `${ms}-${Number(seq) + 1}`;
}
