/**
 * The pieces that keep whole-document Yjs work off the event loop, without a server:
 * - the off-thread worker gives exactly what the calling thread gives (state, diff, merge),
 *   and a failure in it comes back as a rejected promise;
 * - a document log rebuilds the document it recorded, its whole state equals encoding the
 *   live Y.Doc, a merge keeps what was recorded while it ran, and its size follows the edits;
 * - when a draft is due for a fold;
 * - a draft save of a large document appends what changed, not the document (embedded PGlite);
 * - a fold on the worker thread, through its own connection (a PostgreSQL server), merges what
 *   the draft holds without reading it on the calling thread, and leaves a closed draft be; the
 *   same worker tells what a whole document holds beyond its draft (an unload on Redis).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { pino } from 'pino';
import * as Y from 'yjs';
import { createYjsOffload, type YjsOffload } from '../sync/yjs-offload.js';
import { pack } from '../sync/transfer.js';
import { DocumentLog } from '../sync/document-log.js';
import { DraftFolder, FOLD_MIN_BYTES, FOLD_ROWS, foldDue } from '../sync/draft-folder.js';
import { DraftWriter } from '../sync/draft-writer.js';
import { MEMORY_DATA_DIR, openDatabase, type Database } from '../persistence/database.js';
import { migrate } from '../persistence/migrate.js';
import { createDraftsRepository } from '../persistence/drafts-repository.js';
import { createWorkerFolds, type WorkerFolds } from '../persistence/draft-folds.js';
import { createTestDatabase, type TestDatabase } from '../persistence/test-database.js';
import { setUp } from './support/suite.js';

const logger = pino({ level: 'silent' });

/** A document with a stroke of `points` points, and the updates that built it. */
function drawing(points: number): { doc: Y.Doc; updates: Uint8Array[] } {
  const doc = new Y.Doc();
  const updates: Uint8Array[] = [];
  doc.on('update', (u: Uint8Array) => updates.push(u));
  const stroke = new Y.Array<number>();
  doc.getMap('sketch').set('stroke', stroke);
  for (let i = 0; i < points; i += 1_000) {
    stroke.push(Array.from({ length: 2 * Math.min(1_000, points - i) }, (_, k) => (i + k) % 1000));
  }
  doc.getText('remarks').insert(0, 'rear-ended');
  doc.getText('remarks').delete(0, 5); // deleted content, collected by the encoder
  return { doc, updates };
}

const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));

const contentOf = (update: Uint8Array) => {
  const doc = new Y.Doc();
  Y.applyUpdate(doc, update);
  return { sketch: doc.getMap('sketch').toJSON(), remarks: doc.getText('remarks').toString() };
};

const offloading = suite<{ worker: YjsOffload; inline: YjsOffload }>('yjs offload', {
  worker: createYjsOffload({ inlineBelowBytes: 0 }), // everything goes to the worker thread
  inline: createYjsOffload({ inlineBelowBytes: Number.POSITIVE_INFINITY }),
});
offloading.after(async (ctx) => {
  await Promise.all([ctx.worker.close(), ctx.inline.close()]);
});

offloading(
  'the worker thread encodes, diffs and merges as the calling thread does',
  async (ctx) => {
    const { doc, updates } = drawing(2_000);
    const expected = Y.encodeStateAsUpdate(doc);
    for (const offload of [ctx.worker, ctx.inline]) {
      const state = await offload.state(updates);
      assert.ok(same(state.update, expected), 'state is what encoding the Y.Doc gives');
      assert.ok(same(state.vector, Y.encodeStateVector(doc)));
      const half = new Y.Doc();
      for (const u of updates.slice(0, updates.length / 2)) Y.applyUpdate(half, u);
      const diff = await offload.diff(updates, Y.encodeStateVector(half));
      Y.applyUpdate(half, diff);
      assert.equal(contentOf(Y.encodeStateAsUpdate(half)), contentOf(expected));
      assert.equal(contentOf(await offload.merge(updates)), contentOf(expected));
    }
  },
);

