/**
 * Idle documents sleep (DOCUMENT_SLEEP_AFTER_MS) while their devices stay connected: presence
 * keeps flowing, the next edit wakes the document with nothing lost, and signing a document
 * that slept finalizes it. On the embedded server and on PostgreSQL + Redis.
 */
import * as assert from 'uvu/assert';
import { openPair, type TestServer } from './support/server.js';
import { SERVER_VARIANTS, serverSuite } from './support/suite.js';
import { connectDevice, waitFor, type Device } from './support/device.js';
import {
  eventually,
  fillConstat,
  newDeviceKey,
  registerKey,
  signConstat,
  signHash,
} from './support/signing.js';
import { materialise, typeText } from '../sync/constat-doc.js';
import { canonicalJson } from '../sync/canonical-json.js';
import { contentHash } from '../sync/content-hash.js';

const SLEEP_AFTER_MS = 200;

async function asleep(server: TestServer): Promise<number> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('constat_documents_asleep '));
  return Number(line?.split(' ')[1]);
}

const sameContent = (a: Device, b: Device) =>
  canonicalJson(materialise(a.doc)) === canonicalJson(materialise(b.doc));

for (const variant of SERVER_VARIANTS) {
  serverSuite(
    `sleeping documents (${variant.name})`,
    { ...variant.options, env: { DOCUMENT_SLEEP_AFTER_MS: String(SLEEP_AFTER_MS) } },
    (test) => {
      test('an idle document sleeps with its devices connected; presence flows, the next edit wakes it, then it signs and finalizes', async (ctx) => {
        const pair = await openPair(ctx.server.url);
        const a = connectDevice(ctx.server.wsUrl, pair.sessionId, pair.tokenA);
        const b = connectDevice(ctx.server.wsUrl, pair.sessionId, pair.tokenB);
        ctx.devices.push(a, b);
        await Promise.all([a.synced(), b.synced()]);
        await fillConstat(a, b, sameContent);
        await eventually(
          async () => ((await asleep(ctx.server)) === 1 ? true : undefined),
          5_000,
          'the document never slept',
        );

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

        // An edit wakes it; both devices converge on everything typed before and after.
        typeText(b.doc, 'vehicleB', ['policyholder', 'lastName'], ' (corrigé)');
        await waitFor(() => sameContent(a, b), 5_000, 'the edit made after the sleep was lost');
        assert.ok(JSON.stringify(materialise(a.doc).vehicleB).includes('(corrigé)'));
        await eventually(
          async () => ((await asleep(ctx.server)) === 1 ? true : undefined),
          5_000,
          'the document did not sleep again',
        );

        // Signing needs the server's copy: it wakes it, and the hash is the devices' hash.
        const hash = contentHash(a.doc);
        const keys = { A: newDeviceKey(), B: newDeviceKey() };
        await registerKey(ctx.server.url, pair.tokenA, keys.A);
        await registerKey(ctx.server.url, pair.tokenB, keys.B);
        const first = await signConstat(
          ctx.server.url,
          pair.tokenA,
          pair.sessionId,
          hash,
          signHash(keys.A, pair.sessionId, 'A', hash),
        );
        assert.is(first.errors, undefined, JSON.stringify(first.errors));
        await eventually(
          async () => ((await asleep(ctx.server)) === 1 ? true : undefined),
          5_000,
          'the signed document did not sleep',
        );
        const second = await signConstat(
          ctx.server.url,
          pair.tokenB,
          pair.sessionId,
          hash,
          signHash(keys.B, pair.sessionId, 'B', hash),
        );
        assert.is(second.errors, undefined, JSON.stringify(second.errors));
        assert.is(second.data!.signConstat.status, 'FINALIZED');
        await waitFor(
          () => [a, b].every((d) => d.events.some((e) => e.type === 'finalized')),
          5_000,
          'devices were not told the constat is finalized',
        );
      });
    },
  );
}
