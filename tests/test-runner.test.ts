/**
 * The test runner (`npm test`) leaves nothing running: a test file and whatever it started end
 * when the runner is interrupted (SIGTERM), when it is killed outright (SIGKILL: the file
 * notices its runner is gone), and when the file itself ends leaving a process behind.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const FIXTURE = 'tests/fixtures/runner/holds-a-child.ts';

interface Run {
  runner: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  output: () => string;
  pidsFile: string;
}

function startRunner(env: Record<string, string> = {}): Run {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'constat-runner-'));
  const pidsFile = path.join(dir, 'pids');
  const runner = spawn(process.execPath, ['bin/constat.js', 'test-run', FIXTURE], {
    cwd: ROOT,
    env: {
      ...process.env,
      // Set, so this runner starts neither a broker nor an S3 server: the fixture needs neither.
      KAFKA_BROKERS: '127.0.0.1:9',
      S3_ENDPOINT: 'http://127.0.0.1:9',
      PGLITE_TEMPLATE: process.env.PGLITE_TEMPLATE || 'none',
      RUNNER_FIXTURE_PIDS: pidsFile,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  runner.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  runner.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    runner.once('exit', (code, signal) => resolve({ code, signal })),
  );
  void exited.then(() => setTimeout(() => rmSync(dir, { recursive: true, force: true }), 10_000));
  return { runner, exited, output: () => output, pidsFile };
}

/** The fixture's pid and its child's, once it has written them. */
async function fixturePids(run: Run): Promise<[number, number]> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (existsSync(run.pidsFile)) {
      const text = readFileSync(run.pidsFile, 'utf8').trim();
      const pids = text.split(' ').map(Number);
      if (pids.length === 2 && pids.every((p) => p > 0)) return pids as [number, number];
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`the fixture never started; runner output:\n${run.output()}`);
}

/** Alive and not a zombie (a reaper may not collect orphans at once in a container). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

async function waitGone(pids: number[], ms: number): Promise<number[]> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (!pids.some(alive)) return [];
    await new Promise((r) => setTimeout(r, 50));
  }
  const left = pids.filter(alive);
  for (const pid of left) process.kill(pid, 'SIGKILL');
  return left;
}

const test = suite('test runner');

test('SIGTERM to the runner ends the running file and what it started', async () => {
  const run = startRunner();
  const pids = await fixturePids(run);
  assert.ok(pids.every(alive));
  run.runner.kill('SIGTERM');
  const { code } = await run.exited;
  assert.is(code, 143, run.output());
  assert.equal(await waitGone(pids, 5_000), [], 'still running after the runner stopped');
});

test('a runner killed with SIGKILL: its file notices and ends with what it started', async () => {
  const run = startRunner();
  const pids = await fixturePids(run);
  run.runner.kill('SIGKILL');
  await run.exited;
  assert.equal(await waitGone(pids, 5_000), [], 'still running after the runner was killed');
});

test('a file that exits leaving a process behind: the runner ends that process', async () => {
  const run = startRunner({ RUNNER_FIXTURE_EXIT: '1' });
  const [, leftBehind] = await fixturePids(run);
  const { code } = await run.exited;
  // No uvu summary from the fixture: counted as one failed file.
  assert.is(code, 1, run.output());
  assert.match(run.output(), /0 passed, 1 failed/);
  assert.equal(await waitGone([leftBehind], 5_000), [], 'the process the file left is running');
});

test.run();
