/**
 * A simulated phone: a stock y-websocket WebsocketProvider (unmodified protocol) with the
 * `ws` polyfill, plus a reader for the server's session events (message type 100).
 */
import * as Y from 'yjs';
import WebSocket from 'ws';
import * as decoding from 'lib0/decoding';
import { WebsocketProvider } from 'y-websocket';
import type { SessionEvent } from '../../sync/protocol.js';

export interface Device {
  doc: Y.Doc;
  provider: WebsocketProvider;
  events: SessionEvent[];
  /** Close events the server sent, in order. */
  closes: Array<{ code: number; reason: string }>;
  synced(): Promise<void>;
  destroy(): void;
}

export function connectDevice(
  wsUrl: string,
  sessionId: string,
  token: string,
  opts: { doc?: Y.Doc; connect?: boolean; viaSubprotocol?: boolean } = {},
): Device {
  const doc = opts.doc ?? new Y.Doc();
  const provider = new WebsocketProvider(wsUrl, sessionId, doc, {
    WebSocketPolyfill: WebSocket as unknown as typeof globalThis.WebSocket,
    disableBc: true, // Node's BroadcastChannel would sync two providers without the server
    connect: opts.connect ?? true,
    maxBackoffTime: 300,
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
    synced: () =>
      provider.synced
        ? Promise.resolve()
        : waitFor(() => provider.synced, 10_000, `device for ${sessionId} never synced`),
    destroy: () => {
      provider.destroy();
      provider.awareness.destroy(); // the provider leaves the awareness it created running
    },
  };
}

export async function waitFor(
  predicate: () => boolean,
  timeoutMs = 10_000,
  message = 'condition not met',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${message}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Connects a raw websocket (no Yjs client) and resolves with how the server closed it. */
export function rawSocket(
  url: string,
  protocols?: string[],
): { ws: WebSocket; closed: Promise<{ code: number; reason: string }>; opened: Promise<void> } {
  const ws = new WebSocket(url, protocols);
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  const opened = new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  ws.on('error', () => {});
  return { ws, closed, opened };
}
