/** The server process: configuration from the environment, graceful stop on SIGINT/SIGTERM. */
import { loadConfig } from './config.js';
import { createLogger } from './logger.js';
import { startServer } from './constat-server.js';
import { stopOnSignals } from './http.js';

export async function main(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger(config.logLevel);
  const server = await startServer(config, logger);
  process.stderr.write(
    `constat listening on ${server.url}  (GraphQL ${server.url}/graphql · sync ${server.url.replace(/^http/, 'ws')}/v1/sync/<sessionId>)\n`,
  );
  stopOnSignals(server.stop, logger);
}
