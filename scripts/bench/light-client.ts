/**
 * A lightweight Yjs websocket client for the benchmarks: the same sync and awareness messages
 * a stock client sends, without the provider's per-client timers, so one process can hold
 * thousands of them, and speaking both framings the peers use:
 * - `y-websocket`: this server and the reference `@y/websocket-server` (one document per
 *   socket, room in the URL);
 * - `hocuspocus`: every message prefixed with the document name, an auth message first.
 *
 * Like a stock client it keeps a Y.Doc, answers sync step 1, applies what it receives, sends
 * each local change as an update, and renews its awareness state every 15 s.
 */
import * as Y from 'yjs';
import WebSocket from 'ws';
import * as encoding from 'lib0/encoding';
import * as decoding from 'lib0/decoding';

export type Wire = 'y-websocket' | 'hocuspocus';

const SYNC = 0;
const AWARENESS = 1;
const AUTH = 2;
const QUERY_AWARENESS = 3;
const HOCUSPOCUS_SYNC_REPLY = 4;
const SESSION_EVENT = 100;
const STEP1 = 0;
const STEP2 = 1;
const UPDATE = 2;
/** What a stock y-websocket client waits between two awareness renewals. */
export const AWARENESS_RENEWAL_MS = 15_000;

const REMOTE = Symbol('remote');

export interface LightClientOptions {
  /** Full websocket URL (room and token included for y-websocket). */
  url: string;
  /** Document name (the room). */
  room: string;
  wire: Wire;
  /** Called after each received update (sync step 2 or update) is applied. */
  onRemoteUpdate?: (client: LightClient) => void;
  /** Session events (message type 100) of this server. */
  onEvent?: (event: { type: string; [k: string]: unknown }) => void;
  /** Renew the awareness state every 15 s, as a stock client does (default true). */
  awareness?: boolean;
}

export class LightClient {
  readonly doc = new Y.Doc();
  readonly ws: WebSocket;
  synced = false;
  closed: { code: number; reason: string } | undefined;
  readonly events: Array<{ type: string; [k: string]: unknown }> = [];
  /** Called after each received update is applied; may be replaced while connected. */
  onRemoteUpdate: ((client: LightClient) => void) | undefined;
  /** Called for each awareness message received (not decoded); may be replaced. */
  onAwareness: ((client: LightClient) => void) | undefined;
  readonly #opts: LightClientOptions;
  readonly #prefix: Uint8Array;
  #awarenessClock = 0;
  #awarenessTimer: NodeJS.Timeout | undefined;
  readonly #opened: Promise<void>;
  #syncedWaiters: Array<() => void> = [];

