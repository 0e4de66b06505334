/**
 * Servers for the simulator and the benchmarks, on 127.0.0.1 only:
 * - `startEmbeddedServer`: one instance in this process in development mode, on the embedded
 *   defaults (PGlite in a temporary folder, in-process hub), or on whatever `env` names;
 * - `spawnServer`: a real `constat serve` process (its memory and CPU are its own, which is
 *   what the benchmarks measure), stopped with SIGTERM.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { freePort } from '../free-port.js';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { loadConfig } from '../../server/config.js';
import { startServer } from '../../server/constat-server.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface EmbeddedServer {
  url: string;
  stop(): Promise<void>;
}

/**
 * Starts one instance in this process. Without `env.DATABASE_URL` it runs on PGlite in a
 * temporary folder (removed by `stop`), without `env.REDIS_URL` on the in-process hub.
 */
export async function startEmbeddedServer(
  env: Record<string, string | undefined> = {},
): Promise<EmbeddedServer> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'constat-sim-'));
  const config = loadConfig({
    LOG_LEVEL: process.env.LOG_LEVEL || 'error',
    // On loopback only, so the built-in development secret may serve when no key is given.
    CONSTAT_DEV: '1',
    ...(process.env.PGLITE_TEMPLATE ? { PGLITE_TEMPLATE: process.env.PGLITE_TEMPLATE } : {}),
    ...env,
    PORT: '0',
    HOST: '127.0.0.1',
    DATA_DIR: dataDir,
  });
  const logger = pino({ level: config.logLevel }, pino.destination(2));
  try {
    const server = await startServer(config, logger);
    return {
      url: server.url,
      async stop() {
        await server.stop();
        await rm(dataDir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await rm(dataDir, { recursive: true, force: true });
    throw err;
  }
}

export interface ServerProcess {
  url: string;
  /** The websocket base (`ws://…/v1/sync`). */
  wsUrl: string;
  pid: number;
  child: ChildProcess;
  output(): string;
  /** SIGTERM (then SIGKILL after 15 s), resolved once the process exited. */
  stop(): Promise<void>;
  /** Sends one signal (SIGKILL to simulate a crash), resolved once the process exited. */
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/**
 * Runs a server process and waits until it prints `ready` on stdout or stderr. `command`
 * defaults to `constat serve`; `env` is added to this process's environment.
 */
export async function spawnServer(opts: {
  env: Record<string, string>;
  args?: string[];
  ready?: string;
  name?: string;
  startTimeoutMs?: number;
}): Promise<ServerProcess> {
  const port = opts.env.PORT ? Number(opts.env.PORT) : await freePort();
  const args = opts.args ?? ['bin/constat.js', 'serve'];
  const ready = opts.ready ?? 'constat listening on';
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...process.env, HOST: '127.0.0.1', LOG_LEVEL: 'warn', ...opts.env, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const keep = (d: Buffer) => {
    output += d.toString();
    if (output.length > 200_000) output = output.slice(-100_000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${opts.name ?? 'server'} did not start:\n${output}`));
    }, opts.startTimeoutMs ?? 60_000);
    const onData = () => {
      if (output.includes(ready)) {
        clearTimeout(timer);
        child.stdout!.off('data', onData);
        child.stderr!.off('data', onData);
        resolve();
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${opts.name ?? 'server'} exited with ${code}:\n${output}`));
    });
  });
  const running = () => child.exitCode === null && child.signalCode === null;
  // A helper the server started (tsx's esbuild service) may hold the other end of these pipes
  // for a while after the server exited; they must not keep this process alive.
  const release = () => {
    child.stdout?.destroy();
    child.stderr?.destroy();
  };
  return {
    url: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}/v1/sync`,
    pid: child.pid!,
    child,
    output: () => output,
    async stop() {
      if (running()) {
        child.kill('SIGTERM');
        const force = setTimeout(() => child.kill('SIGKILL'), 15_000);
        await exited;
        clearTimeout(force);
      }
      release();
    },
    async kill(signal = 'SIGTERM') {
      if (running()) child.kill(signal);
      await exited;
      release();
    },
  };
}
