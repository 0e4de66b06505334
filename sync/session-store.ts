/**
 * Where session state lives: the database (persistence/sessions-repository.ts), on PostgreSQL
 * or embedded PGlite; one contract suite (tests/session-store.test.ts) runs against both.
 */
import type { Party, SessionRecord } from '../constat/session-record.js';

export type AddPartyResult =
  { ok: true; session: SessionRecord } | { ok: false; reason: 'not-found' | 'full' | 'closed' };

export type CreateResult = 'created' | 'code-taken' | 'too-many-waiting';

export interface SessionStore {
  /**
   * Stores a new session and its join code, unless the code is already taken or, with
   * `maxWaitingPerOpener`, party A already opened that many sessions still waiting for B.
   */
  create(
    session: SessionRecord,
    joinCode: string,
    joinCodeTtlMs: number,
    maxWaitingPerOpener?: number,
  ): Promise<CreateResult>;
  /** Ids of the open sessions `userId` opened that still wait for party B. */
  waitingOpenedBy(userId: string): Promise<string[]>;
  get(id: string): Promise<SessionRecord | null>;
  /** The session a join code points at, without consuming it. */
  peekJoinCode(code: string): Promise<string | null>;
  /** Consumes a join code; true only for the one caller that consumed it. */
  consumeJoinCode(code: string, sessionId: string): Promise<boolean>;
  /** Atomically sets party B if the session is waiting for it. */
  addPartyB(sessionId: string, party: Party): Promise<AddPartyResult>;
  /** Replaces the record if its status is one of `from` (compare-and-set); returns the new record. */
  transition(
    id: string,
    from: readonly SessionRecord['status'][],
    patch: Partial<SessionRecord>,
  ): Promise<SessionRecord | null>;
  /** Counts one failed attempt under `key` in a window starting at the first failure; returns the count. */
  recordFailure(key: string, windowMs: number): Promise<number>;
  /** Takes one counted failure back (the attempt succeeded after all). */
  forgiveFailure(key: string): Promise<void>;
  failures(key: string): Promise<number>;
  /** Marks every open session past its expiry as expired; returns them. */
  expireDue(): Promise<SessionRecord[]>;
  close(): Promise<void>;
}
