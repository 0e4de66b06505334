/**
 * A uvu suite around one test server: started in `before`, stopped in `after`, devices and raw
 * sockets of each test closed after it. A failure in `before` is rethrown by every test — uvu
 * itself would swallow it and report the suite as passed.
 */
import { suite, type Test } from 'uvu';
import type WebSocket from 'ws';
import { startTestServer, type TestServer, type TestServerOptions } from './server.js';
import type { Device } from './device.js';

export interface ServerContext {
  server: TestServer;
  devices: Device[];
  sockets: WebSocket[];
  setupError?: unknown;
}

export const SERVER_VARIANTS = [
  { name: 'postgres+redis', options: { database: 'postgres', hub: 'redis' } },
  { name: 'embedded', options: { database: 'pglite', hub: 'memory' } },
] as const satisfies ReadonlyArray<{ name: string; options: TestServerOptions }>;

export function serverSuite(
  title: string,
  options: TestServerOptions,
  register: (test: Test<ServerContext>) => void,
): void {
  const test = suite<ServerContext>(title, {
    server: undefined as unknown as TestServer,
    devices: [],
    sockets: [],
  });
  test.before(async (ctx) => {
    try {
      ctx.server = await startTestServer(options);
    } catch (err) {
      ctx.setupError = err;
    }
  });
  test.before.each((ctx) => {
    if (ctx.setupError) throw ctx.setupError;
  });
  test.after.each((ctx) => {
    for (const d of ctx.devices.splice(0)) d.destroy();
    for (const ws of ctx.sockets.splice(0)) ws.terminate();
  });
  test.after(async (ctx) => {
    await ctx.server?.stop();
  });
  register(test);
  test.run();
}
