/**
 * `npm test`: runs every tests/**\/*.test.ts file in its own process (a crash or a leaked
 * handle in one suite cannot take the others down), two at a time, against the services named
 * by the environment or the local defaults, and ends with the line `N passed, N failed`.
 * Installs the Debian packages of scripts/system-packages.ts when missing (as root).
 * Without KAFKA_BROKERS it starts the Kafka test broker (scripts/kafka/broker.ts) and stops it;
 * without S3_ENDPOINT, an S3 server for the media tests (scripts/s3proxy/s3proxy.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import net from 'node:net';
import os from 'node:os';
import { startBroker, type Broker } from './kafka/broker.js';
import { installSystemPackages } from './system-packages.js';
import { LOCAL_DATABASE_URL, LOCAL_REDIS_URL } from './local-services.js';
import { startS3Proxy, type S3Proxy } from './s3proxy/s3proxy.js';
import { writePgliteTemplate } from '../persistence/database.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
// Preloaded into each test file: ends the file's process group if this runner dies.
const GUARD = './scripts/test-file-guard.mjs';
const DEFAULTS = { DATABASE_URL: LOCAL_DATABASE_URL, REDIS_URL: LOCAL_REDIS_URL };
// Files run at once (TEST_PARALLEL overrides it).
const PARALLEL = Math.max(1, Number(process.env.TEST_PARALLEL) || 2);

interface FileResult {
  file: string;
  passed: number;
  failed: number;
  skipped: number;
  ms: number;
  output: string;
}

export async function runTests(argv: string[]): Promise<void> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    DATABASE_URL: process.env.DATABASE_URL || DEFAULTS.DATABASE_URL,
    REDIS_URL: process.env.REDIS_URL || DEFAULTS.REDIS_URL,
    NO_COLOR: '1',
    LOG_LEVEL: process.env.LOG_LEVEL || 'silent',
  };
  await requireService('PostgreSQL', env.DATABASE_URL!, 5432);
  await requireService('Redis', env.REDIS_URL!, 6379);
  // Chromium, fonts and poppler: the report and the browser tests need them; what cannot be
  // installed is named here, and the suites that need it fail rather than skip.
  installSystemPackages((line) => process.stdout.write(`${line}\n`));
  // Kafka: the one named by the environment, or a real broker started (and stopped) here.
  let broker: Broker | undefined;
  if (!env.KAFKA_BROKERS) {
    const started = performance.now();
    try {
      broker = await startBroker({ log: (line) => process.stdout.write(`${line}\n`) });
    } catch (err) {
      process.stderr.write(
        `constat test: could not start the Kafka test broker: ${(err as Error).message}\n`,
      );
      process.stdout.write('0 passed, 1 failed\n');
      process.exit(1);
    }
    env.KAFKA_BROKERS = broker.brokers;
    process.stdout.write(
      `Kafka test broker on ${broker.brokers} (${((performance.now() - started) / 1000).toFixed(1)} s)\n`,
    );
  }
  let s3: S3Proxy | undefined;
  // Interrupted: the running test files and whatever they started go first, then what this
  // runner started. (Each file runs in a process group of its own, so a terminal's Ctrl-C no
  // longer reaches it directly; this handler is what stops it.)
  const interrupted = (signal: NodeJS.Signals) => {
    for (const child of running) killGroup(child);
    void Promise.allSettled([broker?.stop(), s3?.stop()]).finally(() =>
      process.exit(128 + os.constants.signals[signal]),
    );
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  if (!env.S3_ENDPOINT) {
    const started = performance.now();
    try {
      s3 = await startS3Proxy({ log: (line) => process.stdout.write(`${line}\n`) });
    } catch (err) {
      await broker?.stop();
      process.stderr.write(`constat test: could not start S3Proxy: ${(err as Error).message}\n`);
      process.stdout.write('0 passed, 1 failed\n');
      process.exit(1);
    }
    Object.assign(env, {
      S3_ENDPOINT: s3.endpoint,
      S3_REGION: s3.region,
      S3_ACCESS_KEY_ID: s3.accessKeyId,
      S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
    });
    process.stdout.write(
      `S3 test server on ${s3.endpoint} (${((performance.now() - started) / 1000).toFixed(1)} s)\n`,
    );
  }
  try {
    // Only a speed-up: without it the embedded servers run initdb.
    env.PGLITE_TEMPLATE ||= await pgliteTemplate().catch((err: unknown) => {
      process.stderr.write(`constat test: no PGlite template: ${(err as Error).message}\n`);
      return '';
    });
    await runFiles(argv, env);
  } finally {
    await Promise.all([broker?.stop(), s3?.stop()]);
  }
}

async function runFiles(argv: string[], env: NodeJS.ProcessEnv): Promise<void> {
  const files =
    argv.length > 0 ? argv.map((f) => path.resolve(f)) : await findTests(path.join(ROOT, 'tests'));
  const results: FileResult[] = [];
  const queue = [...files];
  const started = performance.now();
  const cpuBefore = cpuTimes();
  const worker = async () => {
    for (let file = queue.shift(); file; file = queue.shift()) {
      const result = await runFile(file, env);
      results.push(result);
      const status = result.failed > 0 ? 'FAIL' : 'ok  ';
      process.stdout.write(
        `${status} ${path.relative(ROOT, file)}  ${result.passed} passed, ${result.failed} failed` +
          `${result.skipped ? `, ${result.skipped} skipped` : ''}  (${(result.ms / 1000).toFixed(1)} s)  [${results.length}/${files.length}]\n`,
      );
      if (result.failed > 0) process.stdout.write(indent(result.output) + '\n');
    }
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL, files.length) }, worker));

  const total = results.reduce(
    (t, r) => ({
      passed: t.passed + r.passed,
      failed: t.failed + r.failed,
      skipped: t.skipped + r.skipped,
    }),
    { passed: 0, failed: 0, skipped: 0 },
  );
  const cpuAfter = cpuTimes();
  const busy = (cpuAfter.busy - cpuBefore.busy) / (cpuAfter.total - cpuBefore.total || 1);
  process.stdout.write(
    `\n${files.length} files in ${((performance.now() - started) / 1000).toFixed(1)} s, ` +
      `${PARALLEL} at a time; the machine's ${os.cpus().length} cores were ${(busy * 100).toFixed(0)} % busy\n`,
  );
  process.stdout.write(
    `${total.passed} passed, ${total.failed} failed${total.skipped ? `, ${total.skipped} skipped` : ''}\n`,
  );
  process.exitCode = total.failed > 0 || total.skipped > 0 ? 1 : 0;
}

/** The machine's CPU time so far, all cores (ms): busy, and in all. */
function cpuTimes(): { busy: number; total: number } {
  let busy = 0;
  let total = 0;
  for (const { times } of os.cpus()) {
    const all = times.user + times.nice + times.sys + times.idle + times.irq;
    busy += all - times.idle;
    total += all;
  }
  return { busy, total };
}

