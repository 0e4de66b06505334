/**
 * Who may write which presence (awareness) entries of a live session.
 *
 * The rule (docs/protocol.md, "Presence"): a connection's first awareness message announces
 * its client ids, and it claims those it may: an id first claimed by one party stays that
 * party's for as long as the document is loaded on this instance, and an id whose state came
 * from another instance is not claimable here while that state lives. Later messages may only
 * write ids the connection claimed — or announced, once they become claimable (the same phone
 * reconnecting before its old socket was noticed gone). Other entries are dropped without a
 * word: stock y-websocket clients echo every presence change they see, the other party's
 * included. A state too large or too deep is refused (TOO_LARGE, close 4413).
 */
import type { Awareness } from 'y-protocols/awareness';
import type { Role } from '../constat/permissions.js';
import { ConstatError } from '../constat/errors.js';
import {
  presenceStateProblem,
  readPresenceUpdate,
  writePresenceUpdate,
  type PresenceEntry,
} from './presence.js';

interface Claims {
  role: Role;
  /** Ids of the connection's first awareness message; undefined until it sent one. */
  announced: ReadonlySet<number> | undefined;
  claimed: Set<number>;
}

export class PresenceGate {
  readonly #awareness: Awareness;
  readonly #owners = new Map<number, Role>();
  readonly #connections = new Map<string, Claims>();

  constructor(awareness: Awareness) {
    this.#awareness = awareness;
  }

  connect(connectionId: string, role: Role): void {
    this.#connections.set(connectionId, { role, announced: undefined, claimed: new Set() });
  }

  /**
   * What of a device's awareness update may be applied (undefined: nothing) and how many
   * entries were dropped. Throws ProtocolError (malformed) or ConstatError (TOO_LARGE).
   */
  admit(connectionId: string, update: Uint8Array): { update?: Uint8Array; dropped: number } {
    const claims = this.#connections.get(connectionId);
    const entries = readPresenceUpdate(update);
    if (!claims) return { dropped: entries.length };
    for (const e of entries) {
      const problem = presenceStateProblem(e.state);
      if (problem) throw new ConstatError('TOO_LARGE', problem);
    }
    claims.announced ??= new Set(entries.map((e) => e.clientID));
    for (const id of claims.announced) {
      if (!claims.claimed.has(id) && this.#mayClaim(id, claims)) {
        claims.claimed.add(id);
        this.#owners.set(id, claims.role);
      }
    }
    const kept = entries.filter((e) => claims.claimed.has(e.clientID));
    const dropped = entries.length - kept.length;
    if (kept.length === 0) return { dropped };
    // Nothing dropped (every renewal of a well-behaved phone): the bytes as they came.
    return { update: dropped === 0 ? update : writePresenceUpdate(kept), dropped };
  }

  /** The party whose connection claimed this presence id here, if any. */
  announcedBy(id: number): Role | undefined {
    return this.#owners.get(id);
  }

  #mayClaim(id: number, claimant: Claims): boolean {
    const owner = this.#owners.get(id);
    if (owner !== undefined) return owner === claimant.role;
    // A state without an owner here was announced through another instance.
    return !this.#awareness.getStates().has(id);
  }

  /** Forgets a connection; returns the ids whose presence leaves with it. */
  disconnect(connectionId: string): number[] {
    const claims = this.#connections.get(connectionId);
    this.#connections.delete(connectionId);
    if (!claims) return [];
    const stillHeld = new Set<number>();
    for (const other of this.#connections.values())
      for (const id of other.claimed) stillHeld.add(id);
    return [...claims.claimed].filter((id) => !stillHeld.has(id));
  }
}

/**
 * Presence from the hub (another instance) was checked there; entries that are too large or
 * too deep anyway (written by an older version) are dropped so they cannot reach devices.
 */
export function safePresence(update: Uint8Array): Uint8Array | undefined {
  const all = readPresenceUpdate(update);
  const entries: PresenceEntry[] = all.filter((e) => presenceStateProblem(e.state) === undefined);
  if (entries.length === all.length) return all.length > 0 ? update : undefined;
  return entries.length > 0 ? writePresenceUpdate(entries) : undefined;
}
