/**
 * What the draft fold worker (draft-fold-worker.mjs) runs, through a connection of the
 * worker's own, the Yjs work done on the spot (this thread is the one allowed to take the
 * time): one fold (sync/draft-folder.ts), or what a whole document holds that its draft lacks
 * (a live document unloading on a Redis hub, hub/compactor.ts).
 */
import { workerData } from 'node:worker_threads';
import postgres from 'postgres';
import { foldDraft, type FoldResult } from '../sync/draft-folder.js';
import { runYjsTask, type EncodedDocument } from '../sync/yjs-ops.js';
import { createDraftsRepository, type DraftsRepository } from './drafts-repository.js';

export type DraftTask =
  { op: 'fold'; sessionId: string } | { op: 'lacking'; sessionId: string; extra: Uint8Array };

/** `lacking`: the update the draft lacks, `undefined` if nothing; or why there is no answer. */
export type Lacking = Uint8Array | undefined | 'missing' | 'closed';

let repository: DraftsRepository | undefined;

// One connection for the life of the thread; it ends when the thread does.
const drafts = () =>
  (repository ??= createDraftsRepository(
    postgres((workerData as { databaseUrl: string }).databaseUrl, {
      max: 1,
      onnotice: () => {},
    }),
  ));

export async function runDraftTask(task: DraftTask): Promise<FoldResult | Lacking> {
  if (task.op === 'fold') {
    return foldDraft(
      drafts(),
      async (parts) => runYjsTask({ op: 'state', parts }) as EncodedDocument,
      task.sessionId,
    );
  }
  const draft = await drafts().load(task.sessionId);
  if (!draft) return 'missing';
  if (draft.status !== 'live') return 'closed';
  return runYjsTask({
    op: 'missing',
    parts: [draft.state, ...draft.updates],
    extra: task.extra,
  }) as Uint8Array | undefined;
}