/**
 * A fresh PGlite cluster's dump, made once per PGlite version into the ignored cache: each
 * embedded test server loads it instead of running initdb (about 1.2 s of CPU instead of 3 in
 * memory, 7 on disk, for some fifty servers in a run).
 */
async function pgliteTemplate(): Promise<string> {
  const { version } = JSON.parse(
    readFileSync(path.join(ROOT, 'node_modules/@electric-sql/pglite/package.json'), 'utf8'),
  ) as { version: string };
  const file = path.join(ROOT, '.cache', 'pglite', `template-${version}.tar`);
  if (!existsSync(file)) {
    process.stdout.write(`making the PGlite template ${path.relative(ROOT, file)} (once)…\n`);
    await writePgliteTemplate(file);
  }
  return file;
}

async function findTests(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries
    .filter((e) => e.isFile() && e.name.endsWith('.test.ts'))
    .map((e) => path.join(e.parentPath, e.name))
    .sort();
}

const DEFAULT_TIME_LIMIT_MINUTES = 5;

/**
 * A file's time limit: 5 minutes, or what a `// test-run: time limit N min` line in it says
 * (for a file that runs a whole measurement, whose time grows with the machine's load).
 */
function timeLimitMinutes(file: string): number {
  const match = /^\/\/ test-run: time limit (\d+) min$/m.exec(readFileSync(file, 'utf8'));
  return match ? Number(match[1]) : DEFAULT_TIME_LIMIT_MINUTES;
}

/** The test files running now, each the leader of its own process group. */
const running = new Set<ChildProcess>();

/**
 * Ends a test file and every process it started (servers, simulators, browsers): they share
 * its process group, and a server a killed file leaves behind would hold its port, its Redis
 * keys and a core for the rest of the run.
 */
function killGroup(child: ChildProcess): void {
  try {
    process.kill(-child.pid!, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

function runFile(file: string, env: NodeJS.ProcessEnv): Promise<FileResult> {
  const started = performance.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--import', GUARD, file], {
      cwd: ROOT,
      env: { ...env, CONSTAT_TEST_RUNNER_PID: String(process.pid) },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    running.add(child);
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    // A suite that hangs is a failure, not a stuck CI run.
    const timer = setTimeout(() => killGroup(child), timeLimitMinutes(file) * 60_000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      running.delete(child);
      // What the file started and left running (a server it did not stop) ends with it.
      killGroup(child);
      const clean = output.replace(/\x1b\[[0-9;]*m/g, '');
      const total = count(clean, 'Total');
      const passed = count(clean, 'Passed');
      const skipped = count(clean, 'Skipped');
      let failed = Math.max(0, (total ?? 0) - (passed ?? 0) - (skipped ?? 0));
      // No summary, or a non-zero exit with every test "passed": the file itself failed.
      if (total === undefined || ((code !== 0 || signal) && failed === 0)) failed += 1;
      resolve({
        file,
        passed: passed ?? 0,
        failed,
        skipped: skipped ?? 0,
        ms: performance.now() - started,
        output: clean + (signal ? `\n(killed by ${signal})` : code ? `\n(exit code ${code})` : ''),
      });
    });
  });
}

function count(output: string, label: string): number | undefined {
  const matches = [...output.matchAll(new RegExp(`^\\s*${label}:\\s+(\\d+)`, 'gm'))];
  return matches.length ? matches.reduce((n, m) => n + Number(m[1]), 0) : undefined;
}

function indent(text: string): string {
  return text
    .trimEnd()
    .split('\n')
    .map((l) => `    ${l}`)
    .join('\n');
}

async function requireService(name: string, url: string, defaultPort: number): Promise<void> {
  const { hostname, port } = new URL(url);
  const reachable = await new Promise<boolean>((resolve) => {
    const socket = net.connect({
      host: hostname || '127.0.0.1',
      port: Number(port || defaultPort),
    });
    socket.setTimeout(3_000);
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('timeout', () => (socket.destroy(), resolve(false)));
    socket.once('error', () => resolve(false));
  });
  if (!reachable) {
    process.stderr.write(
      `constat test: ${name} is not reachable at ${hostname}:${port || defaultPort}; start it or point the environment at one\n`,
    );
    process.stdout.write('0 passed, 1 failed\n');
    process.exit(1);
  }
}
