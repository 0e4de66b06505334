/** The server process: configuration from the environment, graceful stop on SIGINT/SIGTERM. */
import { loadConfig } from './config.js';
import { createLogger } from './logger.js';
import { startServer } from './constat-server.js';

export async function main(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger(config.logLevel);
  const server = await startServer(config, logger);
  process.stderr.write(
    `constat listening on ${server.url}  (GraphQL ${server.url}/graphql · sync ${server.url.replace(/^http/, 'ws')}/v1/sync/<sessionId>)\n`,
  );
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping');
    const force = setTimeout(() => process.exit(1), 15_000);
    force.unref();
    server.stop().then(
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