offloading(
  'what a whole document holds beyond another: nothing, or exactly the difference',
  async (ctx) => {
    const { doc, updates } = drawing(2_000);
    const whole = Y.encodeStateAsUpdate(doc);
    for (const offload of [ctx.worker, ctx.inline]) {
      assert.is(await offload.missing(updates, whole), undefined, 'the same document');
      const older = updates.slice(0, -1); // lacks the deletion
      const lacking = await offload.missing(older, whole);
      assert.ok(lacking, 'a deletion is something');
      const rebuilt = new Y.Doc();
      for (const u of [...older, lacking!]) Y.applyUpdate(rebuilt, u);
      assert.equal(contentOf(Y.encodeStateAsUpdate(rebuilt)), contentOf(whole));
    }
  },
);

/** Each array copied into the middle of a 64 KiB buffer of its own, as a socket read leaves it. */
function asViews(arrays: readonly Uint8Array[]): Uint8Array[] {
  return arrays.map((a) => {
    const chunk = new Uint8Array(64 * 1024 + a.byteLength);
    chunk.set(a, 1000);
    return chunk.subarray(1000, 1000 + a.byteLength);
  });
}

offloading('arrays bound for the worker are packed into one buffer of their own size', () => {
  const views = asViews([new Uint8Array([1, 2, 3]), new Uint8Array(0), new Uint8Array([4])]);
  const { arrays, transferList } = pack(views);
  assert.is(transferList.length, 1);
  assert.is(transferList[0]!.byteLength, 4, 'only the bytes, not the 64 KiB chunks under them');
  assert.equal(
    arrays.map((a) => [...a]),
    [[1, 2, 3], [], [4]],
  );
  assert.ok(arrays.every((a) => a.buffer === transferList[0]));
});

offloading(
  'updates that are views into larger buffers go to the worker and stay usable here',
  async (ctx) => {
    const { doc, updates } = drawing(500);
    const views = asViews(updates);
    const whole = Y.encodeStateAsUpdate(doc);
    const state = await ctx.worker.state(views);
    assert.ok(same(state.update, whole));
    assert.equal(contentOf(await ctx.worker.merge(views)), contentOf(whole));
    const lacking = await ctx.worker.missing(views.slice(0, -1), asViews([whole])[0]!);
    assert.ok(lacking, 'the last update is missing');
    const diff = await ctx.worker.diff(views, asViews([Y.encodeStateVector(new Y.Doc())])[0]!);
    assert.equal(contentOf(diff), contentOf(whole));
    // What was posted was a copy moved to the worker: the caller's arrays are intact.
    assert.ok(views.every((v, i) => v.byteLength > 0 && same(v, updates[i]!)));
  },
);

offloading('a malformed input fails the call, not the worker', async (ctx) => {
  let failed = false;
  await ctx.worker
    .diff([Y.encodeStateAsUpdate(new Y.Doc())], new Uint8Array([250, 250, 250]))
    .catch(() => (failed = true));
  assert.ok(failed, 'a malformed state vector is refused');
  const { updates } = drawing(100);
  const state = await ctx.worker.state(updates);
  assert.ok(state.update.byteLength > 0, 'the worker still serves');
});

offloading('a closed offload refuses work instead of hanging', async () => {
  const offload = createYjsOffload({ inlineBelowBytes: 0 });
  await offload.close();
  let error: unknown;
  await offload.merge([Y.encodeStateAsUpdate(new Y.Doc())]).catch((e: unknown) => (error = e));
  assert.instance(error, Error);
});

const log = suite<{ offload: YjsOffload }>('document log', {
  offload: createYjsOffload({ inlineBelowBytes: 0 }),
});
log.after(async (ctx) => ctx.offload.close());

/**
 * A live document whose log records what it applies, as LiveSession wires it. `asleep`: the
 * log does not see the Y.Doc, so every merge goes through the worker thread.
 */
function liveDocument(
  offload: YjsOffload,
  base: Uint8Array,
  { asleep = true, measureAbove }: { asleep?: boolean; measureAbove?: number } = {},
) {
  const doc = new Y.Doc();
  Y.applyUpdate(doc, base);
  const documentLog = new DocumentLog(base, [], {
    offload,
    ...(measureAbove !== undefined ? { measureAbove } : {}),
    live: () => (asleep ? undefined : doc),
    logger: () => logger,
  });
  doc.on('update', (u: Uint8Array) => documentLog.record(u));
  return { doc, documentLog };
}

