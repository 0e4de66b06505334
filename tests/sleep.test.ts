/**
 * Idle documents sleep (DOCUMENT_SLEEP_AFTER_MS) while their devices stay connected: presence
 * keeps flowing, the next edit wakes the document with nothing lost, and signing a document
 * that slept finalizes it. On the embedded server and on PostgreSQL + Redis.
 */
import * as assert from 'uvu/assert';
import { openPair, startTestServer, type TestServer } from './support/server.js';
import { SERVER_VARIANTS, serverSuite } from './support/suite.js';
import { connectBoth, connectDevice, waitFor, type Device } from './support/device.js';
import {
  eventually,
  fillConstat,
  newDeviceKey,
  registerKey,
  signConstat,
  signHash,
} from './support/signing.js';
import { materialise } from '../constat/constat-doc.js';
import { typeText } from '../client/writer.js';
import { canonicalJson } from '../constat/canonical-json.js';
import { contentHash } from '../constat/content-hash.js';

const SLEEP_AFTER_MS = 200;

async function asleep(server: TestServer): Promise<number> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('constat_documents_asleep '));
  return Number(line?.split(' ')[1]);
}

/** Waits until the one document of the test sleeps. */
async function untilAsleep(server: TestServer, message: string): Promise<void> {
  await eventually(async () => ((await asleep(server)) === 1 ? true : undefined), 5_000, message);
}

const sameContent = (a: Device, b: Device) =>
  canonicalJson(materialise(a.doc)) === canonicalJson(materialise(b.doc));

for (const variant of SERVER_VARIANTS) {
  serverSuite(
    `sleeping documents (${variant.name})`,
    { ...variant.options, env: { DOCUMENT_SLEEP_AFTER_MS: String(SLEEP_AFTER_MS) } },
    (test) => {
      if (variant.options.hub === 'redis') {
        test('two instances: each sleeps its copy, and an edit through the hub wakes the other', async (ctx) => {
          const second = await startTestServer({
            ...variant.options,
            databaseUrl: ctx.server.databaseUrl,
            redisPrefix: ctx.server.redisPrefix,
            env: { DOCUMENT_SLEEP_AFTER_MS: String(SLEEP_AFTER_MS) },
          });
          try {
            const pair = await openPair(ctx.server.url);
            const a = connectDevice(ctx.server.wsUrl, pair.sessionId, pair.tokenA);
            const b = connectDevice(second.wsUrl, pair.sessionId, pair.tokenB);
            ctx.devices.push(a, b);
            await Promise.all([a.synced(), b.synced()]);
            await fillConstat(a, b, sameContent);
            await untilAsleep(ctx.server, 'the first instance kept its copy awake');
            await untilAsleep(second, 'the second instance kept its copy awake');
            typeText(a.doc, 'vehicleA', ['policyholder', 'lastName'], ' (A)');
            await waitFor(
              () => sameContent(a, b),
              5_000,
              'the edit did not reach B through the hub',
            );
            typeText(b.doc, 'vehicleB', ['policyholder', 'lastName'], ' (B)');
            await waitFor(
              () => sameContent(a, b),
              5_000,
              'the edit did not reach A through the hub',
            );
            const content = JSON.stringify(materialise(b.doc));
            assert.ok(content.includes(' (A)') && content.includes(' (B)'), content);
          } finally {
            await second.stopServer();
          }
        });
      }

      test('an idle document sleeps with its devices connected; presence flows, the next edit wakes it, then it signs and finalizes', async (ctx) => {
        const pair = await openPair(ctx.server.url);
        const { a, b } = await connectBoth(ctx.server, pair, ctx.devices);
        await fillConstat(a, b, sameContent);
        await untilAsleep(ctx.server, 'the document never slept');

        // Presence does not need the document.
        a.provider.awareness.setLocalStateField('user', { name: 'Amine' });
        await waitFor(
          () =>
            (b.provider.awareness.getStates().get(a.doc.clientID) as { user?: { name: string } })
              ?.user?.name === 'Amine',
          5_000,
          'awareness did not reach B while the document slept',
        );
        assert.is(await asleep(ctx.server), 1, 'presence did not wake the document');

        // A phone reconnecting syncs from the sleeping state, without waking it.
        const again = connectDevice(ctx.server.wsUrl, pair.sessionId, pair.tokenB);
        ctx.devices.push(again);
        await again.synced();
        await waitFor(() => sameContent(a, again), 5_000, 'the reconnected phone did not sync');
        assert.is(await asleep(ctx.server), 1, 'a reconnecting phone woke the document');
        again.destroy();

        // An edit wakes it; both devices converge on everything typed before and after.
        typeText(b.doc, 'vehicleB', ['policyholder', 'lastName'], ' (corrigé)');
        await waitFor(() => sameContent(a, b), 5_000, 'the edit made after the sleep was lost');
        assert.ok(JSON.stringify(materialise(a.doc).vehicleB).includes('(corrigé)'));
        await untilAsleep(ctx.server, 'the document did not sleep again');

        // Signing needs the server's copy: it wakes it, and the hash is the devices' hash.
        const hash = contentHash(a.doc);
        const keys = { A: newDeviceKey(), B: newDeviceKey() };
        await registerKey(ctx.server.url, pair.tokenA, keys.A);
        await registerKey(ctx.server.url, pair.tokenB, keys.B);
        const sign = async (role: 'A' | 'B') => {
          const token = role === 'A' ? pair.tokenA : pair.tokenB;
          const signature = signHash(keys[role], pair.sessionId, role, hash);
          const res = await signConstat(ctx.server.url, token, pair.sessionId, hash, signature);
          assert.is(res.errors, undefined, JSON.stringify(res.errors));
          return res.data!.signConstat;
        };
        await sign('A');
        await untilAsleep(ctx.server, 'the signed document did not sleep');
        const second = await sign('B');
        assert.is(second.status, 'FINALIZED');
        await waitFor(
          () => [a, b].every((d) => d.events.some((e) => e.type === 'finalized')),
          5_000,
          'devices were not told the constat is finalized',
        );
      });
    },
  );
}
