/**
 * The PDF report of a fixed fixture constat, printed by the real Chromium and read back with
 * poppler: pdftotext finds the French and Arabic labels, the constat id, the content hash and
 * both plates in reading order (A's column before B's), both columns filled, and no liability
 * suggestion; pdftoppm turns page 1 into an image compared with the committed reference
 * (tests/fixtures/report-page1.png) within a tolerance, so a layout change shows up. Also: a
 * missing browser fails the render cleanly and makes the feature unavailable, and hostile
 * field values stay text.
 *
 * Refresh the reference after an intended layout change:
 *   UPDATE_REPORT_REFERENCE=1 npm test -- tests/report-render.test.ts
 * then look at the new PNG before committing it.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PNG } from 'pngjs';
import { pino } from 'pino';
import { BrowserPool, RenderError } from '../report/browser-pool.js';
import { ReportRenderer, verifyUrl } from '../report/report-renderer.js';
import { createReportService } from '../report/report-service.js';
import { chromiumPath } from '../report/chromium.js';
import { FileMediaStore } from '../media/file-store.js';
import { attachmentKey } from '../media/attachment-service.js';
import type { StoredConstat } from '../persistence/constats-repository.js';
import { completeContent, completeVehicle } from './fixtures/constat.js';
import { hashContent } from '../constat/content-hash.js';
import { setUp } from './support/suite.js';

const REFERENCE = path.join(
  path.dirname(fileURLToPath(import.meta.url)),
  'fixtures/report-page1.png',
);
const logger = pino({ level: 'silent' });

/** A finalized constat with nothing random in it: the same PDF layout every run. */
function fixtureConstat(overrides: Partial<StoredConstat> = {}): StoredConstat {
  const content = completeContent();
  content.vehicleB = completeVehicle('B', { circumstances: { '8': true }, circumstanceCount: 1 });
  const contentHash = hashContent(content);
  const signature = (role: string, publicKey: string) => ({
    hash: contentHash,
    signature: Buffer.alloc(64, role === 'A' ? 7 : 9).toString('base64'),
    deviceId: `phone-${role.toLowerCase()}`,
    userId: `driver-${role.toLowerCase()}`,
    publicKey,
    signedAt: role === 'A' ? '2025-03-14T18:02:11.000Z' : '2025-03-14T18:03:40.000Z',
  });
  return {
    id: '3f2c9a1e-8b7d-4c6e-9f10-2a3b4c5d6e7f',
    sessionId: 'session-fixture',
    formVersion: 'dz',
    content,
    canonicalJson: '',
    contentHash,
    snapshot: new Uint8Array(),
    signatures: {
      A: signature('A', Buffer.alloc(32, 1).toString('base64')),
      B: signature('B', Buffer.alloc(32, 2).toString('base64')),
    },
    partyAUser: 'driver-a',
    partyBUser: 'driver-b',
    insurerA: 'saa',
    insurerB: 'trust',
    signedAt: new Date('2025-03-14T18:03:40.000Z'),
    finalizedAt: new Date('2025-03-14T18:03:41.000Z'),
    ...overrides,
  };
}

interface Ctx {
  pool: BrowserPool;
  renderer: ReportRenderer;
  dir: string;
}

const test = suite<Ctx>('report PDF', {} as Ctx);
setUp(test, async (ctx) => {
  const executablePath = chromiumPath();
  if (!executablePath) throw new Error('Chromium is missing: the test runner installs it');
  ctx.dir = mkdtempSync(path.join(os.tmpdir(), 'constat-report-'));
  ctx.pool = new BrowserPool({ executablePath, concurrency: 2, timeoutMs: 60_000, logger });
  ctx.renderer = new ReportRenderer({
    pool: ctx.pool,
    insurerName: (uid) => ({ saa: 'SAA', trust: 'Trust Algeria' })[uid] ?? uid,
    publicUrl: () => 'https://constat.example.dz',
  });
});
test.after(async (ctx) => {
  await ctx.pool?.close();
  if (ctx.dir) rmSync(ctx.dir, { recursive: true, force: true });
});

function pdfText(file: string, ...args: string[]): string {
  return execFileSync('pdftotext', [...args, file, '-'], { encoding: 'utf8' });
}

