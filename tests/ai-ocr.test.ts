/**
 * OCR of the drivers' papers on the real engines and the real pipeline:
 * - each engine on this machine (tesseract.js always; Debian's `tesseract` when installed, which
 *   `npm test` does) reads every field of the clean and degraded specimens (licence,
 *   registration card, insurance certificate; French and Arabic);
 * - through the AI pipeline on a real PostgreSQL and a file media store: one
 *   `dz.ai.ocr_verified.v1` per paper, valid against its schema; papers matching what was typed
 *   are `verified`; a deliberately mistyped licence number is a `mismatch` with both values and
 *   reaches the fraud score; a photo that is not an image is `unreadable`, not a crash; a file
 *   whose SHA-256 is not the event's is refused; a redelivered constat republishes the same
 *   events; the event loop keeps turning while papers are read.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, rm } from 'node:fs/promises';
import { randomBytes, randomUUID } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { createTestDatabase, type TestDatabase } from '../persistence/test-database.js';
import { openEngine, tesseractCommand, type EngineName, type OcrEngine } from '../ai/ocr/engine.js';
import { prepareImage } from '../ai/ocr/normalise.js';
import { readPaper } from '../ai/ocr/reader.js';
import type { OcrData } from '../ai/ocr/ocr-function.js';
import { openAiMedia, sha256Hex, type AiMedia } from '../ai/media.js';
import { createAiCore, type AiCore } from '../ai/service.js';
import { attachmentKey, type FinalizedAttachment } from '../media/attachment-service.js';
import { FileMediaStore } from '../media/file-store.js';
import { createEventValidator } from '../integrations/event-validator.js';
import { cloudEvent, type CloudEvent } from '../integrations/events.js';
import { finalizedData } from './fixtures/finalized.js';
import { specimens, typedAsOnPapers, type Specimen } from './fixtures/ocr/specimens.js';
import { setUp } from './support/suite.js';

const logger = pino({ level: 'silent' });
const CACHE = path.join(os.tmpdir(), 'constat-ocr-test-cache');
const LIMITS = { maxBytes: 15 * 1024 * 1024, maxPixels: 40_000_000 };
const ENGINES: EngineName[] = tesseractCommand({ tesseractPath: undefined })
  ? ['native', 'wasm']
  : ['wasm'];
let all: Specimen[] = [];

for (const name of ENGINES) {
  const test = suite<{ engine: OcrEngine }>(`ai ocr engine: ${name}`, {
    engine: undefined as unknown as OcrEngine,
  });
  setUp(test, async (ctx) => {
    if (all.length === 0) all = await specimens();
    ctx.engine = await openEngine({
      engine: name,
      tesseractPath: undefined,
      concurrency: 1,
      timeoutMs: 300_000,
      cacheDir: CACHE,
    });
  });
  test.after(async (ctx) => {
    await ctx.engine?.close();
  });

  test('it is the engine asked for', ({ engine }) => {
    assert.is(engine.name, name);
    assert.match(engine.version, /^tesseract(\.js)? \d/);
  });

  test('every field of every specimen, clean and degraded', async ({ engine }) => {
    const wrong: string[] = [];
    for (const s of all) {
      const read = await readPaper(engine, s.kind, await prepareImage(s.bytes, LIMITS));
      for (const [field, value] of Object.entries(s.truth)) {
        if (read[field] !== value)
          wrong.push(`${s.name} ${field}: read ${read[field]}, is ${value}`);
      }
    }
    assert.equal(wrong, []);
  });

  test.run();
}

interface Ctx {
  db: TestDatabase;
  root: string;
  media: AiMedia;
  core: AiCore;
}
const test = suite<Ctx>('ai ocr through the pipeline', {} as Ctx);
setUp(test, async (ctx) => {
  if (all.length === 0) all = await specimens();
  ctx.db = await createTestDatabase();
  ctx.root = await mkdtemp(path.join(os.tmpdir(), 'constat-ocr-media-'));
  ctx.media = await openAiMedia({ kind: 'files', root: ctx.root, urlSecret: 'x'.repeat(32) });
  ctx.core = await createAiCore(
    ctx.db.sql,
    {
      retentionDays: 365,
      ocr: {
        enabled: true,
        engine: 'auto',
        tesseractPath: undefined,
        concurrency: 2,
        timeoutMs: 300_000,
        cacheDir: CACHE,
        ...LIMITS,
      },
    },
    logger,
    undefined,
    ctx.media,
  );
  assert.ok(await ctx.core.ocr?.ready(), ctx.core.describe.ocr);
});
test.after(async (ctx) => {
  await ctx.core?.close();
  await ctx.media?.close();
  await ctx.db?.drop();
  if (ctx.root) await rm(ctx.root, { recursive: true, force: true });
});

test('the engine in use is reported', ({ core }) => {
  const expected =
    ENGINES[0] === 'native' ? /^available \(native: tesseract 5/ : /^available \(wasm/;
  assert.match(core.describe.ocr, expected);
});

const raw = (root: string) =>
  new FileMediaStore({ root, urlSecret: 'x'.repeat(32), baseUrl: () => '' });
const specimen = (name: string) => all.find((s) => s.name === name)!;

test('one event per paper: verified, mismatch with both values, unreadable, refused', async (ctx) => {
  const sessionId = randomUUID();
  const attachments: FinalizedAttachment[] = [];
  const attach = async (
    role: 'A' | 'B',
    kind: string,
    stored: Buffer,
    named: Buffer = stored,
    contentType = 'image/jpeg',
  ) => {
    const id = randomUUID();
    // What is in the store (written as core does; or swapped, as an attacker might).
    await raw(ctx.root).put(attachmentKey(sessionId, id), stored, contentType);
    attachments.push({
      id,
      role,
      section: role === 'A' ? 'vehicleA' : 'vehicleB',
      kind,
      contentType,
      byteSize: named.byteLength,
      sha256: sha256Hex(named),
      url: 'http://127.0.0.1/unused',
      urlExpiresAt: new Date(Date.now() + 3600_000).toISOString(),
    });
    return id;
  };
  const aLicence = await attach('A', 'licence', specimen('licence-degraded').bytes);
  const aReg = await attach('A', 'registration', specimen('registration-degraded').bytes);
  const aCert = await attach(
    'A',
    'insurance_certificate',
    specimen('insurance_certificate-clean').bytes,
    undefined,
    'image/png',
  );
  const bLicence = await attach(
    'B',
    'licence',
    specimen('licence-clean').bytes,
    undefined,
    'image/png',
  );
  const bReg = await attach('B', 'registration', randomBytes(20_000));
  // The file in the store is not the one signed: same size, one byte changed.
  const signed = specimen('insurance_certificate-degraded').bytes;
  const swapped = Buffer.from(signed);
  swapped[swapped.length >> 1] = 255 - swapped[swapped.length >> 1]!;
  const bCert = await attach('B', 'insurance_certificate', swapped, signed);
  const typed = typedAsOnPapers();
  const data = {
    ...finalizedData({
      vehicleA: typed,
      vehicleB: { ...typed, driver: { ...typed.driver, licenceNumber: '160823475' } },
    }),
    sessionId,
    attachments,
  };
  const envelope = JSON.stringify(cloudEvent('dz.constat.finalized.v1', data.constatId, data));

  // The event loop keeps turning while papers are read (work is in threads and processes).
  let ticks = 0;
  const ticker = setInterval(() => ticks++, 20);
  const started = performance.now();
  const outcome = await ctx.core.pipeline.process(envelope);
  const elapsed = performance.now() - started;
  clearInterval(ticker);
  assert.ok(ticks >= Math.min(10, elapsed / 200), `${ticks} ticks in ${Math.round(elapsed)} ms`);

  assert.is(outcome.kind, 'processed');
  if (outcome.kind !== 'processed') return;
  assert.equal(outcome.failures, []);
  const validator = createEventValidator();
  for (const e of outcome.results) validator.parse(Buffer.from(JSON.stringify(e)));
  const ocr = outcome.results.filter((e) => e.type === 'dz.ai.ocr_verified.v1');
  assert.is(ocr.length, 6);
  const by = (id: string) =>
    ocr.find((e) => (e.data as OcrData).attachmentId === id)!.data as OcrData;

  for (const id of [aLicence, aReg, aCert]) {
    const d = by(id);
    assert.is(d.verdict, 'verified', `${d.document}: ${JSON.stringify(d.fields)}`);
    assert.is(d.verified, true);
    assert.equal(d.mismatches, []);
  }
  assert.is(by(aLicence).fields.length, 7);

  const mismatch = by(bLicence);
  assert.is(mismatch.verdict, 'mismatch');
  assert.equal(mismatch.mismatches, ['number']);
  assert.equal(
    mismatch.fields.find((f) => f.field === 'number'),
    { field: 'number', typed: '160823475', read: '160823457', similarity: 0.778, match: false },
  );

  const unreadable = by(bReg);
  assert.is(unreadable.verdict, 'unreadable');
  assert.match(unreadable.reason ?? '', /not_an_image/);

  const refused = by(bCert);
  assert.is(refused.verdict, 'unreadable');
  assert.match(refused.reason ?? '', /^photo refused \(hash_mismatch\)/);

  const fraud = outcome.results.find((e) => e.type === 'dz.ai.fraud_scored.v1')!;
  const signals = fraud.data as {
    signals: string[];
    findings: Array<{ name: string; reason: string }>;
  };
  assert.ok(signals.signals.includes('ocr_mismatch'));
  assert.match(
    signals.findings.find((f) => f.name === 'ocr_mismatch')!.reason,
    'B licence number: typed "160823475", read "160823457"',
  );

  // Redelivered: the very same events, from the store.
  const again = await ctx.core.pipeline.process(envelope);
  assert.is(again.kind, 'processed');
  if (again.kind !== 'processed') return;
  assert.equal(
    again.results.map((e: CloudEvent) => e.id),
    outcome.results.map((e: CloudEvent) => e.id),
  );
  assert.equal(again.results, outcome.results);
});

test('a constat without papers publishes no OCR event', async ({ core }) => {
  const data = finalizedData();
  const outcome = await core.pipeline.process(
    JSON.stringify(cloudEvent('dz.constat.finalized.v1', data.constatId, data)),
  );
  assert.is(outcome.kind, 'processed');
  if (outcome.kind !== 'processed') return;
  assert.equal(
    outcome.results.map((e) => e.type),
    ['dz.ai.cost_estimated.v1', 'dz.ai.fraud_scored.v1'],
  );
});

test.run();
