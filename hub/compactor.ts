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
import { compareIds, decodeEntry, idTime } from './redis-hub.js';

// KEYS[1] lease; ARGV[1] owner. Releases only our own lease.
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

// KEYS[1] stream, KEYS[2] merged-id key, KEYS[3] last-id key, KEYS[4] index epoch; ARGV[1]
// min id to keep; ARGV[2] expiry (ms).
// Returns the time-ordered oldest id left, or false. Expiry lets the keys of a session that
// ended go away; an active session refreshes it at every compaction. The epoch moves before
// the caller reschedules or removes the session in the index (the hub skips its ZADD while
// the epoch stays what it was at its last one: redis-hub.ts).
const TRIM = `
redis.call('XTRIM', KEYS[1], 'MINID', ARGV[1])
redis.call('INCR', KEYS[4])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
redis.call('PEXPIRE', KEYS[3], ARGV[2])
redis.call('PEXPIRE', KEYS[4], ARGV[2])
local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
if #first == 0 then return false end
return first[1][1]
`;

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
    const acquired = await redis.set(lease, this.#owner, 'PX', this.#opts.leaseMs ?? 30_000, 'NX');
    if (acquired !== 'OK') return 'busy';
    const started = performance.now();
    try {
      const merged = (await redis.get(keys.mergedId(sessionId))) ?? '0';
      const entries = await redis.xrangeBuffer(keys.updates(sessionId), '-', '+');
      const cutoff = Date.now() - this.#opts.minLifetimeMs;
      const updates: Uint8Array[] = [];
      let lastMerged: string | undefined;
      let lastTrimmable: string | undefined;
      for (const [rawId, fields] of entries) {
        const id = rawId.toString();
        if (idTime(id) <= cutoff) lastTrimmable = id;
        if (compareIds(id, merged) <= 0) continue;
        lastMerged = id;
        const message = decodeEntry(fields);
        if (message?.kind === 'update') updates.push(message.update);
      }
      let result: CompactionResult = 'nothing';
      if (updates.length > 0 || extraState) {
        result = await this.#merge(sessionId, updates, extraState);
        if (result === 'no-draft') return result;
      }
      if (lastMerged)
        await redis.set(keys.mergedId(sessionId), lastMerged, 'PX', this.#opts.keyExpiryMs);
      await this.#trimAndReschedule(sessionId, lastTrimmable ?? lastMerged);
      if (result === 'compacted')
        this.#opts.onCompacted?.(performance.now() - started, updates.length);
      return result;
    } finally {
      await redis.eval(RELEASE, 1, lease, this.#owner).catch((err: unknown) => {
        this.#log.warn(
          { err, sessionId },
          'could not release the compaction lease; it will expire',
        );
      });
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
   * Trims merged entries older than the minimum lifetime, and sets when the session is next
   * due: when its oldest remaining entry may be trimmed, or never if none is left.
   */
  async #trimAndReschedule(sessionId: string, trimThrough: string | undefined): Promise<void> {
    const { redis, keys } = this.#opts;
    const cutoff = Date.now() - this.#opts.minLifetimeMs;
    const keep = trimThrough && idTime(trimThrough) <= cutoff ? nextId(trimThrough) : '0';
    const oldest = (await redis.eval(
      TRIM,
      4,
      keys.updates(sessionId),
      keys.mergedId(sessionId),
      keys.lastId(sessionId),
      keys.indexEpoch(sessionId),
      keep,
      this.#opts.keyExpiryMs,
    )) as string | null;
    if (oldest)
      await redis.zadd(
        keys.compactionIndex,
        'XX',
        idTime(oldest) + this.#opts.minLifetimeMs,
        sessionId,
      );
    else await redis.zrem(keys.compactionIndex, sessionId);
    // An append may have landed after we read the stream; its own ZADD may have come before
    // ours and been overwritten: make sure the session is due soon again.
    const merged = await redis.get(keys.mergedId(sessionId));
    const newer = await redis.xrange(
      keys.updates(sessionId),
      merged ? `(${merged}` : '-',
      '+',
      'COUNT',
      1,
    );
    if (newer.length > 0) {
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
