/**
 * `constat simulate`: many pairs of stock y-websocket phones open, co-edit, sign and finalize,
 * against an embedded server (PGlite, in-process hub) and against two instances sharing
 * PostgreSQL and Redis (A on one, B on the other), with every constat confirmed on its
 * insurers' Kafka topics when KAFKA_BROKERS is set. A --tamper run must see every forbidden
 * write and forged signature refused, and none accepted.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import * as Y from 'yjs';
import {
  runSimulation,
  type SimulateOptions,
  type SimulationSummary,
} from '../scripts/simulate.js';
import { pairScript, runAction } from '../scripts/sim/content.js';
import { seededRandom } from '../scripts/sim/random.js';
import { createSkeleton, materialise } from '../constat/constat-doc.js';
import { validateContent } from '../constat/validate-content.js';
import { COMPANIES } from '../integrations/companies.js';
import path from 'node:path';
import { startTestServer, TEST_SECRET, type TestServer } from './support/server.js';
import { setUp } from './support/suite.js';

interface Ctx {
  servers: TestServer[];
}

const kafkaBrokers = process.env.KAFKA_BROKERS?.split(',');

const test = suite<Ctx>('simulate', { servers: [] } as unknown as Ctx);

setUp(test, async (ctx) => {
  const one = await startTestServer({
    database: 'postgres',
    hub: 'redis',
    kafka: !!kafkaBrokers,
  });
  ctx.servers.push(one);
  ctx.servers.push(
    await startTestServer({
      database: 'postgres',
      hub: 'redis',
      databaseUrl: one.databaseUrl!,
      redisPrefix: one.redisPrefix,
      kafka: !!kafkaBrokers,
      // Photos uploaded through one instance are checked by the other: one media folder.
      env: { MEDIA_DIR: path.join(one.dataDir, 'media') },
    }),
  );
});
test.after(async (ctx) => {
  // The second instance shares the first one's database: stop it first.
  for (const s of ctx.servers.reverse()) await s.stop();
});

const options = (overrides: Partial<SimulateOptions>): SimulateOptions => ({
  pairs: 20,
  concurrency: 10,
  urls: [],
  offline: false,
  tamper: false,
  seed: 'simulate-test',
  updatesPerSecond: 60,
  secret: TEST_SECRET,
  ...overrides,
});

function assertClean(summary: SimulationSummary, pairs: number): void {
  assert.equal(summary.failures, {}, `failures: ${JSON.stringify(summary.failures)}`);
  assert.is(summary.finalized, pairs);
  assert.is(summary.failed, 0);
  // How many edits are sent while both phones are online depends on the machine's load (a
  // busy machine's reconnections turn live edits into catch-up); each followed edit must
  // arrive as a live update.
  const { samples, followed } = summary.fanoutMs;
  assert.ok(samples > pairs * 20, `fan-out latency was measured (${samples} samples)`);
  assert.ok(
    samples >= followed * 0.9,
    `${samples} of ${followed} edits sent while both phones were online arrived live`,
  );
  assert.ok(Number.isFinite(summary.fanoutMs.p99));
  assert.ok(Number.isFinite(summary.finalizeMs.p50));
  assert.ok(summary.throughput.finalizedPerSecond > 0);
}

test('the seeded form is complete and valid, and the same seed makes the same choices', async () => {
  const insurers = COMPANIES.map((c) => c.uid);
  for (let i = 0; i < 50; i++) {
    const doc = new Y.Doc();
    createSkeleton(doc, null);
    const script = pairScript(seededRandom(`valid-${i}`), insurers);
    for (const action of [...script.A, ...script.B]) await runAction(doc, action, async () => {});
    const errors = validateContent(materialise(doc), {
      formVersion: 'dz',
      knownInsurers: new Set(insurers),
    });
    assert.equal(errors, [], `seed valid-${i}`);
  }
  const now = new Date('2025-06-01T12:00:00Z');
  const one = pairScript(seededRandom('same'), insurers, { now });
  assert.equal(pairScript(seededRandom('same'), insurers, { now }), one);
  assert.not.equal(pairScript(seededRandom('other'), insurers, { now }), one);
});

test('20 pairs finalize against the embedded server', async () => {
  // Videos (seconds of CPU each) have their own suite: tests/ai-video.test.ts.
  const summary = await runSimulation(
    options({ seed: 'embedded', embeddedEnv: { AI_VIDEO: 'false' } }),
  );
  assertClean(summary, 20);
  assert.match(summary.target[0]!, /^embedded/);
});

test('20 pairs finalize across two instances (Redis, PostgreSQL, Kafka when configured)', async (ctx) => {
  const summary = await runSimulation(
    options({
      urls: ctx.servers.map((s) => s.url),
      offline: true,
      seed: 'two-instances',
      ...(kafkaBrokers ? { kafkaBrokers } : {}),
    }),
  );
  assertClean(summary, 20);
  assert.equal(summary.offline, { dropped: 20, reconnected: 20 });
  if (kafkaBrokers) assert.ok(Number.isFinite(summary.kafkaMs!.p99), 'every constat was on Kafka');
});

test('--tamper: every forbidden write and forged signature is refused, none accepted', async (ctx) => {
  const pairs = 6;
  const summary = await runSimulation(
    options({ urls: ctx.servers.map((s) => s.url), tamper: true, pairs, seed: 'tamper' }),
  );
  assertClean(summary, pairs);
  const tamper = summary.tamper!;
  assert.is(tamper.accepted, 0);
  assert.is(tamper.refused, tamper.attempted);
  const expected: Record<string, string> = {
    'B writes into vehicle A': 'close 4403',
    'A writes into vehicle B': 'close 4403',
    'B writes a signature into the document': 'close 4403',
    'B signs with a key it never registered': 'FORBIDDEN',
    "B replays A's signature": 'FORBIDDEN',
    'B signs other content and claims the current hash': 'FORBIDDEN',
    'A signs content that is not the document': 'CONFLICT',
    'an outsider signs the session': 'FORBIDDEN',
    'B sends a malformed signature': 'BAD_USER_INPUT',
  };
  assert.equal(Object.keys(tamper.byKind).sort(), Object.keys(expected).sort());
  for (const [kind, outcome] of Object.entries(expected)) {
    assert.equal(tamper.byKind[kind]!.outcomes, { [outcome]: pairs }, kind);
  }
  assert.is(tamper.attempted, pairs * Object.keys(expected).length);
});

function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['bin/constat.js', 'simulate', ...args], {
      env: { ...process.env, AUTH_JWT_SECRET: TEST_SECRET },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

test('the command: --json summary, and --verbose narrating one pair', async (ctx) => {
  const urls = ctx.servers.flatMap((s) => ['--url', s.url]);
  const json = await cli([...urls, '--pairs', '3', '--seed', 'cli', '--json']);
  assert.is(json.code, 0, json.stderr);
  const summary = JSON.parse(json.stdout) as SimulationSummary;
  assert.is(summary.finalized, 3);
  assert.is(summary.seed, 'cli');
  assert.equal(
    summary.target,
    ctx.servers.map((s) => s.url),
  );

  const verbose = await cli([...urls, '--verbose', '--seed', 'cli']);
  assert.is(verbose.code, 0, verbose.stderr);
  for (const step of ['openSession', 'joinSession', 'registerDevice', 'types', 'signConstat']) {
    assert.ok(verbose.stdout.includes(step), `narrates ${step}`);
  }
  assert.match(verbose.stdout, /finalized, constat [0-9a-f-]{36}/);
  assert.match(verbose.stdout, /sessions finalized\s+1\/1/);
});

test.run();