log('its parts rebuild the document, and its state is the live Y.Doc encoded', async (ctx) => {
  const { doc: start } = drawing(500);
  const { doc, documentLog } = liveDocument(ctx.offload, Y.encodeStateAsUpdate(start));
  doc.getText('remarks').insert(0, 'Oran, ');
  doc.getMap('sketch').set('arrow', { x: 1, y: 2 });
  const rebuilt = new Y.Doc();
  for (const part of documentLog.parts) Y.applyUpdate(rebuilt, part);
  assert.equal(contentOf(Y.encodeStateAsUpdate(rebuilt)), contentOf(Y.encodeStateAsUpdate(doc)));
  const state = await documentLog.state();
  assert.ok(same(state.update, Y.encodeStateAsUpdate(doc)));
  assert.is(documentLog.parts.length, 1, 'the merged state became the base');
  assert.is(documentLog.bytes, state.update.byteLength, 'the size is exact after a merge');
  assert.is(documentLog.bytesSinceMerge, 0);
});

log('a small awake document is encoded from its Y.Doc at once', async (ctx) => {
  const { doc, documentLog } = liveDocument(ctx.offload, Y.encodeStateAsUpdate(new Y.Doc()), {
    asleep: false,
  });
  for (let i = 0; i < 100; i++) doc.getText('remarks').insert(i, 'x');
  const merging = documentLog.state();
  // Synchronous: the base is replaced before the call returns its promise.
  assert.is(documentLog.parts.length, 1);
  assert.ok(same((await merging).update, Y.encodeStateAsUpdate(doc)));
});

log('an update recorded while a merge runs is kept after it', async (ctx) => {
  const { doc, documentLog } = liveDocument(ctx.offload, Y.encodeStateAsUpdate(new Y.Doc()));
  doc.getText('remarks').insert(0, 'before');
  const merging = documentLog.state();
  doc.getText('remarks').insert(6, ' during');
  await merging;
  assert.is(documentLog.parts.length, 2, 'the new base and the update recorded meanwhile');
  const rebuilt = new Y.Doc();
  for (const part of documentLog.parts) Y.applyUpdate(rebuilt, part);
  assert.is(rebuilt.getText('remarks').toString(), 'before during');
});

