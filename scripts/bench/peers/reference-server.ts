/**
 * The reference server for the benchmarks: `@y/websocket-server` (the yjs 13 line) as its own
 * bin runs it, in memory, but bound to 127.0.0.1 and on the port the harness gives (PORT).
 * Prints `listening on <port>` when ready. `GET /eventloop` answers the event-loop delay
 * since the previous call (p99 and max, ms), as our server's `/metrics` does.
 */
import http from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { WebSocketServer } from 'ws';
import { setupWSConnection } from '@y/websocket-server/utils';

const port = Number(process.env.PORT ?? 0);
const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
const delay = monitorEventLoopDelay({ resolution: 10 });
delay.enable();
const server = http.createServer((req, res) => {
  if (req.url === '/eventloop') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ p99Ms: delay.percentile(99) / 1e6, maxMs: delay.max / 1e6 }));
    delay.reset();
    return;
  }
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
