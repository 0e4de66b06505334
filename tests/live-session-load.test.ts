/**
 * Loading a live document on a shared hub: the hub is subscribed before the draft is read, so
 * updates it delivers meanwhile are applied on top of the draft, and they count as a change
 * (the draft does not hold them yet): when the document unloads, its state is merged into the
 * draft. A document that received nothing since its load is not merged again.
 *
 * The hub and the draft store are stand-ins: what is tested is the order of the load (an update
 * arriving between the subscription and the draft read), which a real hub delivers only by
 * chance of timing. The hub's own delivery and catch-up are tested against Redis
 * (redis-hub.test.ts); an unchanged document's skipped merge through the compactor, too
 * (durability.test.ts).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { pino } from 'pino';
import * as Y from 'yjs';
import { createSkeleton, writeMeta } from '../constat/constat-doc.js';
import { compaction } from '../sync/durability.js';
import type { Hub, HubListener } from '../sync/hub.js';
import type { DraftStore, StoredDraft } from '../sync/draft-store.js';
import { LiveSession } from '../sync/live-session.js';
import type { Finalizer, SyncObserver } from '../sync/ports.js';
import { createYjsOffload, type YjsOffload } from '../sync/yjs-offload.js';

const SESSION = 'session-1';
const FORM_VERSION = 'dz';

interface Ctx {
  offload: YjsOffload;
}

const test = suite<Ctx>('a live document loaded on a shared hub', {
  offload: createYjsOffload(),
});
test.after(async (ctx) => {
  await ctx.offload.close();
});

/** The draft as a session's opening stores it: meta and the form's skeleton. */
function openedDraft(): StoredDraft {
  const doc = new Y.Doc();
  writeMeta(
    doc,
    { formVersion: FORM_VERSION, sessionId: SESSION, createdAt: new Date().toISOString() },
    'server',
  );
  createSkeleton(doc, 'server');
  const state = Y.encodeStateAsUpdate(doc);
  doc.destroy();
  return {
    sessionId: SESSION,
    formVersion: FORM_VERSION,
    state,
    updates: [],
    updateSeqs: [],
    status: 'live',
    version: 1,
  };
}

/** An edit made elsewhere on top of the draft (another instance's device). */
function editOn(draft: StoredDraft, text: string): Uint8Array {
  const doc = new Y.Doc();
  Y.applyUpdate(doc, draft.state);
  const before = Y.encodeStateVector(doc);
  doc.getMap('accident').set('observations', text);
  const update = Y.encodeStateAsUpdate(doc, before);
  doc.destroy();
  return update;
}

const noop = () => {};
const observer: SyncObserver = {
  updateAccepted: noop,
  updateRejected: noop,
  pendingDropped: noop,
  presenceDropped: noop,
  backgroundFailed: noop,
  draftSaved: noop,
  draftSaveFailed: noop,
};
const finalizer: Finalizer = {
  finalize: () => Promise.reject(new Error('not in this test')),
};

/**
 * Loads the session with a hub that delivers `early` while the draft is being read, and returns
 * what the compactor was handed when the document unloaded.
 */
async function loadAndUnload(
  offload: YjsOffload,
  early: Uint8Array[],
): Promise<{ text: unknown; merged: Uint8Array[] }> {
  const draft = openedDraft();
  let listener: HubListener | undefined;
  const hub: Hub = {
    shared: true,
    append: async () => {},
    subscribe: async (_id, l) => {
      listener = l;
      return noop;
    },
    close: async () => {},
  };
  const drafts: Pick<DraftStore, 'load'> = {
    // The hub delivers while the draft is on its way from storage.
    load: async () => {
      for (const update of early) listener!({ kind: 'update', update });
      return draft;
    },
  };
  const merged: Uint8Array[] = [];
  const live = await LiveSession.load({
    sessionId: SESSION,
    formVersion: FORM_VERSION,
    hub,
    drafts: drafts as DraftStore,
    durability: compaction({
      compact: async (_id, whole) => {
        if (whole) merged.push(whole);
        return 'compacted';
      },
    }),
    offload,
    logger: pino({ level: 'silent' }),
    observer,
    maxDocumentBytes: 2 * 1024 * 1024,
    finalizer,
    expiresAt: new Date(Date.now() + 3_600_000).toISOString(),
  });
  const text = live.doc.getMap('accident').get('observations');
  await live.destroy();
  return { text, merged };
}

test('an update the hub delivered before the draft was read is applied, and merged at unload', async ({
  offload,
}) => {
  const update = editOn(openedDraft(), 'rear-ended at the light');
  const { text, merged } = await loadAndUnload(offload, [update]);
  assert.is(text, 'rear-ended at the light', 'the early update is in the document');
  assert.is(merged.length, 1, 'the document is merged into the draft when it unloads');
  const stored = new Y.Doc();
  Y.applyUpdate(stored, merged[0]!);
  assert.is(stored.getMap('accident').get('observations'), 'rear-ended at the light');
  stored.destroy();
});

test('a document that received nothing since its load is not merged again', async ({ offload }) => {
  const { text, merged } = await loadAndUnload(offload, []);
  assert.is(text, undefined);
  assert.is(merged.length, 0);
});

test.run();
