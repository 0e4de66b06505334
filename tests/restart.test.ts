/**
 * The server restarts mid-session (a real `constat serve` process, stopped with SIGTERM and
 * started again on the same storage): the draft comes back and nothing acknowledged is lost.
 * On the embedded default (PGlite data folder, in-process sessions) and on PostgreSQL + Redis.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as Y from 'yjs';
import {
  spawnServer,
  openPair,
  deleteRedisKeys,
  REDIS_URL,
  type ServerProcess,
} from './support/server.js';
import { connectDevice, waitFor, type Device, connectBoth } from './support/device.js';
import { createTestDatabase, type TestDatabase } from '../persistence/test-database.js';
import { materialise, writeSection } from '../constat/constat-doc.js';
import { canonicalJson } from '../constat/canonical-json.js';
import { completeAccident, completeVehicle } from './fixtures/constat.js';

interface Ctx {
  dataDir: string;
  db?: TestDatabase;
  prefix: string;
  servers: ServerProcess[];
  devices: Device[];
}

const test = suite<Ctx>('restart', { dataDir: '', prefix: '', servers: [], devices: [] });

test.before(async (ctx) => {
  ctx.dataDir = await mkdtemp(path.join(os.tmpdir(), 'constat-restart-'));
  ctx.prefix = `constat-test:restart-${process.pid}:`;
});

test.after.each(async (ctx) => {
  for (const d of ctx.devices.splice(0)) d.destroy();
  for (const s of ctx.servers.splice(0)) await s.kill('SIGKILL');
});

test.after(async (ctx) => {
  await ctx.db?.drop();
  await rm(ctx.dataDir, { recursive: true, force: true });
  await deleteRedisKeys(ctx.prefix);
});

const content = (d: Device) => canonicalJson(materialise(d.doc));

async function restartScenario(ctx: Ctx, env: Record<string, string>) {
  const first = await spawnServer(env);
  ctx.servers.push(first);
  const pair = await openPair(first.url);
  const { a, b } = await connectBoth(first, pair, ctx.devices);
  writeSection(a.doc, 'vehicleA', completeVehicle('A'));
  writeSection(a.doc, 'accident', completeAccident());
  writeSection(b.doc, 'vehicleB', completeVehicle('B'));
  await waitFor(
    () => content(a) === content(b),
    10_000,
    'devices did not converge before the restart',
  );
  const before = content(a);

  // Graceful stop: devices are told to go away and the draft is saved.
  await first.kill('SIGTERM');
  a.destroy();
  b.destroy();

  const second = await spawnServer({ ...env, PORT: new URL(first.url).port });
  ctx.servers.push(second);
  // A brand-new device (empty document) must receive everything from the server alone.
  const fresh = connectDevice(second.wsUrl, pair.sessionId, pair.tokenA, { doc: new Y.Doc() });
  ctx.devices.push(fresh);
  await fresh.synced();
  await waitFor(
    () => content(fresh) === before,
    10_000,
    'the restarted server did not serve the draft',
  );
  assert.equal(content(fresh), before);
}

test('embedded default: the PGlite draft comes back after a restart', async (ctx) => {
  await restartScenario(ctx, {
    DATA_DIR: ctx.dataDir,
    DATABASE_URL: '',
    REDIS_URL: '',
    DRAFT_SAVE_DEBOUNCE_MS: '60000',
  });
});

test('PostgreSQL + Redis: the draft comes back after a restart', async (ctx) => {
  ctx.db = await createTestDatabase();
  await restartScenario(ctx, {
    DATA_DIR: ctx.dataDir,
    DATABASE_URL: ctx.db.url,
    REDIS_URL,
    REDIS_KEY_PREFIX: ctx.prefix,
    DRAFT_SAVE_DEBOUNCE_MS: '60000',
  });
});

test.run();
