/**
 * Whole-document Yjs work off the event loop. Encoding, merging or diffing a large document
 * takes tens of milliseconds (a 1.7 MB sketch: 15–50 ms each here), and every device of every
 * session on the instance waits while the event loop does it. So does merging many small
 * updates (a few hundred stroke points: tens of milliseconds; `Y.mergeUpdates` grows with
 * the square of their number). Inputs above `inlineBelowBytes` or `INLINE_MAX_PARTS` parts go
 * to a worker thread (a `piscina` pool); smaller ones are done on the spot, where a worker
 * round trip would cost more than the work.
 */
import { Piscina } from 'piscina';
import { pack } from './transfer.js';
import { runYjsTask, type EncodedDocument, type YjsTask } from './yjs-ops.js';

export type { EncodedDocument } from './yjs-ops.js';

export interface YjsOffload {
  /** The document made of `parts` (a base and updates since), encoded, and its state vector. */
  state(parts: readonly Uint8Array[]): Promise<EncodedDocument>;
  /** What the document made of `parts` holds beyond `vector` (a sync step 2). */
  diff(parts: readonly Uint8Array[], vector: Uint8Array): Promise<Uint8Array>;
  /** `parts` merged into one update (`Y.mergeUpdates`; nothing is rebuilt). */
  merge(parts: readonly Uint8Array[]): Promise<Uint8Array>;
  /**
   * What `extra` (a whole document) holds beyond the document made of `parts`, as an update;
   * undefined when it holds nothing more.
   */
  missing(parts: readonly Uint8Array[], extra: Uint8Array): Promise<Uint8Array | undefined>;
  close(): Promise<void>;
}

export interface YjsOffloadOptions {
  /** Inputs smaller than this are handled on the calling thread (default 64 KiB). */
  inlineBelowBytes?: number;
  /** Worker threads at most (default 1: the work is occasional, and cores are shared). */
  maxThreads?: number;
}

const DEFAULT_INLINE_BELOW = 64 * 1024;
/** More parts than this go to the worker whatever their size. */
const INLINE_MAX_PARTS = 16;
// A worker nobody used for this long exits; the next large document starts one again.
const IDLE_TIMEOUT_MS = 60_000;

export function createYjsOffload(opts: YjsOffloadOptions = {}): YjsOffload {
  const inlineBelow = opts.inlineBelowBytes ?? DEFAULT_INLINE_BELOW;
  let pool: Piscina | undefined;
  let closed = false;
  const run = async (task: YjsTask): Promise<unknown> => {
    let bytes = task.op === 'missing' ? task.extra.byteLength : 0;
    for (const part of task.parts) bytes += part.byteLength;
    if (bytes < inlineBelow && task.parts.length <= INLINE_MAX_PARTS) return runYjsTask(task);
    if (closed) throw new Error('the Yjs worker pool is closed');
    pool ??= new Piscina({
      filename: new URL('./yjs-worker.mjs', import.meta.url).href,
      minThreads: 0,
      maxThreads: opts.maxThreads ?? 1,
      idleTimeout: IDLE_TIMEOUT_MS,
    });
    return pool.run(...packed(task));
  };
  return {
    state: async (parts) => (await run({ op: 'state', parts: [...parts] })) as EncodedDocument,
    diff: async (parts, vector) =>
      (await run({ op: 'diff', parts: [...parts], vector })) as Uint8Array,
    merge: async (parts) => (await run({ op: 'merge', parts: [...parts] })) as Uint8Array,
    missing: async (parts, extra) =>
      (await run({ op: 'missing', parts: [...parts], extra })) as Uint8Array | undefined,
    async close() {
      closed = true;
      await pool?.destroy();
    },
  };
}

/** The task with its arrays packed into one buffer that moves to the worker (transfer.ts). */
function packed(task: YjsTask): [YjsTask, { transferList: ArrayBuffer[] }] {
  const extra = task.op === 'diff' ? task.vector : task.op === 'missing' ? task.extra : undefined;
  const { arrays, transferList } = pack(extra ? [...task.parts, extra] : task.parts);
  const parts = extra ? arrays.slice(0, -1) : arrays;
  const last = arrays[arrays.length - 1]!;
  const moved: YjsTask =
    task.op === 'diff'
      ? { op: 'diff', parts, vector: last }
      : task.op === 'missing'
        ? { op: 'missing', parts, extra: last }
        : { op: task.op, parts };
  return [moved, { transferList }];
}
