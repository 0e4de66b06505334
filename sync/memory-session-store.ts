/** Session store held in this process: the embedded default (single instance). */
import type { AddPartyResult, SessionStore } from './session-store.js';
import type { Party, SessionRecord } from './session-record.js';

interface Expiring<T> {
  value: T;
  expiresAt: number;
}

// Records are kept a while past their expiry so a late device is told "expired", not "unknown".
const RETENTION_MS = 24 * 3600_000;

export class MemorySessionStore implements SessionStore {
  readonly #sessions = new Map<string, Expiring<SessionRecord>>();
  readonly #codes = new Map<string, Expiring<string>>();
  readonly #counters = new Map<string, Expiring<number>>();

  async create(session: SessionRecord, joinCode: string, joinCodeTtlMs: number): Promise<boolean> {
    if (live(this.#codes, joinCode) !== undefined) return false;
    this.#sessions.set(session.id, {
      value: clone(session),
      expiresAt: Date.parse(session.expiresAt) + RETENTION_MS,
    });
    this.#codes.set(joinCode, { value: session.id, expiresAt: Date.now() + joinCodeTtlMs });
    return true;
  }

  async get(id: string): Promise<SessionRecord | null> {
    const s = live(this.#sessions, id);
    return s ? clone(s) : null;
  }

  async peekJoinCode(code: string): Promise<string | null> {
    return live(this.#codes, code) ?? null;
  }

  async consumeJoinCode(code: string, sessionId: string): Promise<boolean> {
    if (live(this.#codes, code) !== sessionId) return false;
    this.#codes.delete(code);
    return true;
  }

  async addPartyB(sessionId: string, party: Party): Promise<AddPartyResult> {
    const s = live(this.#sessions, sessionId);
    if (!s) return { ok: false, reason: 'not-found' };
    if (s.parties.B) return { ok: false, reason: 'full' };
    if (s.status !== 'waiting') return { ok: false, reason: 'closed' };
    s.parties.B = { ...party };
    s.status = 'active';
    return { ok: true, session: clone(s) };
  }

  async transition(
    id: string,
    from: readonly SessionRecord['status'][],
    patch: Partial<SessionRecord>,
  ): Promise<SessionRecord | null> {
    const entry = this.#sessions.get(id);
    if (!entry || entry.expiresAt <= Date.now() || !from.includes(entry.value.status)) return null;
    entry.value = { ...entry.value, ...clone(patch) };
    return clone(entry.value);
  }

  async recordFailure(key: string, windowMs: number): Promise<number> {
    const current = this.#counters.get(key);
    if (current && current.expiresAt > Date.now()) return ++current.value;
    this.#counters.set(key, { value: 1, expiresAt: Date.now() + windowMs });
    return 1;
  }

  async failures(key: string): Promise<number> {
    return live(this.#counters, key) ?? 0;
  }

  async close(): Promise<void> {
    this.#sessions.clear();
    this.#codes.clear();
    this.#counters.clear();
  }
}

function live<T>(map: Map<string, Expiring<T>>, key: string): T | undefined {
  const entry = map.get(key);
  if (!entry) return undefined;
  if (entry.expiresAt <= Date.now()) {
    map.delete(key);
    return undefined;
  }
  return entry.value;
}

function clone<T>(value: T): T {
  return structuredClone(value);
}
