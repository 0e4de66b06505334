/**
 * The reference server for the benchmarks: `@y/websocket-server` (the yjs 13 line) as its own
 * bin runs it, in memory, but bound to 127.0.0.1 and on the port the harness gives (PORT).
 * Prints `listening on <port>` when ready. Its event loop is measured by the probe the
 * harness preloads (../loop-probe.mjs), as every server's is.
 */
import http from 'node:http';
import { WebSocketServer } from 'ws';
import { setupWSConnection } from '@y/websocket-server/utils';

const port = Number(process.env.PORT ?? 0);
const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
const server = http.createServer((_req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain' });
  res.end('okay');
});
wss.on('connection', (ws, req) => setupWSConnection(ws, req));
server.on('upgrade', (req, socket, head) => {
  wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
});
server.listen(port, '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(`listening on ${typeof address === 'object' ? address?.port : address}\n`);
});
const stop = () => {
  for (const client of wss.clients) client.terminate();
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 2_000).unref();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
