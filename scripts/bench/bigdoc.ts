/**
 * Large documents: does one big document stall the sessions around it, or its own?
 *
 * - **Neighbour**: a session whose sketch holds `neighbourBytes` (1.7 MB: finger strokes, as a
 *   detailed sketch grows) is edited continuously (a point every 20 ms, from A), while a small
 *   session on the same instance(s) measures its fan-out (A → B, as `fanout.ts`).
 * - **Own**: a session whose sketch holds each of `ownBytes` (1 KB to 2 MB) measures its own
 *   fan-out.
 *
 * For each, the servers' event-loop delay p99 and max over the measured window are read too
 * (the probe preloaded in every server, loop-probe.mjs; the largest of the instances) and
 * their GC pauses summed. The documents are
 * built through the server like any edit: strokes of 200 points, sent in updates of about
 * 25 KB, until the encoded document reaches the size.
 */
import * as Y from 'yjs';
import { growSketch } from '../sim/content.js';
import { waitFor } from '../../client/device.js';
import { ensureElements, sketchElements, timedFanout, type FanoutResult } from './fanout.js';
import { LightClient } from './light-client.js';
import type { Progress } from './progress.js';
import { worstLoop } from './probe.js';
import type { Target } from './targets.js';
import { monotonicUs, type ProfileWindow } from './profile.js';

export interface BigDocConfig {
  updates: number;
  ratePerSecond: number;
  neighbourBytes: number;
  /** Updates per second made to the large neighbour while the small session is measured. */
  neighbourRatePerSecond: number;
  ownBytes: number[];
}

export interface BigDocMeasurement extends FanoutResult {
  /** Encoded size of the session's (or the neighbour's) document. */
  documentBytes: number;
  /** Event-loop delay p99 of the server(s) during the window, ms (the largest instance). */
  eventLoopP99Ms: number;
  eventLoopMaxMs: number;
  /** GC pauses of the server(s) during the window, ms in all. */
  gcMs: number;
  /** CPU time of the server(s) during the window, ms (every thread): holds under load. */
  cpuMs: number;
  /** The window, on the monotonic clock (profiles are read over it: profile.ts). */
  window: ProfileWindow;
}

export interface BigDocResult {
  neighbour: BigDocMeasurement;
  own: BigDocMeasurement[];
}

/** Fills the sketch of A's document with strokes until it encodes to `bytes`, synced to B. */
export async function grow(a: LightClient, b: LightClient, bytes: number): Promise<number> {
  // The pause keeps A under the servers' per-connection message rate.
  const size = await growSketch(a.doc, bytes, () => new Promise((r) => setTimeout(r, 30)));
  const target = Y.encodeStateVector(a.doc);
  try {
    await waitFor(() => equalVectors(Y.encodeStateVector(b.doc), target), 60_000, 'timed out');
  } catch (err) {
    // What a failed run needs to be understood: a closed socket, or an update that went missing.
    const state = (c: LightClient) =>
      c.closed ? `closed (${c.closed.code} ${c.closed.reason})` : 'open';
    throw new Error(
      `the large document did not reach client B (${(err as Error).message}; A ${state(a)}, ` +
        `B ${state(b)}; B has ${Y.encodeStateAsUpdate(b.doc).byteLength} of ${size} bytes)`,
    );
  }
  return size;
}

function equalVectors(x: Uint8Array, y: Uint8Array): boolean {
  return x.byteLength === y.byteLength && x.every((v, i) => v === y[i]);
}

async function pair(target: Target, tag: string): Promise<[LightClient, LightClient]> {
  const session = await target.newSession(tag);
  const a = new LightClient({ url: session.urlA, room: session.room, wire: target.wire });
  const b = new LightClient({ url: session.urlB, room: session.room, wire: target.wire });
  try {
    await Promise.all([a.whenSynced(), b.whenSynced()]);
    await ensureElements(a, b);
  } catch (err) {
    a.close();
    b.close();
    throw err;
  }
  return [a, b];
}

async function measured(
  target: Target,
  label: string,
  documentBytes: number,
  run: () => Promise<FanoutResult>,
): Promise<BigDocMeasurement> {
  await target.loop(); // opens the window
  const startUs = monotonicUs();
  const fanout = await run();
  const window = {
    label: `${label} ${(documentBytes / 1e6).toFixed(2)} MB`,
    startUs,
    endUs: monotonicUs(),
  };
  const loop = worstLoop(await target.loop())!;
  return {
    window,
    ...fanout,
    documentBytes,
    eventLoopP99Ms: loop.p99Ms,
    eventLoopMaxMs: loop.maxMs,
    gcMs: loop.gc.totalMs,
    cpuMs: loop.cpuMs,
  };
}

export async function measureBigDocs(
  target: Target,
  cfg: BigDocConfig,
  progress: Progress,
): Promise<BigDocResult> {
  const opts = { updates: cfg.updates, ratePerSecond: cfg.ratePerSecond, progress };
  // The neighbour: a large document edited the whole time a small session is measured.
  const [bigA, bigB] = await pair(target, 'bigdoc-neighbour');
  let neighbour: BigDocMeasurement | undefined;
  try {
    const bytes = await grow(bigA, bigB, cfg.neighbourBytes);
    const [a, b] = await pair(target, 'bigdoc-small');
    const stroke = new Y.Array<number>();
    sketchElements(bigA.doc)!.set('live-stroke', stroke);
    let point = 0;
    const editor = setInterval(
      () => stroke.push([point % 1000, point++ % 997]),
      1000 / cfg.neighbourRatePerSecond,
    );
    try {
      neighbour = await measured(target, 'neighbour', bytes, () => timedFanout(a, b, opts));
    } finally {
      clearInterval(editor);
      a.close();
      b.close();
    }
  } finally {
    bigA.close();
    bigB.close();
  }
  const own: BigDocMeasurement[] = [];
  for (const size of cfg.ownBytes) {
    const [a, b] = await pair(target, `bigdoc-own-${size}`);
    try {
      const bytes = await grow(a, b, size);
      own.push(await measured(target, 'own', bytes, () => timedFanout(a, b, opts)));
    } finally {
      a.close();
      b.close();
    }
  }
  return { neighbour: neighbour!, own };
}
