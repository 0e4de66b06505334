/**
 * A TCP relay in front of a real service that a test can shut and open again: shut, it
 * refuses new connections and cuts the open ones, as an unreachable service would look.
 */
import net from 'node:net';

export interface TcpGate {
  /** host:port clients use instead of the service's own. */
  port: number;
  shut(): void;
  open(): void;
  close(): Promise<void>;
}

export async function tcpGate(target: { host: string; port: number }): Promise<TcpGate> {
  let shut = false;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    if (shut) {
      client.destroy();
      return;
    }
    const upstream = net.connect(target.port, target.host);
    sockets.add(client).add(upstream);
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    shut() {
      shut = true;
      for (const s of sockets) s.destroy();
      sockets.clear();
    },
    open() {
      shut = false;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
