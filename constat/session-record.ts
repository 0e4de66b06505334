/** The state of one constat session, as kept by a session store (Redis or in process). */
import type { Role } from './permissions.js';

export type SessionStatus = 'waiting' | 'active' | 'finalized' | 'abandoned' | 'expired';

export interface Party {
  userId: string;
  deviceId: string;
  joinedAt: string;
}

export interface SessionRecord {
  /** Bumped on every change; payloads carry it so a newer writer can be told from an older one. */
  schema: 1;
  id: string;
  formVersion: string;
  status: SessionStatus;
  createdAt: string;
  expiresAt: string;
  parties: { A: Party; B?: Party };
  constatId?: string;
}

export const OPEN_STATUSES: ReadonlySet<SessionStatus> = new Set(['waiting', 'active']);

const SESSION_ID = /^[A-Za-z0-9_-]{8,64}$/;

/** Session ids come from URLs: validate at the boundary so a bad one never reaches a key. */
export function isValidSessionId(id: string): boolean {
  return SESSION_ID.test(id);
}

export function isOpen(session: SessionRecord, now = Date.now()): boolean {
  return OPEN_STATUSES.has(session.status) && Date.parse(session.expiresAt) > now;
}

export function roleOf(session: SessionRecord, userId: string, deviceId: string): Role | undefined {
  const { A, B } = session.parties;
  if (A.userId === userId && A.deviceId === deviceId) return 'A';
  if (B && B.userId === userId && B.deviceId === deviceId) return 'B';
  return undefined;
}
