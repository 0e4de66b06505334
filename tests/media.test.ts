/**
 * Photos and papers on a constat, end to end on PostgreSQL + Redis, once with the embedded file
 * store (uploads served by the server) and once with S3 (S3Proxy behind a relay the test can
 * shut): a slot, the upload, the entry in the document, the checks before signing (hash, type,
 * size, count, owner, presence), the finalized event and GraphQL listing the files with URLs
 * that give back the very bytes, write-once files, and the store down at upload and at
 * finalization. The cleanup of abandoned uploads and orphans runs against the same database
 * and store.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash, randomBytes } from 'node:crypto';
import path from 'node:path';
import postgres from 'postgres';
import { pino } from 'pino';
import {
  gql,
  startTestServer,
  token,
  type TestServer,
  type Pair,
  openPair,
} from './support/server.js';
import { connectBoth, waitFor, type Device } from './support/device.js';
import {
  ABANDON_SESSION,
  finalizeConstat,
  newDeviceKey,
  registerKey,
  signConstat,
  signHash,
  sleep,
} from './support/signing.js';
import { setUp } from './support/suite.js';
import { metric } from './support/graphql.js';
import { s3ServerEnv } from './support/s3.js';
import { tcpGate, type TcpGate } from './support/tcp-gate.js';
import { fillConstat } from './support/signing.js';
import {
  attachFile,
  recordAttachment,
  requestUpload,
  uploadBytes,
  type AttachmentEntry,
  type UploadSlot,
} from '../scripts/sim/attach.js';
import { makePhoto } from '../scripts/sim/photo.js';
import { contentHash } from '../constat/content-hash.js';
import type { MediaStore } from '../media/media-store.js';
import { FileMediaStore } from '../media/file-store.js';
import { S3MediaStore } from '../media/s3-store.js';
import { AttachmentService, attachmentKey } from '../media/attachment-service.js';
import { createAttachmentsRepository } from '../persistence/attachments-repository.js';

const MAX_PER_PARTY = 4;
const MAX_BYTES = 400_000;
const TAKEN_AT = new Date('2026-11-30T09:41:07Z');
const GPS = { lat: 36.752887, lon: 3.042048 };

interface Ctx {
  server: TestServer;
  sql: postgres.Sql;
  gate: TcpGate | undefined;
  store: MediaStore;
  devices: Device[];
}

const ATTACHMENTS = `id role section kind contentType byteSize sha256 status problem url takenAt exifTakenAt exifGps { lat lon }`;
const SESSION_ATTACHMENTS = `query S($id: ID!) { session(id: $id) { attachments { ${ATTACHMENTS} } } }`;
const CONSTAT_ATTACHMENTS = `query C($id: ID!) { constat(id: $id) { contentHash attachments { ${ATTACHMENTS} } } }`;

interface AttachmentView {
  id: string;
  role: string | null;
  section: string;
  kind: string;
  contentType: string;
  byteSize: number;
  sha256: string;
  status: string;
  problem: string | null;
  url: string | null;
  takenAt: string | null;
  exifTakenAt: string | null;
  exifGps: { lat: number; lon: number } | null;
}

const photo = (byteSize = 120_000) => makePhoto({ byteSize, takenAt: TAKEN_AT, gps: GPS });
const sha = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

async function openDevices(ctx: Ctx): Promise<{ pair: Pair; a: Device; b: Device }> {
  const pair = await openPair(ctx.server.url);
  const { a, b } = await connectBoth(ctx.server, pair, ctx.devices);
  return { pair, a, b };
}

async function sessionAttachments(ctx: Ctx, pair: Pair): Promise<AttachmentView[]> {
  const res = await gql(ctx.server.url, pair.tokenA, SESSION_ATTACHMENTS, { id: pair.sessionId });
  if (res.errors) throw new Error(JSON.stringify(res.errors));
  return res.data!.session.attachments as AttachmentView[];
}

/** Fills the form, then both sign; resolves with B's answer (errors included). */
async function fillAndSign(ctx: Ctx, pair: Pair, a: Device, b: Device) {
  const same = () => contentHash(a.doc) === contentHash(b.doc);
  await fillConstat(a, b, same);
  const hash = contentHash(a.doc);
  const keys = { A: newDeviceKey(), B: newDeviceKey() };
  await registerKey(ctx.server.url, pair.tokenA, keys.A);
  await registerKey(ctx.server.url, pair.tokenB, keys.B);
  return signConstat(
    ctx.server.url,
    pair.tokenA,
    pair.sessionId,
    hash,
    signHash(keys.A, pair.sessionId, 'A', hash),
  );
}

