/**
 * Hocuspocus (3.x, the newest line that runs on Node 20) with its Redis extension, as the
 * benchmarks run it: several of these share one Redis under one prefix (REDIS_PREFIX), and a
 * document's clients may be on different instances. No persistence extension: documents live
 * in memory, as with the reference server. Bound to 127.0.0.1 (Hocuspocus's own `listen`
 * would bind every interface). Prints `listening on <port>` when ready.
 */
import { Server } from '@hocuspocus/server';
import { Redis } from '@hocuspocus/extension-redis';
import { redisUrl } from '../../local-services.js';

const port = Number(process.env.PORT ?? 0);
const redis = new URL(redisUrl());
const server = new Server({
  quiet: true,
  stopOnSignals: false,
  extensions: [
    new Redis({
      host: redis.hostname,
      port: Number(redis.port || 6379),
      prefix: process.env.REDIS_PREFIX ?? 'hocuspocus-bench',
    }),
  ],
});
server.httpServer.listen(port, '127.0.0.1', () => {
  const address = server.httpServer.address();
  process.stdout.write(`listening on ${typeof address === 'object' ? address?.port : address}\n`);
});
const stop = () => {
  void server.destroy().finally(() => process.exit(0));
  setTimeout(() => process.exit(0), 3_000).unref();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
