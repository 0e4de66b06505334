/**
 * Every Redis key is built here, versioned and prefixed. Per-session keys carry the session id
 * as a hash tag (`{…}`), so a Redis Cluster keeps all of one session's keys on one slot and
 * multi-key operations on a session stay legal.
 */
import { isValidSessionId } from './session-record.js';

export interface RedisKeys {
  session(sessionId: string): string;
  updates(sessionId: string): string;
  joinCode(code: string): string;
  throttle(key: string): string;
  /** Matches every key of this keyspace (for tests that clean up). */
  pattern: string;
}

export function redisKeys(prefix = 'constat:v1:'): RedisKeys {
  const sessionKey = (sessionId: string, suffix: string) => {
    if (!isValidSessionId(sessionId))
      throw new Error(`invalid session id ${JSON.stringify(sessionId)}`);
    return `${prefix}{s:${sessionId}}:${suffix}`;
  };
  return {
    session: (id) => sessionKey(id, 'session'),
    updates: (id) => sessionKey(id, 'updates'),
    joinCode: (code) => `${prefix}join:${code}`,
    throttle: (key) => `${prefix}throttle:${key}`,
    pattern: `${prefix}*`,
  };
}
