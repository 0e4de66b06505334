/**
 * One open constat on this phone: the Yjs document, kept in IndexedDB (edits made offline
 * survive a closed tab and merge when the connection is back) and synced by a stock
 * y-websocket provider. The server's session events (message type 100) and close codes are
 * turned into one observable state the screens render: nothing the server refuses is
 * swallowed. docs/protocol.md is the contract.
 */
import * as Y from 'yjs';
import { WebsocketProvider } from 'y-websocket';
import { IndexeddbPersistence } from 'y-indexeddb';
import * as decoding from 'lib0/decoding';
import type { Role } from '../../constat/permissions.js';

export type { Role };

export type SessionEvent =
  | { type: 'signed'; role: Role; hash: string }
  | { type: 'signatures-voided'; reason: string }
  | { type: 'finalized'; constatId: string }
  | { type: 'rejected-update'; reason: string; code: string }
  | { type: 'expiring'; expiresAt: string };

export interface ConnectionState {
  /** The browser says it has a network. */
  online: boolean;
  status: 'connecting' | 'connected' | 'disconnected';
  /** In sync with the server at least once since connecting. */
  synced: boolean;
  /** The local copy from IndexedDB is loaded. */
  loaded: boolean;
  /** The server closed the connection for good (44xx, or 1009). */
  closed?: { code: number; reason: string };
  /** The last refusal the server explained. */
  refused?: { reason: string; code: string };
}

export interface LiveConstatOptions {
  sessionId: string;
  role: Role;
  syncUrl: string;
  token: () => string;
  user: { name: string; userId: string };
}

const MESSAGE_SESSION_EVENT = 100;

export class LiveConstat {
  readonly doc = new Y.Doc();
  readonly provider: WebsocketProvider;
  readonly local: IndexeddbPersistence;
  state: ConnectionState = {
    online: navigator.onLine,
    status: 'connecting',
    synced: false,
    loaded: false,
  };
  readonly #stateListeners = new Set<(s: ConnectionState) => void>();
  readonly #eventListeners = new Set<(e: SessionEvent) => void>();
  readonly #onOnline = () => this.#setOnline(true);
  readonly #onOffline = () => this.#setOnline(false);
  #destroyed = false;

  constructor(readonly options: LiveConstatOptions) {
    const { sessionId, syncUrl } = options;
    this.local = new IndexeddbPersistence(localName(sessionId), this.doc);
    void this.local.whenSynced.then(() => this.#update({ loaded: true }));
    // The ticket's syncUrl ends with the session id; the provider adds the room itself.
    const serverUrl = syncUrl.slice(0, syncUrl.lastIndexOf('/'));
    this.provider = new WebsocketProvider(serverUrl, sessionId, this.doc, {
      params: { token: options.token() },
      connect: navigator.onLine,
      // 1009: the frame was too large; sending it again would fail the same way.
      shouldReconnect: (event) =>
        !((event.code >= 4400 && event.code < 4500) || event.code === 1009),
    });
    this.provider.messageHandlers[MESSAGE_SESSION_EVENT] = (_encoder, decoder) => {
      this.#sessionEvent(decoding.readVarString(decoder));
    };
    this.provider.on('status', ({ status }) => {
      // A reconnect presents the token again: take the current one.
      this.provider.params = { token: options.token() };
      this.#update({ status, ...(status === 'connected' ? {} : { synced: false }) });
    });
    this.provider.on('sync', (synced: boolean) => this.#update({ synced }));
    this.provider.on('closed', ({ code, reason }) =>
      this.#update({ closed: { code, reason: reason || closeReason(code) } }),
    );
    this.provider.awareness.setLocalStateField('user', {
      name: options.user.name,
      role: options.role,
    });
    window.addEventListener('online', this.#onOnline);
    window.addEventListener('offline', this.#onOffline);
  }

  get role(): Role {
    return this.options.role;
  }

  onState(listener: (s: ConnectionState) => void): () => void {
    this.#stateListeners.add(listener);
    listener(this.state);
    return () => this.#stateListeners.delete(listener);
  }

  onEvent(listener: (e: SessionEvent) => void): () => void {
    this.#eventListeners.add(listener);
    return () => this.#eventListeners.delete(listener);
  }

  /** Roles of the other devices present right now (awareness). */
  presentRoles(): Set<Role> {
    const roles = new Set<Role>();
    for (const [client, state] of this.provider.awareness.getStates()) {
      if (client === this.doc.clientID) continue;
      const role = (state as { user?: { role?: unknown } }).user?.role;
      if (role === 'A' || role === 'B') roles.add(role);
    }
    return roles;
  }

  /**
   * Drops this phone's copy and starts again from the server's: the way out after the server
   * refused an edit that this copy still holds (it would be sent again on every connect).
   */
  async resetFromServer(): Promise<void> {
    await this.local.clearData();
    this.destroy();
  }

  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    window.removeEventListener('online', this.#onOnline);
    window.removeEventListener('offline', this.#onOffline);
    this.provider.destroy();
    void this.local.destroy();
    this.doc.destroy();
  }

  #setOnline(online: boolean): void {
    this.#update({ online });
    // Without a network the provider would retry in a loop; with it back, sync at once.
    if (online && !this.state.closed) this.provider.connect();
    if (!online) this.provider.disconnect();
  }

  #sessionEvent(json: string): void {
    let event: SessionEvent;
    try {
      event = JSON.parse(json) as SessionEvent;
    } catch {
      return;
    }
    if (event.type === 'rejected-update') {
      this.#update({ refused: { reason: event.reason, code: event.code } });
    }
    for (const listener of this.#eventListeners) listener(event);
  }

  #update(patch: Partial<ConnectionState>): void {
    this.state = { ...this.state, ...patch };
    for (const listener of this.#stateListeners) listener(this.state);
  }
}

export function localName(sessionId: string): string {
  return `constat-session-${sessionId}`;
}

/** The meaning of the server's close codes (docs/protocol.md), for the driver. */
export function closeReason(code: number): string {
  switch (code) {
    case 4400:
      return 'malformed message';
    case 4401:
      return 'not signed in, or the sign-in expired';
    case 4403:
      return 'forbidden: not a party of this constat, or a write into the other driver’s part';
    case 4404:
      return 'unknown, expired or closed session';
    case 4409:
      return 'the constat is finalized: read-only';
    case 4413:
      return 'too large';
    case 4429:
      return 'too many messages';
    case 1009:
      return 'message too large';
    default:
      return `closed (${code})`;
  }
}
