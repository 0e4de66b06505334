/**
 * A process's HTTP listener and its stop on SIGINT/SIGTERM, for every process the `constat`
 * command runs (the server, the AI service).
 */
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { serve } from '@hono/node-server';
import type { Logger } from 'pino';

export interface Listener {
  server: Server;
  port: number;
  /** http://host:port, with 127.0.0.1 for a wildcard host. */
  url: string;
  /** Stops accepting and drops open connections. */
  close(): Promise<void>;
}

export async function listen(
  fetch: (request: Request) => Response | Promise<Response>,
  at: { port: number; host: string },
): Promise<Listener> {
  const server = await new Promise<Server>((resolve, reject) => {
    const s = serve({ fetch, port: at.port, hostname: at.host }, () => resolve(s as Server));
    s.once('error', reject);
  });
  const { port } = server.address() as AddressInfo;
  const host = at.host === '0.0.0.0' || at.host === '::' ? '127.0.0.1' : at.host;
  return {
    server,
    port,
    url: `http://${host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** Stops gracefully on the first SIGINT/SIGTERM, exits 1 if that takes longer than 15 s. */
export function stopOnSignals(stop: () => Promise<void>, logger: Logger): void {
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping');
    const force = setTimeout(() => process.exit(1), 15_000);
    force.unref();
    stop().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'stop failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
}
