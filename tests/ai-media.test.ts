/**
 * The AI service's media access against both stores (a file store under a temporary folder,
 * and S3 on the test run's S3Proxy): verified reads by key and by event attachment, refusal of
 * a swapped file, a wrong size or an oversized object, and content-addressed writes.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, rm } from 'node:fs/promises';
import { randomBytes, randomUUID } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { aiMediaKey, MediaRefused, openAiMedia, sha256Hex, type AiMedia } from '../ai/media.js';
import { attachmentKey } from '../media/attachment-service.js';
import { FileMediaStore } from '../media/file-store.js';
import type { MediaStore } from '../media/media-store.js';
import { S3MediaStore } from '../media/s3-store.js';
import { s3TestStoreOptions } from './support/s3.js';
import { setUp } from './support/suite.js';

interface Ctx {
  media: AiMedia;
  /** The raw store underneath, to plant and swap files as core (or an attacker) would. */
  raw: MediaStore;
  teardown: () => Promise<void>;
}

async function fileVariant(): Promise<Ctx> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'constat-ai-media-'));
  const config = { kind: 'files' as const, root, urlSecret: randomBytes(32).toString('hex') };
  const media = await openAiMedia(config);
  // A second view of the same folder, as core's store would be.
  const raw = new FileMediaStore({ ...config, baseUrl: () => 'http://127.0.0.1' });
  return {
    media,
    raw,
    teardown: async () => {
      await media.close();
      await rm(root, { recursive: true, force: true });
    },
  };
}

async function s3Variant(): Promise<Ctx> {
  const options = await s3TestStoreOptions();
  const media = await openAiMedia({ kind: 's3', ...options });
  const raw = new S3MediaStore(options);
  return {
    media,
    raw,
    teardown: async () => {
      await media.close();
      await raw.close();
    },
  };
}

async function refusal(p: Promise<unknown>): Promise<MediaRefused> {
  try {
    await p;
  } catch (err) {
    if (err instanceof MediaRefused) return err;
    throw err;
  }
  throw new Error('expected the read to be refused');
}

for (const [name, make] of [
  ['files', fileVariant],
  ['s3', s3Variant],
] as const) {
  const test = suite<Ctx>(`ai media: ${name}`, {} as Ctx);
  setUp(test, async (ctx) => {
    Object.assign(ctx, await make());
  });
  test.after(async (ctx) => {
    await ctx.teardown?.();
  });

  test('the store is ready', async ({ media }) => {
    assert.is(await media.ready(), true);
    assert.is(media.kind, name);
  });

  test('reads an attachment the event names, by session and id', async ({ media, raw }) => {
    const sessionId = randomUUID();
    const id = randomUUID();
    const body = randomBytes(3000);
    await raw.put(attachmentKey(sessionId, id), body, 'image/jpeg');
    const read = await media.read({ sessionId, id, sha256: sha256Hex(body), byteSize: 3000 });
    assert.ok(Buffer.from(read).equals(body));
  });

  test('refuses a file whose digest is not the event’s', async ({ media, raw }) => {
    const sessionId = randomUUID();
    const id = randomUUID();
    const signed = randomBytes(2000);
    const swapped = randomBytes(2000);
    await raw.put(attachmentKey(sessionId, id), swapped, 'image/jpeg');
    const err = await refusal(media.read({ sessionId, id, sha256: sha256Hex(signed) }));
    assert.is(err.reason, 'hash_mismatch');
    assert.match(err.message, sha256Hex(swapped));
  });

  test('refuses a size other than the event’s, and one over the limit', async ({ media, raw }) => {
    const sessionId = randomUUID();
    const id = randomUUID();
    const body = randomBytes(5000);
    await raw.put(attachmentKey(sessionId, id), body, 'image/jpeg');
    const sha256 = sha256Hex(body);
    const wrong = await refusal(media.read({ sessionId, id, sha256, byteSize: 4999 }));
    assert.is(wrong.reason, 'size_mismatch');
    const big = await refusal(media.read({ sessionId, id, sha256 }, { maxBytes: 4096 }));
    assert.is(big.reason, 'too_large');
    // The same object within the limit reads.
    const ok = await media.read({ sessionId, id, sha256 }, { maxBytes: 5000 });
    assert.is(ok.byteLength, 5000);
  });

  test('a missing object and a malformed reference are refused', async ({ media }) => {
    const missing = await refusal(
      media.read({ sessionId: randomUUID(), id: randomUUID(), sha256: 'a'.repeat(64) }),
    );
    assert.is(missing.reason, 'missing');
    const bad = await refusal(media.read({ sessionId: '../x', id: 'y', sha256: 'a'.repeat(64) }));
    assert.is(bad.reason, 'invalid_ref');
    const notHex = await refusal(media.read({ key: 'ai/sha256/x', sha256: 'zz' }));
    assert.is(notHex.reason, 'invalid_ref');
  });

  test('put stores content-addressed and reads back verified', async ({ media, raw }) => {
    const body = randomBytes(4096);
    const stored = await media.put(body, 'video/mp4');
    assert.equal(stored, { key: aiMediaKey(sha256Hex(body)), sha256: sha256Hex(body), size: 4096 });
    assert.equal(await raw.head(stored.key), { byteSize: 4096, contentType: 'video/mp4' });
    const again = await media.put(body, 'video/mp4');
    assert.equal(again, stored);
    assert.ok(Buffer.from(await media.read(stored)).equals(body));
  });

  test('a stored object altered afterwards is refused on read', async ({ media, raw }) => {
    const stored = await media.put(randomBytes(1024), 'image/png');
    await raw.put(stored.key, randomBytes(1024), 'image/png');
    const err = await refusal(media.read(stored));
    assert.is(err.reason, 'hash_mismatch');
  });

  test.run();
}
