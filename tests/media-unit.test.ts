/**
 * The pure parts of the media work, without a network: reading attachment entries out of the
 * content (shape errors as field errors), the signed URLs of the file store (what the HMAC
 * covers, expiry), and what the bytes of a file are (SHA-256, sniffed type, EXIF date and GPS).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { readAttachments } from '../constat/attachments.js';
import type { ConstatContent } from '../constat/constat-doc.js';
import { signedMediaPath, verifyMediaRequest } from '../media/signed-url.js';
import { inspectFile, typeMatches } from '../media/inspect-file.js';
import { makePhoto } from '../scripts/sim/photo.js';

const ID = '0b9d3c1e-5f7a-4c2b-9e8d-1a2b3c4d5e6f';
const SHA = 'c'.repeat(64);
const entry = { id: ID, kind: 'damage', contentType: 'image/jpeg', byteSize: 1000, sha256: SHA };

function content(vehicleA: Record<string, unknown>): ConstatContent {
  return {
    accident: {},
    vehicleA: { attachments: vehicleA },
    vehicleB: {},
    sketch: {},
  } as unknown as ConstatContent;
}

test('a well-formed entry is read with its section', () => {
  const { entries, problems } = readAttachments(
    content({ [ID]: { ...entry, takenAt: '2026-11-30T10:00:00Z', gps: { lat: 36.7, lon: 3.1 } } }),
    10_000,
  );
  assert.equal(problems, []);
  assert.equal(entries, [
    {
      section: 'vehicleA',
      ...entry,
      takenAt: '2026-11-30T10:00:00Z',
      gps: { lat: 36.7, lon: 3.1 },
    },
  ]);
});

const BAD: Array<[string, Record<string, unknown>, string]> = [
  ['key not an id', { 'not-a-uuid': entry }, 'vehicleA.attachments.not-a-uuid'],
  ['id differs from key', { [ID]: { ...entry, id: 'x' } }, `vehicleA.attachments.${ID}.id`],
  ['unknown kind', { [ID]: { ...entry, kind: 'selfie' } }, `vehicleA.attachments.${ID}.kind`],
  [
    'unknown type',
    { [ID]: { ...entry, contentType: 'image/gif' } },
    `vehicleA.attachments.${ID}.contentType`,
  ],
  [
    'size not an integer',
    { [ID]: { ...entry, byteSize: 1.5 } },
    `vehicleA.attachments.${ID}.byteSize`,
  ],
  [
    'size over the limit',
    { [ID]: { ...entry, byteSize: 20_000 } },
    `vehicleA.attachments.${ID}.byteSize`,
  ],
  [
    'hash not hex',
    { [ID]: { ...entry, sha256: 'C'.repeat(64) } },
    `vehicleA.attachments.${ID}.sha256`,
  ],
  ['bad date', { [ID]: { ...entry, takenAt: 'yesterday' } }, `vehicleA.attachments.${ID}.takenAt`],
  ['bad gps', { [ID]: { ...entry, gps: { lat: 91, lon: 0 } } }, `vehicleA.attachments.${ID}.gps`],
  ['not an object', { [ID]: 'photo.jpg' }, `vehicleA.attachments.${ID}`],
];

for (const [name, map, path] of BAD) {
  test(`a malformed entry is a field error: ${name}`, () => {
    const { entries, problems } = readAttachments(content(map), 10_000);
    assert.equal(entries, []);
    assert.is(problems.length, 1);
    assert.is(problems[0]!.path, path);
  });
}

test('an attachments value that is not a map is a field error', () => {
  const { problems } = readAttachments(
    {
      accident: { attachments: [1, 2] },
      vehicleA: {},
      vehicleB: {},
      sketch: {},
    } as unknown as ConstatContent,
    10,
  );
  assert.equal(
    problems.map((p) => p.path),
    ['accident.attachments'],
  );
});

const SECRET = 's'.repeat(40);

test('a signed URL verifies for its method, key, type and size only, until it expires', () => {
  const grant = {
    method: 'PUT' as const,
    key: 'attachments/s1/a',
    expires: 2_000,
    contentType: 'image/png',
    byteSize: 10,
  };
  const url = new URL(signedMediaPath(grant, SECRET), 'http://h');
  const key = decodeURIComponent(url.pathname.slice('/v1/media/'.length));
  assert.is(key, 'attachments/s1/a');
  assert.equal(verifyMediaRequest('PUT', key, url.searchParams, SECRET, 1_999), {
    ok: true,
    grant,
  });
  assert.equal(verifyMediaRequest('PUT', key, url.searchParams, SECRET, 2_001), {
    ok: false,
    reason: 'expired',
  });
  assert.equal(verifyMediaRequest('GET', key, url.searchParams, SECRET, 1_000).ok, false);
  assert.equal(
    verifyMediaRequest('PUT', 'attachments/s1/b', url.searchParams, SECRET, 1_000).ok,
    false,
  );
  assert.equal(verifyMediaRequest('PUT', key, url.searchParams, 't'.repeat(40), 1_000).ok, false);
  for (const [name, value] of [
    ['len', '11'],
    ['type', 'image/jpeg'],
    ['exp', '3000'],
  ]) {
    const tampered = new URLSearchParams(url.searchParams);
    tampered.set(name!, value!);
    assert.equal(
      verifyMediaRequest('PUT', key, tampered, SECRET, 1_000),
      { ok: false, reason: 'bad-signature' },
      name,
    );
  }
  const noSig = new URLSearchParams(url.searchParams);
  noSig.delete('sig');
  assert.equal(verifyMediaRequest('PUT', key, noSig, SECRET, 1_000), {
    ok: false,
    reason: 'malformed',
  });
});

test('a generated photo: its hash, sniffed as JPEG, EXIF date and position read back', async () => {
  const photo = makePhoto({
    byteSize: 150_000,
    takenAt: new Date('2026-11-30T08:15:00Z'),
    gps: { lat: -33.5, lon: -70.25 },
  });
  assert.is(photo.bytes.byteLength, 150_000);
  const facts = await inspectFile(photo.bytes);
  assert.is(facts.sha256, createHash('sha256').update(photo.bytes).digest('hex'));
  assert.is(facts.sha256, photo.sha256);
  assert.is(facts.sniffedType, 'image/jpeg');
  assert.equal(facts.exif, { takenAt: '2026-11-30T08:15:00', gps: { lat: -33.5, lon: -70.25 } });
});

test('types are sniffed from magic bytes: PNG, WebP, PDF, HEIC; text is nothing', async () => {
  const png = Buffer.from(
    '89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489',
    'hex',
  );
  assert.is((await inspectFile(png)).sniffedType, 'image/png');
  const webp = Buffer.alloc(32);
  webp.write('RIFF', 0);
  webp.writeUInt32LE(24, 4);
  webp.write('WEBPVP8 ', 8);
  assert.is((await inspectFile(webp)).sniffedType, 'image/webp');
  assert.is(
    (await inspectFile(Buffer.from('%PDF-1.7\n%\xe2\xe3\n1 0 obj\n'))).sniffedType,
    'application/pdf',
  );
  const heic = Buffer.alloc(64);
  heic.writeUInt32BE(24, 0);
  heic.write('ftypheic', 4);
  heic.write('mif1heic', 16);
  // Its boxes after `ftyp` have length 0: the EXIF reader used to loop on them for ever
  // (patches/exifr+7.1.3.patch), which a hostile upload could use to hang the server.
  const facts = await inspectFile(heic);
  assert.is(facts.sniffedType, 'image/heic');
  assert.is(facts.exif, null);
  assert.is((await inspectFile(Buffer.from('<html>not a photo</html>'))).sniffedType, undefined);
  assert.is((await inspectFile(Buffer.from('<html>not a photo</html>'))).exif, null);
});

test('HEIC and HEIF stand for each other; other types must match exactly', () => {
  assert.ok(typeMatches('image/heic', 'image/heif'));
  assert.ok(typeMatches('image/heif', 'image/heic'));
  assert.ok(typeMatches('image/png', 'image/png'));
  assert.not.ok(typeMatches('image/png', 'image/jpeg'));
  assert.not.ok(typeMatches('application/pdf', undefined));
});

test.run();
