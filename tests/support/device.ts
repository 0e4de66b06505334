/** Devices for tests: the simulator's phone, and raw sockets for hostile frames. */
import WebSocket from 'ws';
import { connectDevice, type Device } from '../../client/device.js';

// The simulated phone is the simulator's own (scripts/sim/device.ts): tests drive the same one.
export { connectDevice, waitFor, type Device } from '../../client/device.js';

/**
 * Connects both parties' phones to an opened session and waits until both synced. They are
 * added to `devices` first, so the suite closes them even if the sync fails.
 */
export async function connectBoth(
  server: { wsUrl: string },
  pair: { sessionId: string; tokenA: string; tokenB: string },
  devices: Device[],
): Promise<{ a: Device; b: Device }> {
  const a = connectDevice(server.wsUrl, pair.sessionId, pair.tokenA);
  const b = connectDevice(server.wsUrl, pair.sessionId, pair.tokenB);
  devices.push(a, b);
  await Promise.all([a.synced(), b.synced()]);
  return { a, b };
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
