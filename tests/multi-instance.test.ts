/**
 * Several `constat serve` processes sharing one PostgreSQL and one Redis: devices of one
 * session on different instances, an instance killed mid-session, Redis flushed mid-session.
 * The cluster has its own Redis key prefix; "flushed" deletes exactly those keys.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import * as Y from 'yjs';
import { openPair, type ServerProcess } from './support/server.js';
import { connectDevice, waitFor, type Device } from './support/device.js';
import { startCluster, type Cluster } from './support/cluster.js';
import { materialise } from '../constat/constat-doc.js';
import { typeText, writeSection } from '../client/writer.js';
import { canonicalJson } from '../constat/canonical-json.js';
import { completeAccident, completeVehicle } from './fixtures/constat.js';
import { setUp } from './support/suite.js';

interface Ctx {
  cluster: Cluster;
  devices: Device[];
}

const test = suite<Ctx>('multi-instance', { devices: [] } as unknown as Ctx);

setUp(test, async (ctx) => {
  ctx.cluster = await startCluster('multi', {
    env: { COMPACTION_INTERVAL_MS: '200', HUB_MIN_MESSAGE_LIFETIME_MS: '500' },
  });
});
test.after.each(async (ctx) => {
  for (const d of ctx.devices.splice(0)) d.destroy();
  await ctx.cluster.killAll();
});
test.after(async (ctx) => {
  await ctx.cluster?.stop();
});

const instances = (ctx: Ctx, n: number): Promise<ServerProcess[]> => ctx.cluster.start(n);

const content = (d: Device | Y.Doc) => canonicalJson(materialise(d instanceof Y.Doc ? d : d.doc));

function device(
  ctx: Ctx,
  server: ServerProcess,
  sessionId: string,
  token: string,
  doc?: Y.Doc,
): Device {
  const d = connectDevice(server.wsUrl, sessionId, token, doc ? { doc } : {});
  ctx.devices.push(d);
  return d;
}

/** What a brand-new device reads from `server`: the server's own copy. */
async function serverCopy(
  ctx: Ctx,
  server: ServerProcess,
  sessionId: string,
  token: string,
): Promise<string> {
  const probe = device(ctx, server, sessionId, token);
  await probe.synced();
  await new Promise((r) => setTimeout(r, 100));
  const text = content(probe);
  probe.destroy();
  return text;
}

test('devices on two instances converge; awareness crosses instances', async (ctx) => {
  const [one, two] = await instances(ctx, 2);
  const pair = await openPair(one!.url);
  const a = device(ctx, one!, pair.sessionId, pair.tokenA);
  const b = device(ctx, two!, pair.sessionId, pair.tokenB);
  await Promise.all([a.synced(), b.synced()]);
  writeSection(a.doc, 'vehicleA', completeVehicle('A'));
  writeSection(b.doc, 'vehicleB', completeVehicle('B'));
  typeText(a.doc, 'accident', ['place', 'address'], 'Boulevard ');
  typeText(b.doc, 'accident', ['place', 'address'], 'Zighoud Youcef');
  const elements = (d: Device) => d.doc.getMap('sketch').get('elements') as Y.Map<unknown>;
  elements(a).set('road-1', new Y.Map(Object.entries({ kind: 'road', x: 0, y: 0 })));
  elements(b).set(
    'car-b',
    new Y.Map(Object.entries({ kind: 'vehicle', vehicle: 'B', x: 5, y: 5 })),
  );
  await waitFor(
    () => content(a) === content(b),
    10_000,
    'devices on two instances did not converge',
  );
  const address = (materialise(a.doc).accident.place as { address: string }).address;
  assert.ok(address.includes('Boulevard') && address.includes('Zighoud Youcef'), address);
  assert.ok((materialise(b.doc).sketch.elements as Record<string, unknown>)['road-1']);

  a.provider.awareness.setLocalStateField('user', { name: 'Samia' });
  await waitFor(
    () =>
      (
        b.provider.awareness.getStates().get(a.doc.clientID) as
          { user?: { name?: string } } | undefined
      )?.user?.name === 'Samia',
    5_000,
    'awareness did not cross instances',
  );
});

test('an instance killed mid-session: its device moves to the other instance, nothing acknowledged is lost', async (ctx) => {
  const [one, two] = await instances(ctx, 2);
  const pair = await openPair(two!.url);
  const a = device(ctx, one!, pair.sessionId, pair.tokenA);
  const b = device(ctx, two!, pair.sessionId, pair.tokenB);
  await Promise.all([a.synced(), b.synced()]);
  writeSection(a.doc, 'accident', completeAccident());
  writeSection(a.doc, 'vehicleA', completeVehicle('A'));
  writeSection(b.doc, 'vehicleB', completeVehicle('B'));
  await waitFor(() => content(a) === content(b), 10_000, 'no convergence before the kill');
  // These reached instance two through Redis: acknowledged.
  const acknowledged = content(b);

  await one!.kill('SIGKILL');
  // A keeps typing while its instance is gone, then the load balancer sends it to instance two.
  typeText(a.doc, 'vehicleA', ['remarks'], ' — typed during the outage');
  a.provider.destroy();
  const moved = device(ctx, two!, pair.sessionId, pair.tokenA, a.doc);
  await moved.synced();
  await waitFor(
    () => content(moved) === content(b),
    10_000,
    'devices did not converge after the move',
  );
  const copy = await serverCopy(ctx, two!, pair.sessionId, pair.tokenB);
  assert.equal(copy, content(moved));
  assert.ok(
    ((materialise(b.doc).vehicleA as { remarks: string }).remarks ?? '').endsWith(
      'typed during the outage',
    ),
  );
  // Everything acknowledged before the kill is contained in what the server holds now.
  const before = JSON.parse(acknowledged) as Record<string, unknown>;
  const after = JSON.parse(copy) as Record<string, unknown>;
  assert.equal(after.vehicleB, before.vehicleB);
  assert.equal(after.accident, before.accident);
});

test('Redis flushed mid-session: rebuilt from PostgreSQL and the live copies; devices converge', async (ctx) => {
  const [one, two] = await instances(ctx, 2);
  const pair = await openPair(one!.url);
  const a = device(ctx, one!, pair.sessionId, pair.tokenA);
  const b = device(ctx, two!, pair.sessionId, pair.tokenB);
  await Promise.all([a.synced(), b.synced()]);
  writeSection(a.doc, 'vehicleA', completeVehicle('A'));
  writeSection(b.doc, 'vehicleB', completeVehicle('B'));
  await waitFor(() => content(a) === content(b), 10_000);
  // Let the compactor merge this into the draft.
  await waitFor(() => false, 1_000).catch(() => {});
  writeSection(a.doc, 'accident', completeAccident());
  await waitFor(() => content(a) === content(b), 10_000);

  await ctx.cluster.flushRedis();

  typeText(a.doc, 'vehicleA', ['remarks'], 'after the flush A');
  typeText(b.doc, 'vehicleB', ['remarks'], 'after the flush B');
  await waitFor(
    () => content(a) === content(b),
    10_000,
    'devices did not converge after the flush',
  );

  // Every device leaves; both instances stop; a new instance serves the session from storage.
  const expected = content(a);
  for (const d of ctx.devices.splice(0)) d.destroy();
  await ctx.cluster.killAll('SIGTERM');
  const [three] = await instances(ctx, 1);
  const copy = await serverCopy(ctx, three!, pair.sessionId, pair.tokenA);
  assert.equal(copy, expected);
});

test.run();
