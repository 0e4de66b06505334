/**
 * The websocket endpoint `/v1/sync/:sessionId`. Every upgrade is accepted and then, if the
 * device may not be there, closed with the contract's code: a refused HTTP upgrade reaches a
 * browser client as a bare 1006 and it would retry forever, while 44xx tells it to stop.
 *
 * Uses `ws` directly (not the Hono websocket helper) because the endpoint needs a hard frame
 * cap enforced before a frame is buffered (`maxPayload`), subprotocol selection for tokens
 * carried in `Sec-WebSocket-Protocol`, and the socket's send buffer size for backpressure.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Logger } from 'pino';
import type { Limits } from './config.js';
import type { Metrics } from './metrics.js';
import type { TokenVerifier } from './auth.js';
import type { SessionService } from '../sync/session-service.js';
import type { LiveSessions } from '../sync/live-sessions.js';
import { ConstatError } from '../constat/errors.js';
import { DeviceConnection } from './device-connection.js';
import { CloseCode, closeCodeFor, closeReason } from './close-codes.js';
import { runAt } from './run-at.js';

const PATH = /^\/v1\/sync\/([^/?#]+)$/;
export const SYNC_SUBPROTOCOL = 'constat.v1';
const BEARER_PROTOCOL = 'bearer.';

export interface SyncEndpointDeps {
  verifier: TokenVerifier;
  sessions: SessionService;
  live: LiveSessions;
  limits: Limits;
  metrics: Metrics;
  logger: Logger;
}

export interface SyncEndpoint {
  /** Handles an HTTP upgrade; false when the path is not ours. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean;
  /** Closes every device connection (shutdown) and stops accepting new ones. */
  close(): Promise<void>;
}