function fieldErrors(res: { errors?: Array<{ extensions?: Record<string, unknown> }> }) {
  return (res.errors?.[0]?.extensions?.fieldErrors ?? []) as Array<{
    path: string;
    code: string;
    message: string;
  }>;
}

/** Waits until B's document holds what A recorded (and the reverse). */
async function converge(a: Device, b: Device): Promise<void> {
  await waitFor(
    () => contentHash(a.doc) === contentHash(b.doc),
    10_000,
    'devices did not converge',
  );
}

/**
 * A slot declared for `file` (its size and hash; `kind`, and a type that may differ from the
 * bytes), and the document entry that names it: tests then upload what they choose.
 */
async function slotFor(
  ctx: Ctx,
  bearer: string,
  sessionId: string,
  file: { bytes: Uint8Array; sha256: string; kind: string; contentType?: string },
): Promise<{ slot: UploadSlot; entry: AttachmentEntry }> {
  const declared = {
    kind: file.kind,
    contentType: file.contentType ?? 'image/jpeg',
    byteSize: file.bytes.byteLength,
    sha256: file.sha256,
  };
  const res = await requestUpload(ctx.server.url, bearer, sessionId, declared);
  if (res.errors) throw new Error(`requestUpload: ${JSON.stringify(res.errors)}`);
  const slot = res.data!.requestUpload;
  return { slot, entry: { id: slot.attachmentId, ...declared } };
}

const VARIANTS = [
  { name: 'files', s3: false },
  { name: 's3', s3: true },
] as const;

