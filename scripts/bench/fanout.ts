/**
 * Fan-out latency: an update leaving client A → applied in client B, at a fixed rate, one
 * session, each update a new entry in the sketch (what a stroke point or a keystroke costs).
 * For the two-instance setups A and B are on different instances, so every update crosses
 * Redis. The first updates warm the server up and are not counted.
 */
import * as Y from 'yjs';
import { waitFor } from '../../client/device.js';
import { LightClient } from './light-client.js';
import { percentiles, type Percentiles } from './stats.js';
import type { Progress } from './progress.js';
import type { Target } from './targets.js';

export interface FanoutResult {
  updates: number;
  ratePerSecond: number;
  latencyMs: Percentiles;
}

const WARMUP = 20;

export function sketchElements(doc: Y.Doc): Y.Map<unknown> | undefined {
  const elements = doc.getMap('sketch').get('elements');
  return elements instanceof Y.Map ? (elements as Y.Map<unknown>) : undefined;
}

/**
 * The sketch's element map: ours has it from the start; a peer's client A creates it. With
 * Hocuspocus's Redis extension, a change published before the other instance subscribed to
 * the document is not seen there until the next change (each change publishes a sync step 1
 * that the other instances answer), so A makes a small change of its own until B has the map.
 */
export async function ensureElements(a: LightClient, b: LightClient): Promise<void> {
  if (!sketchElements(a.doc)) a.doc.getMap('sketch').set('elements', new Y.Map());
  for (let attempt = 1; ; attempt++) {
    try {
      await waitFor(() => !!sketchElements(b.doc), 1_000, 'the sketch did not reach client B');
      return;
    } catch (err) {
      if (attempt >= 10) throw err;
      a.doc.getMap('bench').set('nudge', attempt);
    }
  }
}

export async function measureFanout(
  target: Target,
  opts: { updates: number; ratePerSecond: number; progress: Progress },
): Promise<FanoutResult> {
  const session = await target.newSession('fanout');
  const a = new LightClient({ url: session.urlA, room: session.room, wire: target.wire });
  const b = new LightClient({ url: session.urlB, room: session.room, wire: target.wire });
  try {
    await Promise.all([a.whenSynced(), b.whenSynced()]);
    await ensureElements(a, b);
    return await timedFanout(a, b, opts);
  } finally {
    a.close();
    b.close();
  }
}

/**
 * The measurement itself, on two synced clients of one session whose sketch has its element
 * map: `updates` new entries from A at a fixed rate (after the warm-up), each timed until B
 * has applied it.
 */
export async function timedFanout(
  a: LightClient,
  b: LightClient,
  opts: { updates: number; ratePerSecond: number; progress: Progress },
): Promise<FanoutResult> {
  const inFlight = new Map<string, number>();
  const latencies: number[] = [];
  let counting = false;
  b.onRemoteUpdate = (client) => {
    const elements = sketchElements(client.doc);
    if (!elements || inFlight.size === 0) return;
    const now = performance.now();
    for (const [key, sentAt] of inFlight) {
      if (elements.has(key)) {
        inFlight.delete(key);
        if (counting) latencies.push(now - sentAt);
      }
    }
  };
  try {
    const elements = sketchElements(a.doc)!;
    const interval = 1000 / opts.ratePerSecond;
    const total = WARMUP + opts.updates;
    const started = performance.now();
    for (let seq = 0; seq < total; seq++) {
      const wait = started + seq * interval - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      if (seq === WARMUP) {
        await waitFor(() => inFlight.size === 0, 10_000, 'warm-up updates did not arrive');
        counting = true;
      }
      const key = `p-${seq}`;
      inFlight.set(key, performance.now());
      elements.set(key, [seq % 100, (seq * 7) % 100]);
      if (seq >= WARMUP) opts.progress.tick();
    }
    await waitFor(() => inFlight.size === 0, 30_000, 'not every update arrived');
    if (a.closed || b.closed)
      throw new Error(`a client was closed: ${JSON.stringify(a.closed ?? b.closed)}`);
    return {
      updates: latencies.length,
      ratePerSecond: opts.ratePerSecond,
      latencyMs: percentiles(latencies),
    };
  } finally {
    b.onRemoteUpdate = undefined;
  }
}
