/**
 * Two stock y-websocket clients co-editing one constat through the server: convergence,
 * awareness, offline edits, forbidden writes. Runs on real PostgreSQL + Redis and on the
 * embedded defaults (PGlite, in-process sessions).
 */
import * as assert from 'uvu/assert';
import * as Y from 'yjs';
import { openPair, type TestServer } from './support/server.js';
import { SERVER_VARIANTS, serverSuite } from './support/suite.js';
import { connectDevice, waitFor, type Device, connectBoth } from './support/device.js';
import { materialise } from '../constat/constat-doc.js';
import { typeText, writeSection } from '../client/writer.js';
import { canonicalJson } from '../constat/canonical-json.js';
import { completeAccident, completeVehicle } from './fixtures/constat.js';

for (const variant of SERVER_VARIANTS) {
  serverSuite(`sync (${variant.name})`, variant.options, (test) => {
    const pairOfDevices = async (ctx: { server: TestServer; devices: Device[] }) => {
      const pair = await openPair(ctx.server.url);
      const { a, b } = await connectBoth(ctx.server, pair, ctx.devices);
      return { pair, a, b };
    };

    const converged = (a: Device, b: Device) =>
      canonicalJson(materialise(a.doc)) === canonicalJson(materialise(b.doc));

    test('two clients converge after concurrent edits to the same fields and the sketch', async (ctx) => {
      const { a, b } = await pairOfDevices(ctx);
      // Both type into the same shared field at once, and both draw on the sketch.
      writeSection(a.doc, 'vehicleA', completeVehicle('A'));
      writeSection(b.doc, 'vehicleB', completeVehicle('B'));
      typeText(a.doc, 'accident', ['place', 'address'], 'Rue Didouche ');
      typeText(b.doc, 'accident', ['place', 'address'], 'Mourad, Alger');
      a.doc.transact(() => {
        const elements =
          a.doc.getMap('sketch').get('elements') ??
          a.doc.getMap('sketch').set('elements', new Y.Map());
        (elements as Y.Map<unknown>).set(
          'car-a',
          new Y.Map(Object.entries({ kind: 'vehicle', vehicle: 'A', x: 1, y: 2 })),
        );
      });
      b.doc.transact(() => {
        const elements =
          b.doc.getMap('sketch').get('elements') ??
          b.doc.getMap('sketch').set('elements', new Y.Map());
        (elements as Y.Map<unknown>).set(
          'car-b',
          new Y.Map(Object.entries({ kind: 'vehicle', vehicle: 'B', x: 3, y: 4 })),
        );
      });
      await waitFor(() => converged(a, b), 10_000, 'documents did not converge');
      const content = materialise(a.doc);
      const address = (content.accident.place as { address: string }).address;
      assert.ok(address.includes('Rue Didouche') && address.includes('Mourad, Alger'), address);
      assert.equal(
        (content.vehicleA.vehicle as { plate: string }).plate,
        (completeVehicle('A').vehicle as { plate: string }).plate,
      );
      assert.equal(
        (content.vehicleB.vehicle as { plate: string }).plate,
        (completeVehicle('B').vehicle as { plate: string }).plate,
      );
      const elements = content.sketch.elements as Record<string, unknown>;
      assert.ok(elements['car-a'] && elements['car-b'], 'both sketch elements present');
    });

    test('awareness reaches the other device and is cleared when it leaves', async (ctx) => {
      const { a, b } = await pairOfDevices(ctx);
      a.provider.awareness.setLocalStateField('user', { name: 'Amine', field: 'vehicleA.driver' });
      await waitFor(
        () =>
          (
            b.provider.awareness.getStates().get(a.doc.clientID) as
              { user?: { name: string } } | undefined
          )?.user?.name === 'Amine',
        5_000,
        'awareness did not reach B',
      );
      a.destroy();
      await waitFor(
        () => !b.provider.awareness.getStates().has(a.doc.clientID),
        5_000,
        'awareness of A not cleared',
      );
    });

    test('edits made while disconnected merge on reconnect', async (ctx) => {
      const { a, b } = await pairOfDevices(ctx);
      writeSection(a.doc, 'accident', completeAccident());
      await waitFor(() => converged(a, b));
      b.provider.disconnect();
      writeSection(b.doc, 'vehicleB', completeVehicle('B', { remarks: 'typed offline' }));
      typeText(a.doc, 'accident', ['place', 'commune'], ' centre');
      b.provider.connect();
      await waitFor(() => converged(a, b), 10_000, 'offline edits did not merge');
      assert.equal((materialise(a.doc).vehicleB as { remarks: string }).remarks, 'typed offline');
    });

    test('a write into the other party section is rejected, never reaches the other device', async (ctx) => {
      const { a, b } = await pairOfDevices(ctx);
      writeSection(b.doc, 'vehicleA', { remarks: 'B writing into A' });
      await waitFor(() => b.closes.length > 0, 5_000, 'B was not closed');
      assert.equal(b.closes[0]!.code, 4403);
      const rejected = b.events.find((e) => e.type === 'rejected-update');
      assert.ok(rejected, 'B got a rejected-update event');
      // A keeps working and never sees the forbidden write.
      writeSection(a.doc, 'vehicleA', { remarks: 'mine' });
      const probe = connectDevice(
        ctx.server.wsUrl,
        await Promise.resolve(a.provider.roomname),
        (a.provider.params as { token: string }).token,
      );
      ctx.devices.push(probe);
      await waitFor(
        () => (materialise(probe.doc).vehicleA as { remarks?: string }).remarks === 'mine',
        5_000,
        'probe never saw A’s write',
      );
      assert.equal((materialise(a.doc).vehicleA as { remarks?: string }).remarks, 'mine');
      assert.equal((materialise(probe.doc).vehicleA as { remarks?: string }).remarks, 'mine');
    });
  });
}
