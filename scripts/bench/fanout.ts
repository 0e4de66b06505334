/**
 * Fan-out latency: party A's update leaving A's client → arriving in B's client, at a fixed
 * rate, through stock y-websocket clients. Measured for one instance on the in-process hub and
 * for two instances through Redis, in the same run, so the ratio means something on a noisy
 * machine.
 */
import * as Y from 'yjs';
import { connectDevice, waitFor } from '../../tests/support/device.js';
import { openPair, startTestServer, type TestServer } from '../../tests/support/server.js';
import { percentiles, type Percentiles } from './stats.js';
import type { Progress } from './progress.js';

export interface FanoutResult {
  setup: string;
  updates: number;
  latencyMs: Percentiles;
}

export async function measureFanout(
  setup: 'embedded' | 'redis-two-instances',
  opts: { updates: number; ratePerSecond: number; progress: Progress },
): Promise<FanoutResult> {
  const servers: TestServer[] = [];
  try {
    if (setup === 'embedded') {
      servers.push(await startTestServer({ database: 'pglite', hub: 'memory' }));
    } else {
      const first = await startTestServer({ database: 'postgres', hub: 'redis' });
      servers.push(first);
      servers.push(
        await startTestServer({
          database: 'postgres',
          hub: 'redis',
          databaseUrl: first.databaseUrl!,
          redisPrefix: first.redisPrefix,
        }),
      );
    }
    const [one, two = servers[0]!] = servers;
    const pair = await openPair(one!.url);
    const a = connectDevice(one!.wsUrl, pair.sessionId, pair.tokenA);
    const b = connectDevice(two.wsUrl, pair.sessionId, pair.tokenB);
    await Promise.all([a.synced(), b.synced()]);

    const sentAt = new Map<number, number>();
    const latencies: number[] = [];
    const stroke = b.doc.getMap('sketch').get('elements') as Y.Map<unknown>;
    stroke.observeDeep(() => {
      const now = performance.now();
      for (const [key] of (b.doc.getMap('sketch').get('elements') as Y.Map<unknown>).entries()) {
        const seq = Number(key.slice(2));
        const t = sentAt.get(seq);
        if (t !== undefined) {
          latencies.push(now - t);
          sentAt.delete(seq);
        }
      }
    });
    const elements = a.doc.getMap('sketch').get('elements') as Y.Map<unknown>;
    const interval = 1000 / opts.ratePerSecond;
    const started = performance.now();
    for (let seq = 0; seq < opts.updates; seq++) {
      const due = started + seq * interval;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      sentAt.set(seq, performance.now());
      elements.set(`p-${seq}`, [seq, seq * 2]);
      opts.progress.tick();
    }
    await waitFor(() => latencies.length >= opts.updates, 30_000, 'not every update arrived');
    a.destroy();
    b.destroy();
    return { setup, updates: latencies.length, latencyMs: percentiles(latencies) };
  } finally {
    for (const s of servers.reverse()) await s.stop();
  }
}
