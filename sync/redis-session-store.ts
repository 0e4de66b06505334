/**
 * Session store in Redis, shared by every instance. Each session is one JSON value under a
 * hash-tagged key; changes to it run as Lua scripts on that single key, so check-and-set is
 * atomic (a separate read then write would let two joiners both become party B).
 */
import type { Redis } from 'ioredis';
import type { AddPartyResult, SessionStore } from './session-store.js';
import type { Party, SessionRecord } from './session-record.js';
import type { RedisKeys } from './redis-keys.js';

const RETENTION_MS = 24 * 3600_000;

// KEYS[1] session key; ARGV[1] party JSON. Returns the new record, or an error word.
const ADD_PARTY_B = `
local raw = redis.call('GET', KEYS[1])
if not raw then return {'not-found'} end
local s = cjson.decode(raw)
if s.parties.B then return {'full'} end
if s.status ~= 'waiting' then return {'closed'} end
s.parties.B = cjson.decode(ARGV[1])
s.status = 'active'
local out = cjson.encode(s)
redis.call('SET', KEYS[1], out, 'KEEPTTL')
return {'ok', out}
`;

// KEYS[1] session key; ARGV[1] JSON list of allowed statuses; ARGV[2] patch JSON.
const TRANSITION = `
local raw = redis.call('GET', KEYS[1])
if not raw then return false end
local s = cjson.decode(raw)
local allowed = cjson.decode(ARGV[1])
local ok = false
for _, st in ipairs(allowed) do if st == s.status then ok = true end end
if not ok then return false end
for k, v in pairs(cjson.decode(ARGV[2])) do s[k] = v end
local out = cjson.encode(s)
redis.call('SET', KEYS[1], out, 'KEEPTTL')
return out
`;

// KEYS[1] code key; ARGV[1] expected session id. Deletes the code only if it still points there.
const CONSUME_CODE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

// KEYS[1] counter key; ARGV[1] window ms. The window starts at the first failure.
const RECORD_FAILURE = `
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n
`;

export class RedisSessionStore implements SessionStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
  ) {}

  async create(session: SessionRecord, joinCode: string, joinCodeTtlMs: number): Promise<boolean> {
    const claimed = await this.redis.set(
      this.keys.joinCode(joinCode),
      session.id,
      'PX',
      joinCodeTtlMs,
      'NX',
    );
    if (claimed !== 'OK') return false;
    const ttl = Date.parse(session.expiresAt) - Date.now() + RETENTION_MS;
    await this.redis.set(
      this.keys.session(session.id),
      JSON.stringify(session),
      'PX',
      Math.max(ttl, 1000),
    );
    return true;
  }

  async get(id: string): Promise<SessionRecord | null> {
    const raw = await this.redis.get(this.keys.session(id));
    return raw ? parseRecord(raw) : null;
  }

  async peekJoinCode(code: string): Promise<string | null> {
    return this.redis.get(this.keys.joinCode(code));
  }

  async consumeJoinCode(code: string, sessionId: string): Promise<boolean> {
    const deleted = await this.redis.eval(CONSUME_CODE, 1, this.keys.joinCode(code), sessionId);
    return deleted === 1;
  }

  async addPartyB(sessionId: string, party: Party): Promise<AddPartyResult> {
    const [outcome, raw] = (await this.redis.eval(
      ADD_PARTY_B,
      1,
      this.keys.session(sessionId),
      JSON.stringify(party),
    )) as [string, string | undefined];
    if (outcome === 'ok' && raw) return { ok: true, session: parseRecord(raw) };
    return { ok: false, reason: outcome as 'not-found' | 'full' | 'closed' };
  }

  async transition(
    id: string,
    from: readonly SessionRecord['status'][],
    patch: Partial<SessionRecord>,
  ): Promise<SessionRecord | null> {
    const raw = (await this.redis.eval(
      TRANSITION,
      1,
      this.keys.session(id),
      JSON.stringify(from),
      JSON.stringify(patch),
    )) as string | null;
    return raw ? parseRecord(raw) : null;
  }

  async recordFailure(key: string, windowMs: number): Promise<number> {
    return (await this.redis.eval(RECORD_FAILURE, 1, this.keys.throttle(key), windowMs)) as number;
  }

  async failures(key: string): Promise<number> {
    return Number((await this.redis.get(this.keys.throttle(key))) ?? 0);
  }

  async close(): Promise<void> {
    // The connection is owned by whoever created it (it is shared with the hub).
  }
}

function parseRecord(raw: string): SessionRecord {
  const record = JSON.parse(raw) as SessionRecord;
  if (record.schema !== 1)
    throw new Error(`unsupported session record schema ${String(record.schema)}`);
  return record;
}