test('the text: both languages, id, hash, plates in order, both columns, no liability', async (ctx) => {
  const constat = fixtureConstat();
  const file = path.join(ctx.dir, 'report.pdf');
  writeFileSync(file, await ctx.renderer.render(constat));
  const text = pdfText(file);
  for (const fr of ['Circonstances', "Heurtait à l'arrière, même sens, même file", 'Véhicule A']) {
    assert.ok(text.includes(fr), `French label missing: ${fr}`);
  }
  for (const ar of ['الظروف', 'اصطدم بالمؤخرة', 'المركبة', 'لا يشكل اعترافا بالمسؤولية']) {
    assert.ok(text.includes(ar), `Arabic label missing: ${ar}`);
  }
  assert.ok(text.includes('Ce constat ne constitue pas une reconnaissance de responsabilité'));
  const at = (s: string) => {
    const i = text.indexOf(s);
    assert.ok(i >= 0, `${s} missing from the PDF text`);
    return i;
  };
  // Identifiers keep their order (a bidi bug would print 16-115-12345).
  assert.ok(at(constat.id) < at('12345-115-16'), 'the constat id heads the report');
  assert.ok(at('12345-115-16') < at('987-114-31'), "A's plate comes before B's");
  assert.ok(at('987-114-31') < at(constat.contentHash), 'the hash is in the signature block');
  assert.ok(text.includes(verifyUrl('https://constat.example.dz', constat.id, '').slice(0, 60)));
  // Both columns filled: each party's names, insurer and damage.
  for (const value of [
    'Haddad',
    'SAA',
    'Pare-chocs avant',
    'Mansouri',
    'Trust Algeria',
    'Coffre',
  ]) {
    at(value);
  }
  // Key fingerprints of both signatures are printed.
  assert.match(text, /[0-9a-f]{4} [0-9a-f]{4} [0-9a-f]{4} [0-9a-f]{4}/);
  // The liability suggestion is for insurers: never on the drivers' copy.
  for (const word of ['100 %', '50/50', 'responsabilité suggérée', 'rear-end', 'parked']) {
    assert.not.ok(text.includes(word), `liability text "${word}" on the PDF`);
  }
});

test('page 1 matches the reference image within a tolerance', async (ctx) => {
  const file = path.join(ctx.dir, 'page.pdf');
  writeFileSync(file, await ctx.renderer.render(fixtureConstat()));
  const prefix = path.join(ctx.dir, 'page');
  execFileSync('pdftoppm', [
    '-r',
    '40',
    '-gray',
    '-png',
    '-f',
    '1',
    '-l',
    '1',
    '-singlefile',
    file,
    prefix,
  ]);
  const actualBytes = readFileSync(`${prefix}.png`);
  if (process.env.UPDATE_REPORT_REFERENCE === '1' || !existsSync(REFERENCE)) {
    if (process.env.UPDATE_REPORT_REFERENCE !== '1')
      throw new Error(`no reference at ${REFERENCE}: run with UPDATE_REPORT_REFERENCE=1`);
    writeFileSync(REFERENCE, actualBytes);
  }
  const actual = PNG.sync.read(actualBytes);
  const expected = PNG.sync.read(readFileSync(REFERENCE));
  assert.equal([actual.width, actual.height], [expected.width, expected.height], 'page size');
  let differing = 0;
  const pixels = actual.width * actual.height;
  for (let i = 0; i < pixels; i++) {
    // pngjs gives RGBA; the page is grey, so the red channel is the grey level.
    if (Math.abs(actual.data[i * 4]! - expected.data[i * 4]!) > 48) differing++;
  }
  console.log(
    `  page 1: ${((differing / pixels) * 100).toFixed(3)} % of pixels differ from the reference`,
  );
  // The same Chromium gives 0 %; another build's font hinting may move a few glyph edges. A
  // moved block changes far more (the impact outline 7 mm larger: 0.94 %).
  assert.ok(
    differing / pixels < 0.0025,
    `${((differing / pixels) * 100).toFixed(2)} % of page 1 differs from the reference`,
  );
});

test('attachments are listed; a photo whose bytes match the signed hash is drawn, others not', async (ctx) => {
  const media = new FileMediaStore({
    root: path.join(ctx.dir, 'media'),
    urlSecret: 'x'.repeat(32),
    baseUrl: () => 'http://127.0.0.1:1',
  });
  const photo = new PNG({ width: 64, height: 48 });
  photo.data.fill(200);
  const good = PNG.sync.write(photo);
  const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
  const constat = fixtureConstat();
  const entry = (bytes: Uint8Array, kind: string, claimed = sha(bytes)) => ({
    id: '',
    kind,
    contentType: 'image/png',
    byteSize: bytes.byteLength,
    sha256: claimed,
    takenAt: '2025-03-14T17:50:00.000Z',
  });
  const content = constat.content as Record<string, Record<string, unknown>>;
  content.vehicleA!.attachments = { 'photo-a1': { ...entry(good, 'damage'), id: 'photo-a1' } };
  // B's entry names a hash the stored bytes do not have: listed, never drawn.
  content.vehicleB!.attachments = {
    'photo-b1': { ...entry(good, 'registration', 'e'.repeat(64)), id: 'photo-b1' },
  };
  await media.put(attachmentKey(constat.sessionId, 'photo-a1'), good, 'image/png');
  await media.put(attachmentKey(constat.sessionId, 'photo-b1'), good, 'image/png');
  const renderer = new ReportRenderer({
    pool: ctx.pool,
    insurerName: (uid) => uid,
    publicUrl: () => 'https://constat.example.dz',
    media,
  });
  const file = path.join(ctx.dir, 'attachments.pdf');
  writeFileSync(file, await renderer.render(constat));
  const text = pdfText(file);
  for (const s of [
    'Pièces jointes',
    'المرفقات',
    'damage',
    'registration',
    sha(good),
    'e'.repeat(64),
  ]) {
    assert.ok(text.includes(s), `${s} missing`);
  }
  const images = execFileSync('pdfimages', ['-list', file], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => /^\s*\d+\s+\d+\s+image\s+64\s+48\b/.test(l));
  assert.is(images.length, 1, 'exactly the matching photo is drawn');
});

