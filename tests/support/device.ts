/** Devices for tests: the simulator's phone, and raw sockets for hostile frames. */
import WebSocket from 'ws';

// The simulated phone is the simulator's own (scripts/sim/device.ts): tests drive the same one.
export { connectDevice, waitFor, type Device } from '../../scripts/sim/device.js';

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