log('the size follows the edits without encoding, and merges in the background', async (ctx) => {
  const { doc, documentLog } = liveDocument(ctx.offload, Y.encodeStateAsUpdate(new Y.Doc()));
  const stroke = new Y.Array<number>();
  doc.getMap('sketch').set('stroke', stroke);
  let recorded = documentLog.bytes;
  for (let i = 0; i < 20; i++) {
    stroke.push([i, i]);
    assert.ok(documentLog.bytes > recorded, 'each edit adds to the size');
    recorded = documentLog.bytes;
  }
  assert.ok(documentLog.bytes >= Y.encodeStateAsUpdate(doc).byteLength, 'never below the truth');
  // Enough since the base to merge on its own (64 KiB): the parts collapse to a new base.
  stroke.push(Array.from({ length: 40_000 }, (_, k) => k % 1000));
  const deadline = Date.now() + 10_000;
  while (documentLog.parts.length > 1 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.is(documentLog.parts.length, 1, 'merged into one base in the background');
  assert.is(documentLog.bytes, Y.encodeStateAsUpdate(doc).byteLength);
});

log('near the size limit the size is measured in the background as edits come', async (ctx) => {
  const { doc: start } = drawing(100_000);
  const base = Y.encodeStateAsUpdate(start);
  // The limit sits just above the document: a few KB of edits make the estimate pass it.
  const { doc, documentLog } = liveDocument(ctx.offload, base, {
    measureAbove: base.byteLength + 1_000,
  });
  const stroke = doc.getMap('sketch').get('stroke') as Y.Array<number>;
  let recorded = 0;
  doc.on('update', (u: Uint8Array) => (recorded += u.byteLength));
  for (let i = 0; i < 600; i++) stroke.push([i % 1000, (i * 7) % 1000]);
  assert.ok(recorded >= 4 * 1024 && recorded < 64 * 1024, `${recorded} bytes of edits`);
  const deadline = Date.now() + 10_000;
  while (documentLog.bytesSinceMerge >= 4 * 1024 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.ok(documentLog.bytesSinceMerge < 4 * 1024, 'measured without anyone asking');
  const exact = Y.encodeStateAsUpdate(doc).byteLength;
  assert.ok(documentLog.bytes - exact < 4 * 1024, `${documentLog.bytes} vs exactly ${exact}`);
  // Below the limit nothing is measured: the same edits leave the estimate as it is.
  const far = liveDocument(ctx.offload, base, { measureAbove: base.byteLength * 2 });
  const farStroke = far.doc.getMap('sketch').get('stroke') as Y.Array<number>;
  for (let i = 0; i < 600; i++) farStroke.push([i % 1000, (i * 7) % 1000]);
  await new Promise((r) => setTimeout(r, 200));
  assert.is(far.documentLog.parts.length, 601, 'no merge');
});

log('a draft is folded once its updates outgrow its base', () => {
  const appended = (pendingRows: number, pendingBytes: number, baseBytes: number) =>
    foldDue({ kind: 'appended', pendingRows, pendingBytes, baseBytes });
  assert.not.ok(appended(1, 100, 2_000_000), 'one small update beside a large base');
  assert.not.ok(appended(10, 400_000, 2_000_000), 'less than a quarter of the base');
  assert.ok(appended(10, 600_000, 2_000_000), 'more than a quarter of the base');
  assert.not.ok(appended(3, FOLD_MIN_BYTES - 1, 1_000), 'small documents: not below the minimum');
  assert.ok(appended(3, FOLD_MIN_BYTES, 1_000));
  assert.ok(appended(FOLD_ROWS, 100, 2_000_000), 'many small updates');
  assert.not.ok(foldDue({ kind: 'closed' }));
  assert.not.ok(foldDue({ kind: 'missing' }));
});

const writing = suite<{ db?: Database; offload: YjsOffload }>('draft writer', {
  offload: createYjsOffload(),
});
setUp(writing, async (ctx) => {
  ctx.db = await openDatabase({
    dataDir: MEMORY_DATA_DIR,
    template: process.env.PGLITE_TEMPLATE,
    logger,
  });
  await migrate(ctx.db.sql, logger);
});
writing.after(async (ctx) => {
  await ctx.offload.close();
  await ctx.db?.close();
});

writing('a save of a 1.7 MB document stores the edit, not the document', async (ctx) => {
  const drafts = createDraftsRepository(ctx.db!.sql);
  const { doc } = drawing(600_000);
  const base = Y.encodeStateAsUpdate(doc);
  assert.ok(base.byteLength > 1_500_000, `a large document (${base.byteLength} bytes)`);
  await drafts.save({ sessionId: 'large', formVersion: 'dz', state: base });
  const before = (await drafts.load('large'))!;
  let saved = 0;
  const writer = new DraftWriter({
    sessionId: 'large',
    drafts,
    folder: new DraftFolder({ drafts, offload: ctx.offload, logger }),
    offload: ctx.offload,
    debounceMs: 60_000,
    logger: () => logger,
    onSaved: () => saved++,
    onFailed: () => {},
  });
  doc.on('update', (u: Uint8Array) => writer.record(u));
  for (let i = 0; i < 10; i++) (doc.getMap('sketch').get('stroke') as Y.Array<number>).push([i]);
  doc.getText('remarks').insert(0, 'Oran ');
  assert.ok(writer.pending);
  await writer.flush();
  writer.close();
  assert.is(saved, 1, 'one save for the eleven edits');
  const after = (await drafts.load('large'))!;
  assert.is(after.version, before.version, 'the base was not rewritten');
  assert.is(after.updates.length, 1, 'one appended update');
  assert.ok(after.updates[0]!.byteLength < 200, `${after.updates[0]!.byteLength} bytes appended`);
  const rebuilt = new Y.Doc();
  for (const part of [after.state, ...after.updates]) Y.applyUpdate(rebuilt, part);
  assert.is(rebuilt.getText('remarks').toString(), doc.getText('remarks').toString());
  assert.is(
    (rebuilt.getMap('sketch').get('stroke') as Y.Array<number>).length,
    (doc.getMap('sketch').get('stroke') as Y.Array<number>).length,
  );
});

const folding = suite<{ db?: TestDatabase; folds?: WorkerFolds }>('draft folds on a worker');
setUp(folding, async (ctx) => {
  ctx.db = await createTestDatabase();
  await migrate(ctx.db.sql, logger);
  ctx.folds = createWorkerFolds({ databaseUrl: ctx.db.url });
});
folding.after(async (ctx) => {
  await ctx.folds?.close();
  await ctx.db?.drop();
});

folding('a 1.7 MB draft is folded by the worker, none of it read here', async (ctx) => {
  const drafts = createDraftsRepository(ctx.db!.sql);
  const { doc } = drawing(600_000);
  await drafts.save({ sessionId: 'large', formVersion: 'dz', state: Y.encodeStateAsUpdate(doc) });
  for (let i = 0; i < 5; i++) {
    const before = Y.encodeStateVector(doc);
    (doc.getMap('sketch').get('stroke') as Y.Array<number>).push([i]);
    doc.getText('remarks').insert(0, `${i}`);
    await drafts.append('large', Y.encodeStateAsUpdate(doc, before));
  }
  // The folder hands the fold to the worker: nothing of the draft goes through this thread.
  let loadsHere = 0;
  let folded = 0;
  const folder = new DraftFolder({
    drafts: { ...drafts, load: (id) => (loadsHere++, drafts.load(id)) },
    offload: createYjsOffload(),
    logger,
    runner: (id) => ctx.folds!.fold(id),
    onFolded: () => folded++,
  });
  assert.is(await folder.fold('large'), 'folded');
  assert.is(loadsHere, 0, 'the draft was not read on this thread');
  assert.is(folded, 1);
  const after = (await drafts.load('large'))!;
  assert.is(after.updates.length, 0, 'the appended updates were merged into the base');
  assert.ok(same(after.state, Y.encodeStateAsUpdate(doc)), 'the base is the whole document');
  assert.ok(same(after.stateVector!, Y.encodeStateVector(doc)));
  assert.is(await ctx.folds!.fold('large'), 'nothing', 'nothing left to fold');
  assert.is(await ctx.folds!.fold('absent'), 'missing');
});

folding('what a whole document holds beyond its draft, read by the worker', async (ctx) => {
  const drafts = createDraftsRepository(ctx.db!.sql);
  const { doc } = drawing(200_000);
  await drafts.save({ sessionId: 'unload', formVersion: 'dz', state: Y.encodeStateAsUpdate(doc) });
  assert.is(await ctx.folds!.lacking('unload', Y.encodeStateAsUpdate(doc)), undefined, 'nothing');
  doc.getText('remarks').insert(0, 'unsaved ');
  const lacking = await ctx.folds!.lacking('unload', Y.encodeStateAsUpdate(doc));
  assert.instance(lacking, Uint8Array);
  const rebuilt = new Y.Doc();
  Y.applyUpdate(rebuilt, (await drafts.load('unload'))!.state);
  Y.applyUpdate(rebuilt, lacking as Uint8Array);
  assert.equal(contentOf(Y.encodeStateAsUpdate(rebuilt)), contentOf(Y.encodeStateAsUpdate(doc)));
  assert.is(await ctx.folds!.lacking('absent', Y.encodeStateAsUpdate(doc)), 'missing');
  await drafts.setStatus('unload', 'abandoned');
  assert.is(await ctx.folds!.lacking('unload', Y.encodeStateAsUpdate(doc)), 'closed');
});

folding('a closed draft is never folded', async (ctx) => {
  const drafts = createDraftsRepository(ctx.db!.sql);
  const { doc } = drawing(1_000);
  const signed = Y.encodeStateAsUpdate(doc);
  await drafts.save({ sessionId: 'closed', formVersion: 'dz', state: signed });
  const before = Y.encodeStateVector(doc);
  doc.getText('remarks').insert(0, 'late ');
  await drafts.append('closed', Y.encodeStateAsUpdate(doc, before));
  await drafts.setStatus('closed', 'finalized');
  assert.is(await ctx.folds!.fold('closed'), 'closed');
  assert.ok(same((await drafts.load('closed'))!.state, signed), 'the signed state stays');
});

offloading.run();
log.run();
writing.run();
folding.run();
