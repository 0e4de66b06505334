/**
 * A load balancer in front of several instances of one deployment, as a phone meets them in
 * production: one front door per instance, which sends its requests to that instance while
 * it is up and to another one while it is drained or refuses connections. The soak restarts
 * an instance behind it; phones keep the URLs they were given (the server builds `syncUrl`
 * from the Host header, which passes through unchanged), their websockets reconnect through
 * the same front door, and a request never meets a closed port.
 *
 * HTTP requests are forwarded one by one on fresh connections (no keep-alive to an instance,
 * so none is reused after the instance closed it); a request whose instance refuses the
 * connection is sent to the next one. A websocket upgrade is forwarded as its raw bytes, then
 * the two sockets are piped.
 */
import http from 'node:http';
import net from 'node:net';

export interface Balancer {
  /** One front door per instance, in the order of the instances. */
  urls: string[];
  /** Sends no new request or connection to instance `i` (before it is stopped). */
  drain(i: number): void;
  /** Instance `i` takes its share again. */
  restore(i: number): void;
  /** Connections that a front door sent to an instance other than its own. */
  failovers(): number;
  close(): Promise<void>;
}

/** How long a request waits for some instance to accept it before it is answered 502. */
const NO_INSTANCE_TIMEOUT_MS = 30_000;

export async function startBalancer(ports: number[]): Promise<Balancer> {
  const drained = new Set<number>();
  const sockets = new Set<net.Socket>();
  let failovers = 0;
  /** Instance indexes to try for front door `door`: its own first, drained ones never. */
  const order = (door: number) =>
    [door, ...ports.keys()].filter((i, k, all) => all.indexOf(i) === k && !drained.has(i));

  /** A connection to the first instance that accepts one, retried until the deadline. */
  const connect = async (door: number): Promise<net.Socket> => {
    const deadline = Date.now() + NO_INSTANCE_TIMEOUT_MS;
    for (;;) {
      for (const i of order(door)) {
        const socket = await new Promise<net.Socket | undefined>((resolve) => {
          const s = net.connect(ports[i]!, '127.0.0.1');
          s.once('connect', () => resolve(s));
          s.once('error', () => (s.destroy(), resolve(undefined)));
        });
        if (socket) {
          if (i !== door) failovers++;
          return socket;
        }
      }
      if (Date.now() > deadline) throw new Error('no instance accepts connections');
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  const track = (s: net.Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  };

  const doors = ports.map((_, door) => {
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        void connect(door).then(
          (socket) => {
            track(socket);
            const upstream = http.request(
              {
                createConnection: () => socket,
                method: req.method,
                path: req.url,
                headers: { ...req.headers, connection: 'close' },
              },
              (answer) => {
                // Between the phone and the front door the connection may stay open.
                const { connection: _c, 'keep-alive': _k, ...headers } = answer.headers;
                res.writeHead(answer.statusCode ?? 502, headers);
                answer.pipe(res);
              },
            );
            upstream.on('error', () => {
              if (!res.headersSent) res.writeHead(502);
              res.end();
            });
            upstream.end(Buffer.concat(chunks));
          },
          () => {
            res.writeHead(502);
            res.end();
          },
        );
      });
    });
    server.on('upgrade', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
      track(client);
      client.on('error', () => client.destroy());
      void connect(door).then(
        (socket) => {
          track(socket);
          let raw = `${req.method} ${req.url} HTTP/${req.httpVersion}\r\n`;
          for (let k = 0; k < req.rawHeaders.length; k += 2) {
            raw += `${req.rawHeaders[k]}: ${req.rawHeaders[k + 1]}\r\n`;
          }
          socket.write(raw + '\r\n');
          if (head.length > 0) socket.write(head);
          socket.on('error', () => socket.destroy());
          socket.pipe(client).on('close', () => socket.destroy());
          client.pipe(socket).on('close', () => client.destroy());
          socket.once('close', () => client.destroy());
          client.once('close', () => socket.destroy());
        },
        () => client.destroy(),
      );
    });
    server.on('connection', track);
    return server;
  });
  const listening = await Promise.all(
    doors.map(
      (server) =>
        new Promise<number>((resolve, reject) => {
          server.once('error', reject);
          server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port));
        }),
    ),
  );
  return {
    urls: listening.map((port) => `http://127.0.0.1:${port}`),
    drain: (i) => drained.add(i),
    restore: (i) => drained.delete(i),
    failovers: () => failovers,
    async close() {
      for (const s of sockets) s.destroy();
      await Promise.all(doors.map((server) => new Promise((r) => server.close(r))));
    },
  };
}
