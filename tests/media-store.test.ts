/**
 * One contract suite for every media store: the file store under a temporary folder and the S3
 * store against the S3 server of the test run (S3Proxy, or S3_ENDPOINT from the environment).
 * put/get/head/delete, list, presigned (or server-signed) upload and download over real HTTP,
 * and a signed upload that refuses another size.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { serve } from '@hono/node-server';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { Hono } from 'hono';
import type { MediaStore } from '../media/media-store.js';
import { FileMediaStore } from '../media/file-store.js';
import { S3MediaStore } from '../media/s3-store.js';
import { mountMediaRoutes } from '../server/media-routes.js';
import { HTTP_STATUS } from '../server/app.js';
import { ConstatError } from '../constat/errors.js';
import { s3TestStoreOptions } from './support/s3.js';

interface Ctx {
  store: MediaStore;
  prefix: string;
  teardown: () => Promise<void>;
}

async function fileStore(): Promise<Omit<Ctx, 'prefix'>> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'constat-media-'));
  const secret = randomBytes(32).toString('hex');
  let base = '';
  const store = new FileMediaStore({ root, urlSecret: secret, baseUrl: () => base });
  const app = new Hono();
  mountMediaRoutes(app, { store, urlSecret: secret });
  app.onError((err, c) =>
    c.json({ error: err.message }, err instanceof ConstatError ? HTTP_STATUS[err.code] : 500),
  );
  const server = await new Promise<Server>((resolve) => {
    const s = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () =>
      resolve(s as Server),
    );
  });
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    store,
    teardown: async () => {
      await new Promise<void>((r) => server.close(() => r()));
      await rm(root, { recursive: true, force: true });
    },
  };
}

async function s3Store(): Promise<Omit<Ctx, 'prefix'>> {
  const store = new S3MediaStore(await s3TestStoreOptions());
  return { store, teardown: () => store.close() };
}

const VARIANTS = [
  { name: 'files', make: fileStore },
  { name: 's3', make: s3Store },
];

for (const variant of VARIANTS) {
  const test = suite<Ctx>(`media store: ${variant.name}`, {} as Ctx);
  let failure: unknown;
  test.before(async (ctx) => {
    try {
      Object.assign(ctx, await variant.make(), { prefix: `t-${randomBytes(6).toString('hex')}` });
    } catch (err) {
      failure = err;
    }
  });
  test.before.each(() => {
    if (failure) throw failure;
  });
  test.after(async (ctx) => {
    await ctx.teardown?.();
  });

  test('put, head, get, delete', async ({ store, prefix }) => {
    const key = `${prefix}/a/photo.jpg`;
    const body = randomBytes(1000);
    assert.is(await store.head(key), undefined);
    assert.is(await store.get(key), undefined);
    await store.put(key, body, 'image/jpeg');
    assert.equal(await store.head(key), { byteSize: 1000, contentType: 'image/jpeg' });
    assert.ok(Buffer.from((await store.get(key))!).equals(body));
    await store.delete(key);
    assert.is(await store.head(key), undefined);
    await store.delete(key); // deleting twice is not an error
    assert.ok(await store.ready());
  });

  test('list walks a prefix', async ({ store, prefix }) => {
    await store.put(`${prefix}/l/x/1`, new Uint8Array([1]), 'image/png');
    await store.put(`${prefix}/l/y/2`, new Uint8Array([1, 2]), 'image/png');
    await store.put(`${prefix}/other/3`, new Uint8Array([1]), 'image/png');
    const listed = [];
    for await (const o of store.list(`${prefix}/l/`)) listed.push(o);
    assert.equal(listed.map((o) => o.key).sort(), [`${prefix}/l/x/1`, `${prefix}/l/y/2`]);
    assert.equal(listed.map((o) => o.byteSize).sort(), [1, 2]);
    assert.ok(listed.every((o) => Date.now() - o.modifiedAt.getTime() < 60_000));
  });

  test('upload and download through the signed URLs', async ({ store, prefix }) => {
    const key = `${prefix}/up/photo.png`;
    const body = randomBytes(4096);
    const target = await store.uploadTarget(
      key,
      { contentType: 'image/png', byteSize: body.byteLength },
      60,
    );
    const headers = Object.fromEntries(target.headers.map((h) => [h.name, h.value]));
    const put = await fetch(target.url, { method: target.method, headers, body });
    assert.is(put.status, 200, await put.text());
    const got = await fetch(await store.downloadUrl(key, 60));
    assert.is(got.status, 200);
    assert.ok(Buffer.from(await got.arrayBuffer()).equals(body));
    assert.is(got.headers.get('content-type'), 'image/png');
  });

  test('a signed upload refuses another size, and a tampered URL', async ({ store, prefix }) => {
    const key = `${prefix}/up/sized.png`;
    const target = await store.uploadTarget(key, { contentType: 'image/png', byteSize: 10 }, 60);
    const headers = Object.fromEntries(target.headers.map((h) => [h.name, h.value]));
    const bigger = await fetch(target.url, { method: 'PUT', headers, body: randomBytes(20) });
    assert.ok(bigger.status >= 400, `a 20-byte body was accepted (${bigger.status})`);
    const other = target.url.replace('sized.png', 'other.png');
    const tampered = await fetch(other, { method: 'PUT', headers, body: randomBytes(10) });
    assert.is(tampered.status, 403);
    assert.is(await store.head(key), undefined);
    assert.is(await store.head(`${prefix}/up/other.png`), undefined);
  });

  test('an expired download URL is refused', async ({ store, prefix }) => {
    const key = `${prefix}/exp/photo.png`;
    await store.put(key, randomBytes(10), 'image/png');
    const url = await store.downloadUrl(key, 1);
    await new Promise((r) => setTimeout(r, 2_100));
    const res = await fetch(url);
    assert.is(res.status, 403);
  });

  test.run();
}
