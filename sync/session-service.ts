/**
 * Session lifecycle: open (party A), join by code (party B), and who may connect. The join
 * code is six digits, single use, short-lived; failed attempts are throttled per user, per
 * device and in total, because six digits fall to brute force in minutes otherwise.
 */
import { randomInt, randomUUID } from 'node:crypto';
import * as Y from 'yjs';
import type { SessionStore } from './session-store.js';
import type { DraftStore } from './draft-store.js';
import { isOpen, isValidSessionId, roleOf, type SessionRecord } from '../constat/session-record.js';
import { createSkeleton, writeMeta } from '../constat/constat-doc.js';
import { getFormVersion } from '../constat/form-versions.js';
import { recordOwners } from '../constat/client-owners.js';
import { SERVER_ORIGIN } from './origins.js';
import { newDoc } from './yjs-ops.js';
import { ConstatError } from '../constat/errors.js';
import type { Role } from '../constat/permissions.js';

export interface DeviceIdentity {
  userId: string;
  deviceId: string;
}

export interface SessionServiceSettings {
  ttlMs: number;
  joinCodeTtlMs: number;
  joinFailuresPerUser: number;
  joinFailuresGlobal: number;
  joinThrottleWindowMs: number;
  /** Sessions one user may have opened and still waiting for party B. */
  maxWaitingPerUser: number;
}

export interface OpenedSession {
  session: SessionRecord;
  role: Role;
  joinCode?: string;
  joinCodeExpiresAt?: string;
}

const JOIN_CODE = /^\d{6}$/;
const GLOBAL_KEY = 'join:global';
const userKey = (userId: string) => `join:user:${userId}`;
const deviceKey = (deviceId: string) => `join:device:${deviceId}`;

/** Ends the live documents of a session that was closed (so its devices are let go). */
export type EndLiveSession = (
  session: SessionRecord,
  status: 'abandoned' | 'expired',
) => Promise<void>;

export class SessionService {
  #endLive: EndLiveSession = async () => {};
  #changed: (sessionId: string) => void = () => {};

  constructor(
    private readonly store: SessionStore,
    private readonly drafts: DraftStore,
    private readonly settings: SessionServiceSettings,
    private readonly now: () => number = Date.now,
  ) {}

  /** Set once the live documents exist (they are built after this service). */
  onEnded(endLive: EndLiveSession): void {
    this.#endLive = endLive;
  }

  /** Told about every change of a session's record (subscriptions). */
  onChanged(changed: (sessionId: string) => void): void {
    this.#changed = changed;
  }

  /**
   * A party gives up the session. The draft stays, marked abandoned: nothing is deleted.
   * Abandoning twice is fine; abandoning a finalized constat is a CONFLICT.
   */
  async abandon(device: DeviceIdentity, sessionId: string): Promise<SessionRecord> {
    const session = await this.get(sessionId);
    const isParty =
      session && [session.parties.A, session.parties.B].some((p) => p?.userId === device.userId);
    if (!session || !isParty) throw new ConstatError('NOT_FOUND', 'unknown session');
    if (session.status === 'abandoned') return session;
    const updated = await this.store.transition(sessionId, ['waiting', 'active'], {
      status: 'abandoned',
    });
    if (!updated)
      throw new ConstatError(
        'CONFLICT',
        `session is ${(await this.get(sessionId))?.status ?? 'gone'}`,
      );
    // The live document is stored first: a closed draft is never written again.
    await this.#endLive(updated, 'abandoned');
    await this.drafts.setStatus(sessionId, 'abandoned');
    this.#changed(sessionId);
    return updated;
  }

  /** Expires every open session past its expiry (run periodically by each instance). */
  async expireDue(): Promise<number> {
    const expired = await this.store.expireDue();
    // One session whose document cannot be stored must not leave the others' drafts open.
    // Its own draft stays live (nothing it holds is closed unsaved); the error is reported.
    const failures: unknown[] = [];
    for (const session of expired) {
      try {
        await this.#endLive(session, 'expired');
        await this.drafts.setStatus(session.id, 'expired');
      } catch (err) {
        failures.push(err);
      } finally {
        this.#changed(session.id); // its record is expired either way
      }
    }
    if (failures.length > 0)
      throw new AggregateError(failures, `${failures.length} expired session(s) not closed`);
    return expired.length;
  }

  async open(opener: DeviceIdentity, formVersion: string): Promise<OpenedSession> {
    if (!getFormVersion(formVersion)) {
      throw new ConstatError('BAD_USER_INPUT', `unknown form version "${formVersion}"`, {
        field: 'formVersion',
      });
    }
    // Checked first so a refused open writes nothing; `create` enforces it again atomically.
    const waiting = await this.store.waitingOpenedBy(opener.userId);
    if (waiting.length >= this.settings.maxWaitingPerUser) throw tooManyWaiting(waiting);
    const now = this.now();
    const session: SessionRecord = {
      schema: 1,
      id: randomUUID(),
      formVersion,
      status: 'waiting',
      createdAt: new Date(now).toISOString(),
      expiresAt: new Date(now + this.settings.ttlMs).toISOString(),
      parties: { A: { ...opener, joinedAt: new Date(now).toISOString() } },
    };
    // The document exists in storage before anyone can connect, so every instance loads the
    // same initial state (meta and the client-ownership map) instead of racing to create it.
    await this.drafts.save({ sessionId: session.id, formVersion, state: initialDocument(session) });
    for (let attempt = 0; attempt < 20; attempt++) {
      const code = String(randomInt(0, 1_000_000)).padStart(6, '0');
      const created = await this.store.create(
        session,
        code,
        this.settings.joinCodeTtlMs,
        this.settings.maxWaitingPerUser,
      );
      if (created === 'too-many-waiting') {
        // Lost a race with a parallel open of the same user: the draft stays, closed.
        await this.drafts.setStatus(session.id, 'abandoned');
        throw tooManyWaiting(await this.store.waitingOpenedBy(opener.userId));
      }
      if (created === 'created') {
        return {
          session,
          role: 'A',
          joinCode: code,
          joinCodeExpiresAt: new Date(now + this.settings.joinCodeTtlMs).toISOString(),
        };
      }
    }
    throw new ConstatError('UNAVAILABLE', 'could not allocate a join code; try again');
  }

