/**
 * The live document's cached content (materialised, canonical JSON, hash) must follow every
 * change under a content root, whatever its origin, and only those.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as Y from 'yjs';
import { ContentCache } from '../sync/content-cache.js';
import {
  CONTENT_ROOTS,
  createSkeleton,
  writeMeta,
  writeSignature,
} from '../constat/constat-doc.js';
import { typeText, writeSection } from '../client/writer.js';
import { contentHash } from '../constat/content-hash.js';
import { completeContent } from './fixtures/constat.js';

function filled(): Y.Doc {
  const doc = new Y.Doc();
  createSkeleton(doc, 'server');
  const content = completeContent();
  for (const root of CONTENT_ROOTS) writeSection(doc, root, content[root], 'test');
  return doc;
}

test('the cached hash is the document hash, and is reused while nothing changes', () => {
  const doc = filled();
  const cache = new ContentCache(doc);
  const first = cache.get();
  assert.is(first.hash, contentHash(doc));
  assert.is(cache.get(), first, 'same object: not recomputed');
});

test('a nested text edit, a deletion and a remote update each invalidate it', () => {
  const doc = filled();
  const cache = new ContentCache(doc);
  let before = cache.get().hash;

  typeText(doc, 'vehicleA', ['policyholder', 'lastName'], 'x');
  assert.is.not(cache.get().hash, before, 'nested text edit');
  assert.is(cache.get().hash, contentHash(doc));

  before = cache.get().hash;
  const sketch = doc.getMap('sketch');
  const key = [...sketch.keys()][0]!;
  doc.transact(() => sketch.delete(key));
  assert.is.not(cache.get().hash, before, 'deletion');
  assert.is(cache.get().hash, contentHash(doc));

  before = cache.get().hash;
  const remote = new Y.Doc();
  Y.applyUpdate(remote, Y.encodeStateAsUpdate(doc));
  typeText(remote, 'vehicleB', ['policyholder', 'lastName'], ' (remote)');
  Y.applyUpdate(doc, Y.encodeStateAsUpdate(remote, Y.encodeStateVector(doc)), 'hub');
  assert.is.not(cache.get().hash, before, 'update applied from elsewhere');
  assert.is(cache.get().hash, contentHash(doc));
});

test('signatures and meta changes keep it', () => {
  const doc = filled();
  const cache = new ContentCache(doc);
  const first = cache.get();
  writeSignature(
    doc,
    'A',
    {
      hash: first.hash,
      signature: 'sig',
      deviceId: 'd',
      userId: 'u',
      publicKey: 'k',
      signedAt: new Date().toISOString(),
    },
    'server',
  );
  writeMeta(
    doc,
    { formVersion: 'dz', sessionId: 's1', createdAt: new Date().toISOString() },
    'server',
  );
  doc.transact(() => doc.getMap('meta').set('constatId', '00000000-0000-4000-8000-000000000000'));
  assert.is(cache.get(), first);
  assert.is(cache.get().hash, contentHash(doc));
});

test.run();
