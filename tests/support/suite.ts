/**
 * A uvu suite around one test server: started in `before`, stopped in `after`, devices and raw
 * sockets of each test closed after it; and `setUp`, which makes a failed `before` fail every
 * test of the suite.
 */
import { suite, type Test } from 'uvu';
import type WebSocket from 'ws';
import { startTestServer, type TestServer, type TestServerOptions } from './server.js';
import type { Device } from './device.js';

export interface ServerContext {
  server: TestServer;
  devices: Device[];
  sockets: WebSocket[];
}

/**
 * Runs `setup` before the suite's tests. If it fails, every test fails with its error: uvu
 * itself would swallow a throw in `before` and report the suite as passed.
 */
export function setUp<C>(test: Test<C>, setup: (ctx: C) => Promise<void>): void {
  let failure: { error: unknown } | undefined;
  test.before(async (ctx) => {
    try {
      await setup(ctx);
    } catch (error) {
      failure = { error };
    }
  });
  test.before.each(() => {
    if (failure) throw failure.error;
  });
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
  setUp(test, async (ctx) => {
    ctx.server = await startTestServer(options);
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