  async join(joiner: DeviceIdentity, code: string): Promise<OpenedSession> {
    // Every attempt counts as a failure first and is forgiven once it succeeds: deciding from
    // a count read before the attempt would let parallel guesses all pass the check. The
    // caller's own counters (user, device) come first, and an attempt over either is not
    // counted globally: one account (or one device) feeds the global guard at most its own
    // allowance, so it can never lock every other user out.
    const { joinFailuresPerUser: perCaller, joinFailuresGlobal: global } = this.settings;
    const window = this.settings.joinThrottleWindowMs;
    const own = [userKey(joiner.userId), deviceKey(joiner.deviceId)];
    const counted = [...own];
    let forgive = false;
    try {
      const mine = await Promise.all(own.map((key) => this.store.recordFailure(key, window)));
      if (mine.some((failures) => failures > perCaller)) throw rateLimited();
      counted.push(GLOBAL_KEY);
      if ((await this.store.recordFailure(GLOBAL_KEY, window)) > global) throw rateLimited();
      const sessionId = JOIN_CODE.test(code) ? await this.store.peekJoinCode(code) : null;
      const session = sessionId ? await this.store.get(sessionId) : null;
      if (!sessionId || !session || !isOpen(session, this.now())) {
        throw new ConstatError('NOT_FOUND', 'unknown, used or expired join code');
      }
      if (session.parties.A.userId === joiner.userId) {
        forgive = true; // not a guess: the opener scanned their own code
        throw new ConstatError(
          'CONFLICT',
          'the driver who opened the session cannot also join it as party B',
        );
      }
      if (!(await this.store.consumeJoinCode(code, sessionId))) {
        throw new ConstatError('NOT_FOUND', 'unknown, used or expired join code');
      }
      forgive = true;
      const added = await this.store.addPartyB(sessionId, {
        ...joiner,
        joinedAt: new Date(this.now()).toISOString(),
      });
      if (!added.ok) {
        throw new ConstatError(
          added.reason === 'full' ? 'CONFLICT' : 'NOT_FOUND',
          `session cannot be joined (${added.reason})`,
        );
      }
      this.#changed(sessionId);
      return { session: added.session, role: 'B' };
    } finally {
      if (forgive) await Promise.all(counted.map((key) => this.store.forgiveFailure(key)));
    }
  }

  async get(sessionId: string): Promise<SessionRecord | null> {
    return isValidSessionId(sessionId) ? this.store.get(sessionId) : null;
  }

  /**
   * Who a connecting device is in a session. Unknown and expired sessions are NOT_FOUND,
   * closed ones GONE; a device that is not one of the two parties is FORBIDDEN.
   */
  async authorizeDevice(
    sessionId: string,
    device: DeviceIdentity,
  ): Promise<{ session: SessionRecord; role: Role }> {
    const session = await this.get(sessionId);
    if (!session) throw new ConstatError('NOT_FOUND', 'unknown session');
    const role = roleOf(session, device.userId, device.deviceId);
    if (!role) throw new ConstatError('FORBIDDEN', 'this device is not a party of the session');
    if (session.status === 'finalized') {
      throw new ConstatError('GONE', 'session is finalized', { constatId: session.constatId });
    }
    if (!isOpen(session, this.now()))
      throw new ConstatError(
        'NOT_FOUND',
        `session is ${session.status === 'waiting' || session.status === 'active' ? 'expired' : session.status}`,
      );
    return { session, role };
  }
}

/**
 * Opening another session while some wait for party B is refused rather than answered with a
 * waiting one: its join code may have expired, and the phone that opened it may be elsewhere.
 * The error names the waiting sessions, so the app can resume or abandon one.
 */
function tooManyWaiting(waitingSessionIds: string[]): ConstatError {
  return new ConstatError(
    'RATE_LIMITED',
    `${waitingSessionIds.length} sessions you opened are still waiting for party B: use or abandon one first`,
    { reason: 'too-many-waiting', waitingSessionIds },
  );
}

const rateLimited = () =>
  new ConstatError('RATE_LIMITED', 'too many failed join attempts; wait and try again');

function initialDocument(session: SessionRecord): Uint8Array {
  const doc = newDoc();
  writeMeta(
    doc,
    { formVersion: session.formVersion, sessionId: session.id, createdAt: session.createdAt },
    SERVER_ORIGIN,
  );
  createSkeleton(doc, SERVER_ORIGIN);
  recordOwners(doc, [], 'server', SERVER_ORIGIN);
  const state = Y.encodeStateAsUpdate(doc);
  doc.destroy();
  return state;
}
