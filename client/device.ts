/**
 * A simulated phone: a stock y-websocket `WebsocketProvider` (the protocol unmodified) with the
 * `ws` polyfill, plus a reader for the server's session events (message type 100) and a record
 * of how the server closed the connection.
 */
import * as Y from 'yjs';
import WebSocket from 'ws';
import * as decoding from 'lib0/decoding';
import { WebsocketProvider } from 'y-websocket';
import type { SessionEvent } from '../sync/protocol.js';

export interface Device {
  doc: Y.Doc;
  provider: WebsocketProvider;
  events: SessionEvent[];
  /** Close events, in order (code and reason as the server sent them). */
  closes: Array<{ code: number; reason: string }>;
  synced(timeoutMs?: number): Promise<void>;
  /** Drops the connection; edits made meanwhile stay in `doc` and are sent on `reconnect`. */
  disconnect(): void;
  reconnect(): void;
  destroy(): void;
}

export function connectDevice(
  syncBase: string,
  sessionId: string,
  token: string,
  opts: { doc?: Y.Doc; connect?: boolean; viaSubprotocol?: boolean } = {},
): Device {
  const doc = opts.doc ?? new Y.Doc();
  const provider = new WebsocketProvider(syncBase, sessionId, doc, {
    WebSocketPolyfill: WebSocket as unknown as typeof globalThis.WebSocket,
    // Node's global BroadcastChannel would sync two providers of one process without the server.
    disableBc: true,
    connect: opts.connect ?? true,
    maxBackoffTime: 500,
    // The token in the URL, or as a subprotocol entry (docs/protocol.md).
    ...(opts.viaSubprotocol
      ? { protocols: ['constat.v1', `bearer.${token}`] }
      : { params: { token } }),
  });
  const events: SessionEvent[] = [];
  const closes: Device['closes'] = [];
  provider.messageHandlers[100] = (_encoder, decoder) => {
    events.push(JSON.parse(decoding.readVarString(decoder)) as SessionEvent);
  };
  provider.on('connection-close', (event) => {
    if (event) closes.push({ code: event.code, reason: event.reason });
  });
  return {
    doc,
    provider,
    events,
    closes,
    synced: (timeoutMs = 15_000) =>
      waitFor(() => provider.synced, timeoutMs, `device of session ${sessionId} never synced`),
    disconnect: () => provider.disconnect(),
    reconnect: () => provider.connect(),
    destroy: () => {
      provider.destroy();
      provider.awareness.destroy(); // the provider leaves the awareness it created running
    },
  };
}

export class TimeoutError extends Error {
  override name = 'TimeoutError';
}

export async function waitFor(
  predicate: () => boolean,
  timeoutMs = 10_000,
  message = 'condition not met',
  pollMs = 10,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline)
      throw new TimeoutError(`timed out after ${timeoutMs} ms: ${message}`);
    await sleep(pollMs);
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