export function createSyncEndpoint(deps: SyncEndpointDeps): SyncEndpoint {
  const log = deps.logger.child({ component: 'sync-endpoint' });
  const wss = new WebSocketServer({
    noServer: true,
    // Hard cap, applied by ws before buffering: anything between maxFrameBytes and this is
    // refused by us with 4413; beyond it ws closes with 1009 without reading it.
    maxPayload: deps.limits.maxFrameBytes * 4,
    perMessageDeflate: false,
    handleProtocols: selectSubprotocol,
  });
  const connections = new Set<DeviceConnection>();
  // Open sockets per (session, device). Each socket receives every edit of the session, so
  // without a cap one device token multiplies the outbound traffic of a single edit.
  const perDevice = new Map<string, number>();
  // Settles once a closed connection has left its document (and the draft is saved when it
  // was the last one), so shutdown does not close storage under a pending save.
  const departures = new Set<Promise<void>>();
  let closing = false;

  const onSocketError = (err: Error) => log.debug({ err }, 'websocket error');

  const admit = async (ws: WebSocket, token: string | undefined, sessionId: string) => {
    // Frames that arrive while we authenticate wait here, under a small cap.
    const early: Array<[Buffer, boolean]> = [];
    let earlyBytes = 0;
    const buffer = (data: Buffer, isBinary: boolean) => {
      earlyBytes += data.byteLength;
      if (early.length >= 64 || earlyBytes > deps.limits.maxFrameBytes * 2) {
        deps.metrics.limitHits.inc({ limit: 'pre-admission' });
        ws.close(CloseCode.tooLarge, 'too much data before the session was ready');
        return;
      }
      early.push([data, isBinary]);
    };
    ws.on('message', buffer);
    try {
      if (!token) throw new ConstatError('UNAUTHENTICATED', 'missing token');
      const { principal, expiresAt } = await deps.verifier.verifyToken(token);
      const { session, role } = await deps.sessions.authorizeDevice(sessionId, principal);
      if (closing) throw new ConstatError('UNAVAILABLE', 'server is shutting down');
      if (ws.readyState !== ws.OPEN) return;
      const deviceKey = `${sessionId}\u0000${principal.deviceId}`;
      const open = perDevice.get(deviceKey) ?? 0;
      if (open >= deps.limits.maxSocketsPerDevice) {
        deps.metrics.limitHits.inc({ limit: 'sockets-per-device' });
        // Transient: a phone whose earlier sockets are not yet noticed dead gets in once they
        // time out; a client opening many stays held at the cap.
        throw new ConstatError(
          'UNAVAILABLE',
          `this device already has ${open} connections to the session`,
        );
      }
      perDevice.set(deviceKey, open + 1);
      ws.once('close', () => {
        const left = (perDevice.get(deviceKey) ?? 1) - 1;
        if (left > 0) perDevice.set(deviceKey, left);
        else perDevice.delete(deviceKey);
      });
      const connection = new DeviceConnection({
        ws,
        role,
        userId: principal.userId,
        deviceId: principal.deviceId,
        limits: deps.limits,
        metrics: deps.metrics,
        logger: log,
        sessionId,
      });
      ws.off('message', buffer);
      ws.on('message', (data: Buffer, isBinary) => connection.receive(data, isBinary));
      for (const [data, isBinary] of early) connection.receive(data, isBinary);
      early.length = 0; // the closures below share this scope: keep nothing alive in it
      connections.add(connection);
      deps.metrics.connections.inc();
      // Admission proved the token valid then, not for the life of the socket.
      const expiry = runAt(expiresAt, () =>
        connection.close(CloseCode.unauthenticated, 'token expired'),
      );
      let live: Awaited<ReturnType<LiveSessions['attach']>> | undefined;
      ws.once('close', () => {
        expiry.cancel();
        connections.delete(connection);
        deps.metrics.connections.dec();
        connection.onClosed();
        if (live) {
          const departure = deps.live
            .detach(live, connection)
            .catch((err: unknown) => log.error({ err }, 'detach failed'))
            .finally(() => {
              departures.delete(departure);
              deps.metrics.liveSessions.set(deps.live.size);
            });
          departures.add(departure);
        }
      });
      live = await deps.live.attach(session, connection);
      deps.metrics.liveSessions.set(deps.live.size);
      if (ws.readyState !== ws.OPEN) {
        // Closed while loading: the close handler ran before `live` was set.
        await deps.live.detach(live, connection);
        return;
      }
      connection.bind(live);
    } catch (err) {
      const code = closeCodeFor(err);
      deps.metrics.connectionsRefused.inc({ code: String(code) });
      if (code === CloseCode.internalError)
        log.error({ err, sessionId }, 'failed to admit a device');
      else log.info({ code, sessionId, reason: (err as Error).message }, 'device refused');
      if (ws.readyState === ws.OPEN) ws.close(code, closeReason(err));
    }
  };

  return {
    handleUpgrade(req, socket, head) {
      const url = new URL(req.url ?? '/', 'http://localhost');
      const match = PATH.exec(url.pathname);
      if (!match) return false;
      if (closing) {
        socket.end(
          'HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n',
        );
        return true;
      }
      // Not decoded: valid ids need no escaping, and anything escaped is simply unknown (4404).
      // Copied: a slice would keep the whole URL (token included) alive with the connection.
      const sessionId = Buffer.from(match[1]!).toString();
      const token = tokenFrom(req);
      // The callback keeps only what it names: not the request, for the socket's lifetime.
      wss.handleUpgrade(req, socket, head, (ws) => {
        ws.on('error', onSocketError);
        admit(ws, token, sessionId).catch((err: unknown) => log.error({ err }, 'admit failed'));
      });
      return true;
    },
    async close() {
      closing = true;
      for (const c of connections) c.close(CloseCode.goingAway, 'server shutting down');
      // Peers get a moment to answer the close handshake; then their sockets are cut.
      const deadline = Date.now() + 2_000;
      while (connections.size > 0 && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 20));
      for (const ws of wss.clients) ws.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      while (connections.size > 0) await new Promise((r) => setTimeout(r, 5));
      await Promise.allSettled([...departures]);
    },
  };
}

/**
 * The subprotocol the server answers with. Never a `bearer.<token>` entry: the selected one is
 * echoed in the response header, where proxies and browser tools log it. A client that carries
 * its token as a subprotocol must also offer `constat.v1` (a browser fails the handshake when
 * the server selects none of the offered protocols).
 */
export function selectSubprotocol(protocols: Set<string>): string | false {
  if (protocols.has(SYNC_SUBPROTOCOL)) return SYNC_SUBPROTOCOL;
  for (const p of protocols) if (!p.startsWith(BEARER_PROTOCOL)) return p;
  return false;
}

function tokenFrom(req: IncomingMessage): string | undefined {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const fromQuery = url.searchParams.get('token');
  if (fromQuery) return fromQuery;
  const header = req.headers['sec-websocket-protocol'];
  if (!header) return undefined;
  for (const p of header.split(',')) {
    const value = p.trim();
    if (value.startsWith(BEARER_PROTOCOL)) return value.slice(BEARER_PROTOCOL.length);
  }
  return undefined;
}
