/**
 * Draft folds on a worker thread with a database connection of its own (a real PostgreSQL
 * server; the embedded one takes a single connection). A fold reads a whole draft and writes
 * its new base, and postgres.js decodes and encodes those megabytes as hex text on the thread
 * that runs the statement — for a 1.7 MB sketch tens of milliseconds of CPU and a block of
 * about 20 ms each way. Here none of it touches the event loop: the worker loads, merges
 * (yjs-ops.ts, on its own thread) and writes; the caller gets the outcome (`FoldResult`).
 *
 * The same thread answers what a whole document holds that its draft lacks (`lacking`: a
 * live document unloading on a Redis hub, hub/compactor.ts), which reads the draft too.
 *
 * One thread, started on first use and stopped after a minute without work (its connection
 * ends with it). The same optimistic `fold` statement guards the write, so a fold here racing
 * one on another instance, or a save, costs at most a wasted merge.
 */
import { Piscina } from 'piscina';
import type { FoldResult } from '../sync/draft-folder.js';
import { pack } from '../sync/transfer.js';
import type { DraftTask, Lacking } from './draft-fold-task.js';

export type { Lacking } from './draft-fold-task.js';

export interface WorkerFolds {
  fold(sessionId: string): Promise<FoldResult>;
  /** What `extra` (a whole document) holds that the session's draft lacks. */
  lacking(sessionId: string, extra: Uint8Array): Promise<Lacking>;
  close(): Promise<void>;
}

// A worker nobody used for this long exits; the next fold starts one again.
const IDLE_TIMEOUT_MS = 60_000;

export function createWorkerFolds(opts: { databaseUrl: string }): WorkerFolds {
  let pool: Piscina | undefined;
  let closed = false;
  const run = async (task: DraftTask, transferList?: ArrayBuffer[]): Promise<unknown> => {
    if (closed) throw new Error('the draft fold worker is closed');
    pool ??= new Piscina({
      filename: new URL('./draft-fold-worker.mjs', import.meta.url).href,
      minThreads: 0,
      maxThreads: 1,
      idleTimeout: IDLE_TIMEOUT_MS,
      workerData: { databaseUrl: opts.databaseUrl },
    });
    return pool.run(task, transferList ? { transferList } : {});
  };
  return {
    fold: async (sessionId) => (await run({ op: 'fold', sessionId })) as FoldResult,
    lacking: async (sessionId, extra) => {
      // Moved, not cloned with whatever buffer it is a view into (transfer.ts).
      const { arrays, transferList } = pack([extra]);
      return (await run({ op: 'lacking', sessionId, extra: arrays[0]! }, transferList)) as Lacking;
    },
    async close() {
      closed = true;
      await pool?.destroy();
    },
  };
}
