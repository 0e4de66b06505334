/**
 * The setting of the reference app's browser suites: a real server in development mode (the
 * app signs in with development tokens), two phones in one browser, and A reaching the server
 * through a TCP gate so a test can take A's network away (tests/support/tcp-gate.ts).
 */
import type { Page } from 'puppeteer-core';
import { startTestServer, type TestServer } from './server.js';
import { tcpGate, type TcpGate } from './tcp-gate.js';
import { launchBrowser, type Engine, type LaunchOptions, type TestBrowser } from './browser.js';

export interface TwoPhones {
  server: TestServer;
  gate: TcpGate;
  /** Where A reaches the server: through the gate. B uses `server.url`. */
  aUrl: string;
  browser: TestBrowser;
  a: Page;
  b: Page;
  close(): Promise<void>;
}

export async function twoPhones(
  engine: Engine = 'chromium',
  options: LaunchOptions = {},
): Promise<TwoPhones> {
  // CONSTAT_DEV with the built-in secret: POST /v1/dev/token answers loopback clients.
  const server = await startTestServer({ env: { AUTH_JWT_SECRET: '', CONSTAT_DEV: '1' } });
  let gate: TcpGate | undefined;
  let browser: TestBrowser | undefined;
  const close = async () => {
    await browser?.close();
    await gate?.close();
    await server.stop();
  };
  try {
    gate = await tcpGate({ host: '127.0.0.1', port: Number(new URL(server.url).port) });
    browser = await launchBrowser(engine, options);
    const a = await browser.phone();
    const b = await browser.phone();
    return { server, gate, aUrl: `http://127.0.0.1:${gate.port}`, browser, a, b, close };
  } catch (err) {
    await close();
    throw err;
  }
}
