/**
 * The client kit's wait for `finalized` (client/flow.ts) when a phone is offline at the moment
 * of finalization, as when its instance restarts: on its way back it is refused with 4409 (the
 * session is finalized) rather than sent the event, and that counts as told; the constat id is
 * the other phone's.
 */
import * as assert from 'uvu/assert';
import { contentHash } from '../constat/content-hash.js';
import { openPair } from './support/server.js';
import { connectBoth, waitFor } from './support/device.js';
import { finalizedConstatId, registerKey, signConstat, waitForFinalized } from '../client/flow.js';
import { fillConstat } from './support/signing.js';
import { serverSuite } from './support/suite.js';

serverSuite('client flow', { database: 'pglite', hub: 'memory' }, (test) => {
  test('a phone back after finalization is refused with 4409, and counts as told', async (ctx) => {
    const pair = await openPair(ctx.server.url);
    const { a, b } = await connectBoth(ctx.server, pair, ctx.devices);
    await fillConstat(a, b, (x, y) => contentHash(x.doc) === contentHash(y.doc));
    const hash = contentHash(a.doc);
    const url = ctx.server.url;
    const [keyA, keyB] = await Promise.all([
      registerKey(url, pair.tokenA),
      registerKey(url, pair.tokenB),
    ]);
    b.disconnect();
    for (const [role, token, key] of [
      ['A', pair.tokenA, keyA],
      ['B', pair.tokenB, keyB],
    ] as const) {
      const res = await signConstat({ url, token }, pair.sessionId, role, key, hash);
      assert.is(res.errors, undefined, JSON.stringify(res.errors));
    }
    await waitFor(() => finalizedConstatId(a) !== undefined, 10_000, 'A was not told');
    b.reconnect();
    const constatId = await waitForFinalized([a, b], { timeoutMs: 10_000 });
    assert.is(constatId, finalizedConstatId(a));
    assert.is(finalizedConstatId(b), undefined, 'B was not sent the event');
    assert.ok(
      b.closes.some((c) => c.code === 4409),
      `B closed with ${b.closes.map((c) => c.code)}`,
    );
  });
});
