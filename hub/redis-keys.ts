/**
 * Every Redis key is built here, versioned and prefixed. Per-session keys carry the session id
 * as a hash tag (`{…}`), so a Redis Cluster keeps all of one session's keys on one slot and the
 * Lua scripts that touch several of them stay legal.
 */
import { isValidSessionId } from '../constat/session-record.js';

export interface RedisKeys {
  /** The session's update stream. */
  updates(sessionId: string): string;
  /** The ids of the hub instances holding the session (a set): whom an append notifies. */
  members(sessionId: string): string;
  /** The pub/sub channel of one hub instance: notices of appends to the sessions it holds. */
  instanceChannel(instanceId: string): string;
  /** Set by a hub instance and checked now and then: gone means Redis lost what it wrote. */
  instanceMarker(instanceId: string): string;
  /** The compaction lease of one session. */
  compactionLease(sessionId: string): string;
  /** Id of the last entry appended to the session's stream. */
  lastId(sessionId: string): string;
  /** Id of the last stream entry merged into the draft. */
  mergedId(sessionId: string): string;
  /**
   * Counts the compactor's changes to the session's place in the compaction index; an
   * instance that sees it unchanged since its own last ZADD knows that entry still stands.
   */
  indexEpoch(sessionId: string): string;
  /** Sorted set of sessions that have stream entries, scored by when compaction is next due. */
  compactionIndex: string;
  /** Session id from an `updates` key (what a stream read gets back). */
  sessionOfUpdates(key: string): string | undefined;
  /** Matches every key of this keyspace (for tests that clean up). */
  pattern: string;
}

export function redisKeys(prefix = 'constat:v1:'): RedisKeys {
  const sessionKey = (sessionId: string, suffix: string) => {
    if (!isValidSessionId(sessionId))
      throw new Error(`invalid session id ${JSON.stringify(sessionId)}`);
    return `${prefix}{s:${sessionId}}:${suffix}`;
  };
  const escaped = prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const sessionOf = (suffix: string) => {
    const pattern = new RegExp(`^${escaped}\\{s:([A-Za-z0-9_-]+)\\}:${suffix}$`);
    return (name: string) => pattern.exec(name)?.[1];
  };
  return {
    updates: (id) => sessionKey(id, 'updates'),
    members: (id) => sessionKey(id, 'members'),
    instanceChannel: (id) => `${prefix}instance:${id}`,
    instanceMarker: (id) => `${prefix}instance:${id}:marker`,
    compactionLease: (id) => sessionKey(id, 'compactor'),
    lastId: (id) => sessionKey(id, 'last'),
    mergedId: (id) => sessionKey(id, 'merged'),
    indexEpoch: (id) => sessionKey(id, 'epoch'),
    compactionIndex: `${prefix}compaction`,
    sessionOfUpdates: sessionOf('updates'),
    pattern: `${prefix}*`,
  };
}