test('a hostile value is printed as text, not markup', async (ctx) => {
  const constat = fixtureConstat();
  (constat.content as { vehicleA: { remarks: string } }).vehicleA.remarks =
    '<img src="http://127.0.0.1:1/x"><script>document.body.innerHTML="pwned"</script>';
  const file = path.join(ctx.dir, 'hostile.pdf');
  writeFileSync(file, await ctx.renderer.render(constat));
  const text = pdfText(file);
  assert.ok(text.includes('<script>'), 'the remark is shown as typed');
  assert.ok(text.includes('Haddad'), 'the page was not replaced');
});

test('renders share one browser and run concurrently', async (ctx) => {
  const launches = ctx.pool.launches;
  const pdfs = await Promise.all([1, 2, 3].map(() => ctx.renderer.render(fixtureConstat())));
  for (const pdf of pdfs) assert.is(Buffer.from(pdf.subarray(0, 5)).toString(), '%PDF-');
  assert.is(ctx.pool.launches, launches, 'no new browser was launched');
});

test('a missing browser fails the render cleanly and the feature reports unavailable', async () => {
  const pool = new BrowserPool({
    executablePath: '/nonexistent/chromium',
    concurrency: 1,
    timeoutMs: 10_000,
    logger,
  });
  try {
    await pool.pdf('<p>x</p>');
    assert.unreachable('rendering without a browser succeeded');
  } catch (err) {
    assert.instance(err, RenderError);
  } finally {
    await pool.close();
  }
  const { service, pool: none } = createReportService(
    {
      chromiumPath: '/nonexistent/chromium',
      concurrency: 1,
      timeoutMs: 1_000,
      pollMs: 1_000,
      urlTtlSeconds: 60,
    },
    {
      documents: undefined as never,
      constats: undefined as never,
      media: undefined as never,
      logger,
      insurerName: (u) => u,
      publicUrl: () => '',
    },
  );
  assert.is(none, undefined);
  assert.is(service.available, false);
  assert.match(service.unavailableReason, /CHROMIUM_PATH=\/nonexistent\/chromium/);
});

test('a render past its timeout fails cleanly, and the pool serves the next one', async () => {
  const pool = new BrowserPool({
    executablePath: chromiumPath()!,
    concurrency: 1,
    // Far below the huge page's print time (over a minute), far above a small page's on a
    // machine busy with other tests (the next render runs on a freshly launched browser).
    timeoutMs: 10_000,
    logger,
  });
  try {
    await pool.warm();
    const stuck = (await pool.pid())!;
    // A page that keeps the printer busy far longer than the timeout.
    const huge = `<p>${'<span>x</span> '.repeat(2_000_000)}</p>`;
    const started = performance.now();
    try {
      await pool.pdf(huge);
      assert.unreachable('the render did not time out');
    } catch (err) {
      assert.instance(err, RenderError);
      assert.match((err as Error).message, /longer than 10000 ms/);
    }
    assert.ok(performance.now() - started < 15_000, 'the caller was answered at the timeout');
    // The stuck browser goes at once with its renderers, rather than printing on beside the
    // next render and starving it of CPU.
    const deadline = Date.now() + 2_000;
    while (liveProcessesOfGroup(stuck).length > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(liveProcessesOfGroup(stuck), [], 'the timed-out browser is gone');
    const pdf = await pool.pdf('<p>next</p>');
    assert.is(Buffer.from(pdf.subarray(0, 5)).toString(), '%PDF-');
  } finally {
    await pool.close();
  }
});

/** Pids of the processes in process group `group` that are not zombies (from /proc). */
function liveProcessesOfGroup(group: number): number[] {
  const live: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // exited meanwhile
    }
    // pid (comm) state ppid pgrp …; comm may hold spaces, so split after its closing paren.
    const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(pgrp) === group && state !== 'Z') live.push(Number(entry));
  }
  return live;
}

test('a browser that crashes is relaunched for the next render', async (ctx) => {
  await ctx.renderer.render(fixtureConstat());
  const before = ctx.pool.launches;
  const pid = await ctx.pool.pid();
  assert.ok(pid, 'a browser is running');
  process.kill(pid, 'SIGKILL');
  await new Promise((r) => setTimeout(r, 500));
  const pdf = await ctx.renderer.render(fixtureConstat());
  assert.is(Buffer.from(pdf.subarray(0, 5)).toString(), '%PDF-');
  assert.is(ctx.pool.launches, before + 1);
});

test.run();
