/**
 * What the draft fold worker (draft-fold-worker.mjs) runs: one fold (sync/draft-folder.ts)
 * through a connection of the worker's own, the merge done on the spot (this thread is the
 * one that is allowed to take the time).
 */
import { workerData } from 'node:worker_threads';
import postgres from 'postgres';
import { foldDraft, type FoldResult } from '../sync/draft-folder.js';
import { runYjsTask, type EncodedDocument } from '../sync/yjs-ops.js';
import { createDraftsRepository, type DraftsRepository } from './drafts-repository.js';

let drafts: DraftsRepository | undefined;

export async function foldInWorker(sessionId: string): Promise<FoldResult> {
  // One connection for the life of the thread; it ends when the thread does.
  drafts ??= createDraftsRepository(
    postgres((workerData as { databaseUrl: string }).databaseUrl, {
      max: 1,
      onnotice: () => {},
    }),
  );
  return foldDraft(
    drafts,
    async (parts) => runYjsTask({ op: 'state', parts }) as EncodedDocument,
    sessionId,
  );
}