for (const variant of VARIANTS) {
  const test = suite<Ctx>(`media (${variant.name})`, { devices: [] } as unknown as Ctx);
  setUp(test, async (ctx) => {
    let env: Record<string, string> = {};
    if (variant.s3) {
      const endpoint = new URL(process.env.S3_ENDPOINT ?? 'http://missing-s3-endpoint:1');
      ctx.gate = await tcpGate({ host: endpoint.hostname, port: Number(endpoint.port) });
      env = await s3ServerEnv(`http://127.0.0.1:${ctx.gate.port}`);
    }
    ctx.server = await startTestServer({
      env: {
        ...env,
        MEDIA_MAX_PER_PARTY: String(MAX_PER_PARTY),
        MEDIA_MAX_BYTES: String(MAX_BYTES),
        // The cleanup is driven by the test itself.
        MEDIA_CLEANUP_INTERVAL_MS: String(24 * 3600_000),
      },
    });
    ctx.sql = postgres(ctx.server.databaseUrl!, { max: 2, onnotice: () => {} });
    ctx.store = variant.s3
      ? new S3MediaStore({
          endpoint: env.S3_ENDPOINT,
          bucket: env.S3_BUCKET!,
          region: env.S3_REGION!,
          accessKeyId: env.S3_ACCESS_KEY_ID,
          secretAccessKey: env.S3_SECRET_ACCESS_KEY,
          forcePathStyle: true,
        })
      : new FileMediaStore({
          root: path.join(ctx.server.dataDir, 'media'),
          urlSecret: 'unused-for-reading',
          baseUrl: () => ctx.server.url,
        });
  });
  test.after.each((ctx) => {
    ctx.gate?.open();
    for (const d of ctx.devices.splice(0)) d.destroy();
  });
  test.after(async (ctx) => {
    await ctx.sql?.end({ timeout: 5 });
    await ctx.store?.close();
    await ctx.server?.stop();
    await ctx.gate?.close();
  });

  test('upload, check, sign: the finalized event and GraphQL list the file, its URL gives back the bytes', async (ctx) => {
    const damage = photo();
    const scan = makePhoto({ byteSize: 50_000 });
    const f = await finalizeConstat(ctx.server, {
      beforeSigning: async ({ a, b, pair }) => {
        await attachFile(ctx.server.url, pair.tokenA, pair.sessionId, a.doc, 'vehicleA', {
          kind: 'damage',
          ...damage,
          takenAt: TAKEN_AT.toISOString(),
        });
        await attachFile(ctx.server.url, pair.tokenB, pair.sessionId, b.doc, 'accident', {
          kind: 'scene',
          ...scan,
        });
      },
    });
    // The event in the outbox names both files, with the hash the content (and signatures) hold.
    const [row] = await ctx.sql<{ payload: { data: Record<string, unknown> } }[]>`
      select payload from outbox where message_key = ${f.constatId} limit 1
    `;
    const data = row!.payload.data as {
      content: { vehicleA: { attachments: Record<string, AttachmentEntry> } };
      attachments: Array<{
        id: string;
        role: string;
        sha256: string;
        url: string;
        byteSize: number;
        kind: string;
        section: string;
        exif?: unknown;
      }>;
    };
    assert.is(data.attachments.length, 2);
    const listed = data.attachments.find((x) => x.kind === 'damage')!;
    assert.is(listed.sha256, damage.sha256);
    assert.is(listed.role, 'A');
    assert.is(listed.section, 'vehicleA');
    assert.equal(data.content.vehicleA.attachments[listed.id]!.sha256, damage.sha256);
    assert.equal(listed.exif, { takenAt: '2026-11-30T09:41:07', gps: GPS });
    const scene = data.attachments.find((x) => x.kind === 'scene')!;
    assert.is(scene.role, 'B', 'the accident section records who uploaded');
    // The event's URL gives the very bytes, as an insurer would check them.
    const fromEvent = new Uint8Array(await (await fetch(listed.url)).arrayBuffer());
    assert.is(sha(fromEvent), damage.sha256);

    // An insurer of the constat sees the same through GraphQL, with fresh URLs.
    const insurer = await token(`staff-${f.tag}`, 'desk', { roles: ['insurer:saa'] });
    const res = await gql(ctx.server.url, insurer, CONSTAT_ATTACHMENTS, { id: f.constatId });
    assert.not.ok(res.errors, JSON.stringify(res.errors));
    const views = res.data!.constat.attachments as AttachmentView[];
    assert.is(views.length, 2);
    const view = views.find((v) => v.kind === 'damage')!;
    assert.is(view.status, 'VERIFIED');
    assert.is(view.takenAt, TAKEN_AT.toISOString());
    assert.is(view.exifTakenAt, '2026-11-30T09:41:07');
    assert.equal(view.exifGps, GPS);
    const bytes = new Uint8Array(await (await fetch(view.url!)).arrayBuffer());
    assert.is(sha(bytes), damage.sha256);
    // Counted for operators.
    assert.ok((await metric(ctx.server.url, 'constat_upload_slots_total')) >= 2);
    const metrics = await (await fetch(`${ctx.server.url}/metrics`)).text();
    assert.match(metrics, /^constat_attachment_checks_total\{outcome="verified"\} [1-9]/m);
    const stranger = await token(`stranger-${f.tag}`, 'x');
    const hidden = await gql(ctx.server.url, stranger, CONSTAT_ATTACHMENTS, { id: f.constatId });
    assert.is(hidden.data?.constat ?? null, null);
  });

  test('wrong hash, wrong type and a file never uploaded block signing with field errors', async (ctx) => {
    const { pair, a, b } = await openDevices(ctx);
    // Wrong hash: the slot and the entry say one hash, the bytes have another (same size).
    const real = photo(60_000);
    const other = photo(60_000);
    const wrongHash = await slotFor(ctx, pair.tokenA, pair.sessionId, { kind: 'damage', ...real });
    assert.is(await uploadBytes(wrongHash.slot, other.bytes), 200);
    recordAttachment(a.doc, 'vehicleA', wrongHash.entry);
    // Wrong type: declared PNG, the bytes are a JPEG (hash and size true).
    const jpeg = photo(30_000);
    const png = await slotFor(ctx, pair.tokenA, pair.sessionId, {
      kind: 'licence',
      ...jpeg,
      contentType: 'image/png',
    });
    assert.is(await uploadBytes(png.slot, jpeg.bytes), 200);
    recordAttachment(a.doc, 'vehicleA', png.entry);
    // Never uploaded.
    const none = await slotFor(ctx, pair.tokenB, pair.sessionId, {
      kind: 'damage',
      ...photo(20_000),
    });
    recordAttachment(b.doc, 'vehicleB', none.entry);
    await converge(a, b);

    const res = await fillAndSign(ctx, pair, a, b);
    assert.is(res.errors?.[0]?.extensions?.code, 'BAD_USER_INPUT', JSON.stringify(res.errors));
    const errors = fieldErrors(res);
    const byId = (id: string) => errors.find((e) => e.path.endsWith(id));
    assert.is(byId(wrongHash.entry.id)?.code, 'attachment_mismatch', JSON.stringify(errors));
    assert.match(byId(wrongHash.entry.id)!.message, /SHA-256/);
    assert.is(byId(png.entry.id)?.code, 'attachment_mismatch');
    assert.match(byId(png.entry.id)!.message, /image\/jpeg, not image\/png/);
    assert.is(byId(none.entry.id)?.code, 'attachment_missing');
    // The app sees the same states.
    const views = await sessionAttachments(ctx, pair);
    const status = Object.fromEntries(views.map((v) => [v.id, v.status]));
    assert.is(status[wrongHash.entry.id], 'MISMATCH');
    assert.is(status[png.entry.id], 'MISMATCH');
    assert.is(status[none.entry.id], 'MISSING');
    assert.ok(
      views.every((v) => v.url === null),
      'no URL for a file that does not count',
    );
  });

  test("an entry that disagrees with its slot, or names the other party's upload, does not count", async (ctx) => {
    const { pair, a, b } = await openDevices(ctx);
    const mine = photo(40_000);
    const entry = await attachFile(ctx.server.url, pair.tokenA, pair.sessionId, a.doc, 'vehicleA', {
      kind: 'damage',
      ...mine,
    });
    // B records A's upload in its own section: the file is fine, the owner is not.
    recordAttachment(b.doc, 'vehicleB', {
      ...entry,
      uploadMs: undefined,
    } as unknown as AttachmentEntry);
    await converge(a, b);
    // And A's entry is edited to claim a bigger size than the slot.
    const big = photo(41_000);
    const bigger = await slotFor(ctx, pair.tokenA, pair.sessionId, { kind: 'damage', ...big });
    assert.is(await uploadBytes(bigger.slot, big.bytes), 200);
    recordAttachment(a.doc, 'vehicleA', { ...bigger.entry, byteSize: big.bytes.byteLength + 1 });
    await converge(a, b);
    const res = await fillAndSign(ctx, pair, a, b);
    const errors = fieldErrors(res);
    const owner = errors.find((e) => e.path === `vehicleB.attachments.${entry.id}`);
    assert.is(owner?.code, 'attachment_mismatch', JSON.stringify(errors));
    assert.match(owner!.message, /uploaded by party A/);
    const size = errors.find((e) => e.path === `vehicleA.attachments.${bigger.entry.id}`);
    assert.is(size?.code, 'attachment_mismatch');
    assert.match(size!.message, /byteSize differs/);
    assert.not.ok(
      errors.some((e) => e.path === `vehicleA.attachments.${entry.id}`),
      "A's own entry counts",
    );
  });

  test("a party writing into the other's attachments is refused (4403) and nothing spreads", async (ctx) => {
    const { pair, a, b } = await openDevices(ctx);
    const file = photo(20_000);
    const { entry } = await slotFor(ctx, pair.tokenB, pair.sessionId, { kind: 'damage', ...file });
    const id = entry.id;
    recordAttachment(b.doc, 'vehicleA', entry);
    await waitFor(() => b.closes.length > 0, 10_000, 'B was not disconnected');
    assert.is(b.closes[0]!.code, 4403);
    await sleep(200);
    const inA = (a.doc.getMap('vehicleA').get('attachments') as { has(k: string): boolean }).has(
      id,
    );
    assert.not.ok(inA, 'the forbidden entry reached party A');
    assert.is((await sessionAttachments(ctx, pair)).length, 0);
  });

  test('too large and too many are refused at the slot; a bigger body is refused at upload', async (ctx) => {
    const { pair } = await openDevices(ctx);
    const base = { kind: 'damage', contentType: 'image/jpeg', sha256: 'a'.repeat(64) };
    const large = await requestUpload(ctx.server.url, pair.tokenA, pair.sessionId, {
      ...base,
      byteSize: MAX_BYTES + 1,
    });
    assert.is(large.errors?.[0]?.extensions?.code, 'TOO_LARGE', JSON.stringify(large.errors));
    const badType = await requestUpload(ctx.server.url, pair.tokenA, pair.sessionId, {
      ...base,
      contentType: 'image/gif',
      byteSize: 10,
    });
    assert.is(badType.errors?.[0]?.extensions?.code, 'BAD_USER_INPUT');
    const badHash = await requestUpload(ctx.server.url, pair.tokenA, pair.sessionId, {
      ...base,
      sha256: 'xyz',
      byteSize: 10,
    });
    assert.is(badHash.errors?.[0]?.extensions?.code, 'BAD_USER_INPUT');
    // Too many: the limit is per party, concurrent requests included.
    const results = await Promise.all(
      Array.from({ length: MAX_PER_PARTY + 2 }, () =>
        requestUpload(ctx.server.url, pair.tokenA, pair.sessionId, { ...base, byteSize: 100 }),
      ),
    );
    const granted = results.filter((r) => !r.errors);
    assert.is(granted.length, MAX_PER_PARTY);
    assert.ok(
      results.filter((r) => r.errors).every((r) => r.errors![0]!.extensions?.code === 'CONFLICT'),
    );
    const forB = await requestUpload(ctx.server.url, pair.tokenB, pair.sessionId, {
      ...base,
      byteSize: 100,
    });
    assert.not.ok(forB.errors, 'the other party has its own allowance');
    // A body bigger than the slot's declared size is refused and nothing is stored.
    const slot = granted[0]!.data!.requestUpload;
    const status = await uploadBytes(slot, randomBytes(200));
    assert.ok(
      status >= 400 && status < 500,
      `a 200-byte body for a 100-byte slot answered ${status}`,
    );
    assert.is(await ctx.store.head(attachmentKey(pair.sessionId, slot.attachmentId)), undefined);
    // A stranger gets no slot.
    const stranger = await token('stranger', 'x');
    const refused = await requestUpload(ctx.server.url, stranger, pair.sessionId, {
      ...base,
      byteSize: 100,
    });
    assert.is(refused.errors?.[0]?.extensions?.code, 'FORBIDDEN');
  });

  test('after finalization: no new slot, and a stored file cannot be overwritten', async (ctx) => {
    const file = photo(30_000);
    let slot: UploadSlot | undefined;
    const f = await finalizeConstat(ctx.server, {
      beforeSigning: async ({ a, pair }) => {
        const declared = await slotFor(ctx, pair.tokenA, pair.sessionId, {
          kind: 'damage',
          ...file,
        });
        slot = declared.slot;
        assert.is(await uploadBytes(slot, file.bytes), 200);
        recordAttachment(a.doc, 'vehicleA', declared.entry);
      },
    });
    const late = await requestUpload(ctx.server.url, f.tokenA, f.sessionId, {
      kind: 'damage',
      contentType: 'image/jpeg',
      byteSize: 100,
      sha256: 'b'.repeat(64),
    });
    // GraphQL reports a finalized session as CONFLICT with the constat id (docs/graphql.md).
    assert.is(late.errors?.[0]?.extensions?.code, 'CONFLICT', JSON.stringify(late.errors));
    assert.is(late.errors?.[0]?.extensions?.constatId, f.constatId);
    // The slot's URL is still within its lifetime: a second PUT must not replace the file.
    const forged = photo(30_000);
    const status = await uploadBytes(slot!, forged.bytes);
    assert.ok(status === 409 || status === 412, `overwrite answered ${status}`);
    const stored = await ctx.store.get(attachmentKey(f.sessionId, slot!.attachmentId));
    assert.is(sha(stored!), file.sha256);
  });

  if (!variant.s3) {
    test('the file store hands out URLs with the origin the caller used', async (ctx) => {
      const { pair } = await openDevices(ctx);
      const viaName = ctx.server.url.replace('127.0.0.1', 'localhost');
      const file = photo(10_000);
      const res = await requestUpload(viaName, pair.tokenA, pair.sessionId, {
        kind: 'damage',
        contentType: 'image/jpeg',
        byteSize: file.bytes.byteLength,
        sha256: file.sha256,
      });
      const slot = res.data!.requestUpload;
      assert.ok(slot.url.startsWith(`${viaName}/v1/media/`), slot.url);
      assert.is(await uploadBytes(slot, file.bytes), 200);
    });
  }

  if (variant.s3) {
    test('store down at upload time: a clear error, no slot recorded; fine again once back', async (ctx) => {
      const { pair } = await openDevices(ctx);
      const file = photo(20_000);
      const ask = () =>
        requestUpload(ctx.server.url, pair.tokenA, pair.sessionId, {
          kind: 'damage',
          contentType: 'image/jpeg',
          byteSize: file.bytes.byteLength,
          sha256: file.sha256,
        });
      ctx.gate!.shut();
      const down = await ask();
      assert.is(down.errors?.[0]?.extensions?.code, 'UNAVAILABLE', JSON.stringify(down.errors));
      assert.match(down.errors![0]!.message, /media store is unreachable/);
      const [{ n } = { n: -1 }] = await ctx.sql<
        { n: number }[]
      >`select count(*)::int as n from attachments where session_id = ${pair.sessionId}`;
      assert.is(n, 0, 'a slot was recorded while the store was down');
      ctx.gate!.open();
      const up = await ask();
      assert.not.ok(up.errors, JSON.stringify(up.errors));
      assert.is(await uploadBytes(up.data!.requestUpload, file.bytes), 200);
    });

    test('store down at finalization: finalization waits and completes once it is back', async (ctx) => {
      const file = photo(30_000);
      let downAt = 0;
      const pending = finalizeConstat(ctx.server, {
        beforeSigning: async ({ a, pair }) => {
          await attachFile(ctx.server.url, pair.tokenA, pair.sessionId, a.doc, 'vehicleA', {
            kind: 'damage',
            ...file,
          });
        },
        beforeSecondSignature: async ({ sessionId, tokenA }) => {
          // A's signature checked the file; the store now goes away before B signs.
          ctx.gate!.shut();
          downAt = Date.now();
          setTimeout(() => ctx.gate!.open(), 3_000);
          void sessionId;
          void tokenA;
        },
      });
      const f = await pending;
      assert.ok(Date.now() - downAt >= 2_500, 'finalized while the store was still down');
      const [row] = await ctx.sql<
        { payload: { data: { attachments: Array<{ sha256: string }> } } }[]
      >`
        select payload from outbox where message_key = ${f.constatId} limit 1
      `;
      assert.equal(
        row!.payload.data.attachments.map((x) => x.sha256),
        [file.sha256],
      );
      const [{ n } = { n: -1 }] = await ctx.sql<
        { n: number }[]
      >`select count(*)::int as n from constats where session_id = ${f.sessionId}`;
      assert.is(n, 1);
    });
  }

  test("cleanup: abandoned sessions' files, unreferenced uploads and orphans go; signed files stay", async (ctx) => {
    // A finalized constat with one referenced file and one upload it never named.
    const kept = photo(20_000);
    const unused = photo(21_000);
    let unusedId = '';
    const f = await finalizeConstat(ctx.server, {
      beforeSigning: async ({ a, pair }) => {
        await attachFile(ctx.server.url, pair.tokenA, pair.sessionId, a.doc, 'vehicleA', {
          kind: 'damage',
          ...kept,
        });
        const declared = await slotFor(ctx, pair.tokenA, pair.sessionId, {
          kind: 'other',
          ...unused,
        });
        unusedId = declared.entry.id;
        assert.is(await uploadBytes(declared.slot, unused.bytes), 200);
      },
    });
    const keptId = (
      await ctx.sql<
        { id: string }[]
      >`select id from attachments where session_id = ${f.sessionId} and sha256 = ${kept.sha256}`
    )[0]!.id;
    // An abandoned session with an upload.
    const { pair, a } = await openDevices(ctx);
    const dropped = await attachFile(
      ctx.server.url,
      pair.tokenA,
      pair.sessionId,
      a.doc,
      'vehicleA',
      { kind: 'damage', ...photo(22_000) },
    );
    const abandoned = await gql(ctx.server.url, pair.tokenA, ABANDON_SESSION, {
      sessionId: pair.sessionId,
    });
    assert.not.ok(abandoned.errors, JSON.stringify(abandoned.errors));
    // A live session's upload, and an object no row knows.
    const live = await openDevices(ctx);
    const liveFile = await attachFile(
      ctx.server.url,
      live.pair.tokenA,
      live.pair.sessionId,
      live.a.doc,
      'vehicleA',
      { kind: 'damage', ...photo(23_000) },
    );
    const orphanKey = attachmentKey('nosession0000', '00000000-0000-4000-8000-000000000000');
    await ctx.store.put(orphanKey, randomBytes(100), 'image/jpeg');

    const service = new AttachmentService(
      ctx.store,
      createAttachmentsRepository(ctx.sql),
      {
        maxBytes: MAX_BYTES,
        maxPerParty: MAX_PER_PARTY,
        uploadTtlSeconds: 60,
        downloadTtlSeconds: 60,
        retentionMs: 0,
      },
      pino({ level: 'silent' }),
    );
    await sleep(1_100); // object times have a one-second grain on some stores
    const result = await service.cleanup();
    assert.ok(result.attachments >= 2, JSON.stringify(result));
    assert.ok(result.orphans >= 1, JSON.stringify(result));
    const exists = async (session: string, id: string) =>
      (await ctx.store.head(attachmentKey(session, id))) !== undefined;
    assert.ok(await exists(f.sessionId, keptId), 'a signed file was deleted');
    assert.not.ok(await exists(f.sessionId, unusedId), 'the unreferenced upload stayed');
    assert.not.ok(
      await exists(pair.sessionId, dropped.id),
      "the abandoned session's upload stayed",
    );
    assert.ok(
      await exists(live.pair.sessionId, liveFile.id),
      "a live session's upload was deleted",
    );
    assert.is(await ctx.store.head(orphanKey), undefined);
    const rows = await ctx.sql<
      { id: string }[]
    >`select id from attachments where id in ${ctx.sql([keptId, unusedId, dropped.id, liveFile.id])}`;
    assert.equal(rows.map((r) => r.id).sort(), [keptId, liveFile.id].sort());
    // The signed file is still served to its insurer.
    const insurer = await token('staff', 'desk', { roles: ['insurer:saa'] });
    const res = await gql(ctx.server.url, insurer, CONSTAT_ATTACHMENTS, { id: f.constatId });
    const view = (res.data!.constat.attachments as AttachmentView[])[0]!;
    assert.is(sha(new Uint8Array(await (await fetch(view.url!)).arrayBuffer())), kept.sha256);
    // A row a constat names is never deleted, even when asked directly.
    assert.not.ok(await createAttachmentsRepository(ctx.sql).remove(keptId));
  });

  test.run();
}
