/**
 * The report's HTML and the verification logic, without a browser: values escaped and
 * direction-isolated, identifiers in `<bdi dir="ltr">`, every box in both languages with both
 * declared counts, no liability suggestion, hostile sketches bounded, key fingerprints, and
 * `verifyConstat` (content hash, file hash, wrong hash, unknown id, a tampered signature).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { generateKeyPairSync, sign } from 'node:crypto';
import { renderReportHtml, keyFingerprint } from '../report/report-template.js';
import { reportInput, attachmentsOf } from '../report/report-renderer.js';
import { sketchSvg } from '../report/sketch-svg.js';
import { verifyConstat } from '../report/verify-page.js';
import type { StoredConstat } from '../persistence/constats-repository.js';
import type { StoredDocument } from '../persistence/documents-repository.js';
import { completeContent } from './fixtures/constat.js';
import { hashContent, signingMessage } from '../constat/content-hash.js';

const test = suite('report template');

function keyPair() {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const raw = Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url').toString('base64');
  return { privateKey, raw };
}

function constat(overrides: Partial<StoredConstat> = {}): StoredConstat {
  const content = completeContent();
  const contentHash = hashContent(content);
  const sessionId = 'session-1';
  const signatures: Record<string, unknown> = {};
  for (const role of ['A', 'B'] as const) {
    const key = keyPair();
    signatures[role] = {
      hash: contentHash,
      signature: sign(
        null,
        Buffer.from(signingMessage(sessionId, role, contentHash)),
        key.privateKey,
      ).toString('base64'),
      deviceId: `d-${role}`,
      userId: `u-${role}`,
      publicKey: key.raw,
      signedAt: '2025-03-14T18:00:00.000Z',
    };
  }
  return {
    id: '3f2c9a1e-8b7d-4c6e-9f10-2a3b4c5d6e7f',
    sessionId,
    formVersion: 'dz',
    content,
    canonicalJson: '',
    contentHash,
    snapshot: new Uint8Array(),
    signatures,
    partyAUser: 'u-A',
    partyBUser: 'u-B',
    insurerA: 'saa',
    insurerB: 'trust',
    signedAt: new Date('2025-03-14T18:00:00Z'),
    finalizedAt: new Date('2025-03-14T18:00:01Z'),
    ...overrides,
  };
}

const html = (c: StoredConstat) =>
  renderReportHtml(reportInput(c, { insurerName: (u) => u }, 'https://x/verify', '<svg></svg>'));

test('identifiers are left-to-right isolates; phone text is escaped', () => {
  const c = constat();
  const content = c.content as {
    vehicleA: { remarks: string; policyholder: { lastName: string } };
  };
  content.vehicleA.remarks = '</td><script>alert(1)</script>';
  content.vehicleA.policyholder.lastName = 'حداد';
  const { html: page, footer } = html(c);
  assert.ok(page.includes('<bdi dir="ltr">12345-115-16</bdi>'));
  assert.ok(page.includes(`<bdi dir="ltr">${c.contentHash}</bdi>`));
  assert.ok(page.includes('<bdi>&lt;/td&gt;&lt;script&gt;alert(1)&lt;/script&gt;</bdi>'));
  assert.not.ok(page.includes('<script>'));
  assert.ok(page.includes('<bdi>حداد</bdi>'));
  assert.ok(footer.includes('pageNumber') && footer.includes(c.id));
});

test('every dz box in French and Arabic, ticks and declared counts of both sides', () => {
  const { html: page } = html(constat());
  assert.is((page.match(/<td class="num">/g) ?? []).length, 23);
  assert.ok(page.includes('Ouvrait une portière') && page.includes('كان يفتح باب المركبة'));
  assert.is((page.match(/class="box bA on"/g) ?? []).length, 1, "A's one tick");
  assert.is((page.match(/class="box bB on"/g) ?? []).length, 0, 'B ticked nothing');
  assert.match(page, /<td class="tick"><bdi dir="ltr">1<\/bdi><\/td><td colspan="3"/);
  assert.ok(page.includes('عدد الخانات المؤشر عليها'));
});

test('the drivers’ copy carries no liability suggestion', () => {
  const { html: page } = html(constat());
  for (const word of ['liabilit', 'shareA', '100 %', '50/50', 'rear-end']) {
    assert.not.ok(page.includes(word), word);
  }
});

test('a hostile sketch is bounded and escaped', () => {
  const elements: Record<string, unknown> = {};
  for (let i = 0; i < 400; i++) {
    elements[`e${i}`] = { kind: 'stroke', points: Array.from({ length: 10_000 }, (_, j) => j % 7) };
  }
  elements.bad = { kind: 'label', x: NaN, y: Infinity, text: '<foreignObject>' };
  elements.huge = { kind: 'vehicle', vehicle: 'B', x: 1e308, y: -1e308, rotation: 1e12 };
  const svg = sketchSvg(elements);
  assert.ok(svg.length < 1_000_000, `the sketch stays bounded: ${svg.length} bytes`);
  assert.not.ok(svg.includes('<foreignObject>'));
  assert.not.ok(/NaN|Infinity|e\+/.test(svg), 'no non-finite or exponent coordinates');
  assert.is(sketchSvg('not a map').includes('<svg'), true);
});

test('key fingerprints: 16 bytes of the key’s SHA-256 in groups of four', () => {
  assert.match(
    keyFingerprint(Buffer.alloc(32, 1).toString('base64')),
    /^([0-9a-f]{4} ){7}[0-9a-f]{4}$/,
  );
  assert.is(keyFingerprint(undefined), '—');
});

test('attachments are listed from the three sections, odd entries tolerated', () => {
  const list = attachmentsOf({
    vehicleA: {
      attachments: {
        a1: { kind: 'damage', contentType: 'image/jpeg', byteSize: 10, sha256: 'ab' },
      },
    },
    accident: { attachments: { s1: { kind: 'scene' }, junk: 'x' } },
    vehicleB: { attachments: null },
  });
  assert.equal(
    list.map((a) => [a.section, a.id, a.kind]),
    [
      ['accident', 's1', 'scene'],
      ['accident', 'junk', ''],
      ['vehicleA', 'a1', 'damage'],
    ],
  );
});

test('verifyConstat: content hash, file hash, wrong hash, unknown id, tampered signature', () => {
  const c = constat();
  const doc: StoredDocument = {
    constatId: c.id,
    version: 1,
    template: 't',
    mediaKey: 'k',
    contentType: 'application/pdf',
    byteSize: 1,
    sha256: 'a'.repeat(64),
    createdAt: new Date(),
  };
  const ok = verifyConstat(c, [doc], c.contentHash);
  assert.ok(ok.match && ok.matched === 'content');
  assert.equal(ok.match && ok.signatures.map((s) => s.valid), [true, true]);
  const byFile = verifyConstat(c, [doc], doc.sha256);
  assert.ok(byFile.match && byFile.matched === 'document' && byFile.documentVersion === 1);
  assert.equal(verifyConstat(c, [doc], 'b'.repeat(64)), { match: false });
  assert.equal(verifyConstat(null, [], c.contentHash), { match: false });
  const sigs = c.signatures as Record<string, { signature: string }>;
  const flipped = Buffer.from(sigs.B!.signature, 'base64');
  flipped[0] = flipped[0]! ^ 1;
  sigs.B!.signature = flipped.toString('base64');
  const tampered = verifyConstat(c, [], c.contentHash);
  assert.equal(tampered.match && tampered.signatures.map((s) => s.valid), [true, false]);
});

test.run();
