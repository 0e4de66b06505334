/**
 * The server restarts mid-session (a real `constat serve` process, stopped with SIGTERM and
 * started again on the same storage): the draft comes back and nothing acknowledged is lost.
 * On the embedded default (PGlite data folder, in-process sessions) and on PostgreSQL + Redis.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import * as Y from 'yjs';
import { openPair } from './support/server.js';
import { connectDevice, waitFor, type Device, connectBoth } from './support/device.js';
import { startCluster, type Cluster } from './support/cluster.js';
import { materialise } from '../constat/constat-doc.js';
import { writeSection } from '../client/writer.js';
import { canonicalJson } from '../constat/canonical-json.js';
import { completeAccident, completeVehicle } from './fixtures/constat.js';
import { setUp } from './support/suite.js';

interface Ctx {
  cluster: Cluster;
  devices: Device[];
}

const test = suite<Ctx>('restart', { devices: [] } as unknown as Ctx);

setUp(test, async (ctx) => {
  ctx.cluster = await startCluster('restart', { env: { DRAFT_SAVE_DEBOUNCE_MS: '60000' } });
});

test.after.each(async (ctx) => {
  for (const d of ctx.devices.splice(0)) d.destroy();
  await ctx.cluster.killAll();
});

test.after(async (ctx) => {
  await ctx.cluster?.stop();
});

const content = (d: Device) => canonicalJson(materialise(d.doc));

async function restartScenario(ctx: Ctx, env: Record<string, string>) {
  const [first] = await ctx.cluster.start(1, env);
  const pair = await openPair(first!.url);
  const { a, b } = await connectBoth(first!, pair, ctx.devices);
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
  await first!.kill('SIGTERM');
  a.destroy();
  b.destroy();

  const [second] = await ctx.cluster.start(1, { ...env, PORT: new URL(first!.url).port });
  // A brand-new device (empty document) must receive everything from the server alone.
  const fresh = connectDevice(second!.wsUrl, pair.sessionId, pair.tokenA, { doc: new Y.Doc() });
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
  await restartScenario(ctx, { DATABASE_URL: '', REDIS_URL: '' });
});

test('PostgreSQL + Redis: the draft comes back after a restart', async (ctx) => {
  await restartScenario(ctx, {});
});

test.run();