  constructor(opts: LightClientOptions) {
    this.#opts = opts;
    this.onRemoteUpdate = opts.onRemoteUpdate;
    this.#prefix = (() => {
      if (opts.wire !== 'hocuspocus') return new Uint8Array();
      const e = encoding.createEncoder();
      encoding.writeVarString(e, opts.room);
      return encoding.toUint8Array(e);
    })();
    this.ws = new WebSocket(opts.url, { perMessageDeflate: false });
    this.ws.binaryType = 'nodebuffer';
    this.#opened = new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('error', reject);
    });
    this.ws.on('error', () => {});
    this.ws.on('open', () => this.#onOpen());
    this.ws.on('message', (data: Buffer) => this.#onMessage(data));
    this.ws.on('close', (code, reason) => {
      this.closed = { code, reason: reason.toString() };
      this.#stopAwareness();
      for (const w of this.#syncedWaiters.splice(0)) w();
    });
    this.doc.on('update', (update: Uint8Array, origin: unknown) => {
      if (origin === REMOTE) return;
      this.#send(SYNC, (e) => {
        encoding.writeVarUint(e, UPDATE);
        encoding.writeVarUint8Array(e, update);
      });
    });
  }

  get open(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  /** Resolves once the server's sync step 2 arrived (or the socket closed). */
  whenSynced(timeoutMs = 30_000): Promise<void> {
    if (this.synced || this.closed) return this.closed ? this.#failClosed() : Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${this.#opts.room}: not synced in ${timeoutMs} ms`)),
        timeoutMs,
      );
      this.#syncedWaiters.push(() => {
        clearTimeout(timer);
        if (this.synced) resolve();
        else
          reject(
            new Error(
              `${this.#opts.room}: closed ${this.closed?.code} ${this.closed?.reason ?? ''}`,
            ),
          );
      });
    });
  }

  #failClosed(): Promise<void> {
    return Promise.reject(
      new Error(`${this.#opts.room}: closed ${this.closed?.code} ${this.closed?.reason ?? ''}`),
    );
  }

  close(): void {
    this.#stopAwareness();
    this.ws.removeAllListeners('message');
    if (this.ws.readyState === WebSocket.CONNECTING) this.ws.terminate();
    else this.ws.close();
  }

  async opened(): Promise<void> {
    await this.#opened;
  }

  #onOpen(): void {
    if (this.#opts.wire === 'hocuspocus') {
      this.#send(AUTH, (e) => {
        encoding.writeVarUint(e, 0); // token
        encoding.writeVarString(e, 'bench');
      });
    }
    this.#send(SYNC, (e) => {
      encoding.writeVarUint(e, STEP1);
      encoding.writeVarUint8Array(e, Y.encodeStateVector(this.doc));
    });
    if (this.#opts.awareness !== false) {
      this.sendAwareness();
      // Spread the renewals so thousands of clients do not renew in the same tick.
      const first = Math.random() * AWARENESS_RENEWAL_MS;
      this.#awarenessTimer = setTimeout(() => {
        this.sendAwareness();
        this.#awarenessTimer = setInterval(() => this.sendAwareness(), AWARENESS_RENEWAL_MS);
        this.#awarenessTimer.unref();
      }, first);
      this.#awarenessTimer.unref();
    }
  }

  #stopAwareness(): void {
    if (this.#awarenessTimer) clearTimeout(this.#awarenessTimer);
    this.#awarenessTimer = undefined;
  }

  /** An awareness update with this client's (small) state, as a stock client renews it. */
  sendAwareness(): void {
    if (!this.open) return;
    const inner = encoding.createEncoder();
    encoding.writeVarUint(inner, 1);
    encoding.writeVarUint(inner, this.doc.clientID);
    encoding.writeVarUint(inner, ++this.#awarenessClock);
    encoding.writeVarString(inner, '{"user":{"name":"bench"}}');
    this.#send(AWARENESS, (e) => encoding.writeVarUint8Array(e, encoding.toUint8Array(inner)));
  }

  #send(type: number, body: (e: encoding.Encoder) => void): void {
    if (!this.open) return;
    const e = encoding.createEncoder();
    encoding.writeUint8Array(e, this.#prefix);
    encoding.writeVarUint(e, type);
    body(e);
    this.ws.send(encoding.toUint8Array(e));
  }

  #onMessage(data: Buffer): void {
    const decoder = decoding.createDecoder(
      new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    );
    if (this.#opts.wire === 'hocuspocus') decoding.readVarString(decoder);
    const type = decoding.readVarUint(decoder);
    switch (type) {
      case SYNC:
      case HOCUSPOCUS_SYNC_REPLY: {
        const sub = decoding.readVarUint(decoder);
        const payload = decoding.readVarUint8Array(decoder);
        if (sub === STEP1) {
          const update = Y.encodeStateAsUpdate(this.doc, payload);
          this.#send(this.#opts.wire === 'hocuspocus' ? HOCUSPOCUS_SYNC_REPLY : SYNC, (e) => {
            encoding.writeVarUint(e, STEP2);
            encoding.writeVarUint8Array(e, update);
          });
          return;
        }
        Y.applyUpdate(this.doc, payload, REMOTE);
        if (sub === STEP2 && !this.synced) {
          this.synced = true;
          for (const w of this.#syncedWaiters.splice(0)) w();
        }
        this.onRemoteUpdate?.(this);
        return;
      }
      case SESSION_EVENT: {
        const event = JSON.parse(decoding.readVarString(decoder)) as { type: string };
        this.events.push(event);
        this.#opts.onEvent?.(event);
        return;
      }
      case AWARENESS:
        this.onAwareness?.(this);
        return;
      case AUTH:
      case QUERY_AWARENESS:
      default:
        return;
    }
  }
}
