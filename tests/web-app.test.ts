/**
 * The reference app in a real browser: two headless Chromium pages, each with storage of its
 * own (two phones), 360 px wide, against a real server (PostgreSQL, Redis hub) in development
 * mode. One scenario, step by step: A signs in and opens a constat; B joins by the code and
 * works in Arabic; both fill their parts and see each other's edits; both sketch; a photo is
 * attached; a write into A's column forced from B's page is refused visibly; A goes offline,
 * edits, comes back and both converge; both sign; both see the constat finalized and it is
 * listed in history. Each step leaves a screenshot in .cache/screenshots/web-app/.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import puppeteer, { type Browser, type ElementHandle, type Page } from 'puppeteer-core';
import { chromiumPath } from '../scripts/system-packages.js';
import { setUp } from './support/suite.js';
import { startTestServer, gql, type TestServer } from './support/server.js';

const SHOTS = path.resolve('.cache/screenshots/web-app');
const STEP_TIMEOUT = 20_000;

let server: TestServer;
let browser: Browser;
let profile: string;
let a: Page;
let b: Page;
let joinCode = '';
let constatId = '';
let shot = 0;

/** Saves what the phone's screen shows, scrolled to `selector` first. */
async function screenshot(page: Page, name: string, selector?: string): Promise<void> {
  shot += 1;
  if (selector) await page.$eval(selector, (el) => el.scrollIntoView({ block: 'start' }));
  await page.screenshot({
    path: path.join(SHOTS, `${String(shot).padStart(2, '0')}-${name}.png`) as `${string}.png`,
  });
}

async function newPhone(): Promise<Page> {
  const context = await browser.createBrowserContext();
  const page = await context.newPage();
  await page.setViewport({ width: 360, height: 740, deviceScaleFactor: 1, hasTouch: true });
  page.setDefaultTimeout(STEP_TIMEOUT);
  page.on('pageerror', (err) => console.error(`[page error] ${String(err)}`));
  return page;
}

async function signIn(page: Page, name: string): Promise<void> {
  await page.goto(`${server.url}/app/`);
  await page.waitForSelector('#name');
  await page.type('#name', name);
  await page.click('#sign-in');
  await page.waitForSelector('#open');
}

/** Types into the field at a document path, as a person would. */
async function fill(page: Page, docPath: string, text: string): Promise<void> {
  const selector = `[data-path="${docPath}"]`;
  await page.waitForSelector(selector);
  await page.$eval(selector, (el) => el.scrollIntoView({ block: 'center' }));
  await page.click(selector, { count: 3 });
  await page.type(selector, text);
}

async function choose(page: Page, docPath: string, value: string): Promise<void> {
  await page.select(`[data-path="${docPath}"]`, value);
}

/** Waits until the field at a document path shows `value` on that page. */
async function waitValue(page: Page, docPath: string, value: string): Promise<void> {
  await page.waitForFunction(
    (p, v) =>
      (document.querySelector(`[data-path="${p}"]`) as HTMLInputElement | null)?.value === v,
    { timeout: STEP_TIMEOUT },
    docPath,
    value,
  );
}

async function fillColumn(page: Page, root: string, who: Record<string, string>): Promise<void> {
  for (const [field, text] of Object.entries(who)) await fill(page, `${root}.${field}`, text);
}

setUp(test, async () => {
  await rm(SHOTS, { recursive: true, force: true });
  await mkdir(SHOTS, { recursive: true });
  // Development mode (the built-in secret): the app signs in with development tokens.
  server = await startTestServer({ env: { AUTH_JWT_SECRET: '' } });
  profile = await mkdtemp(path.join(os.tmpdir(), 'constat-chromium-'));
  const executablePath = chromiumPath();
  if (!executablePath) throw new Error('Chromium is missing: the test runner installs it');
  browser = await puppeteer.launch({
    executablePath,
    headless: true,
    userDataDir: profile,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  a = await newPhone();
  b = await newPhone();
});

test.after(async () => {
  await browser?.close();
  await server?.stop();
  if (profile) await rm(profile, { recursive: true, force: true });
});

test('A signs in, opens a constat and shows the join code and QR code', async () => {
  await signIn(a, 'Amina Benali');
  await a.click('#open');
  await a.waitForSelector('#join-code-shown');
  joinCode = await a.$eval('#join-code-shown', (el) => el.textContent ?? '');
  assert.match(joinCode, /^\d{6}$/);
  await a.waitForFunction(() =>
    (document.querySelector('#join-qr') as HTMLImageElement)?.src.startsWith('data:image/png'),
  );
  await screenshot(a, 'a-opened-code-and-qr', 'body');
});

test('B switches to Arabic, joins by the code, and both see each other present', async () => {
  await signIn(b, 'Karim Haddad');
  await b.click('#lang');
  assert.is(await b.$eval('html', (el) => el.getAttribute('dir')), 'rtl');
  await b.type('#join-code', joinCode);
  await b.click('#join');
  await b.waitForSelector('[data-presence="A"][data-here="true"]');
  await a.waitForSelector('[data-presence="B"][data-here="true"]');
  // B's own column is editable, A's is read-only on B's page.
  assert.is(
    await b.$eval(
      '[data-path="vehicleA.policyholder.lastName"]',
      (el) => (el as HTMLInputElement).readOnly,
    ),
    true,
  );
  assert.is(
    await b.$eval(
      '[data-path="vehicleB.policyholder.lastName"]',
      (el) => (el as HTMLInputElement).readOnly,
    ),
    false,
  );
  // Circumstances are listed in the session's form version (23 boxes for dz), in Arabic.
  assert.is(await b.$$eval('#vehicleB .boxes li', (items) => items.length), 23);
  assert.match(
    await b.$eval('#vehicleB .boxes li', (el) => el.textContent ?? ''),
    /[\u0600-\u06FF]/,
  );
  await screenshot(b, 'b-joined-arabic', '#presence');
});

test('both fill their parts, edits appear live on the other phone, the plate is checked as typed', async () => {
  await fill(a, 'accident.date', '');
  await a.$eval('[data-path="accident.date"]', (el) => {
    const input = el as HTMLInputElement;
    input.value = new Date(Date.now() - 86_400_000).toISOString().slice(0, 10);
    input.dispatchEvent(new Event('input', { bubbles: true }));
  });
  await a.$eval('[data-path="accident.time"]', (el) => {
    const input = el as HTMLInputElement;
    input.value = '08:45';
    input.dispatchEvent(new Event('input', { bubbles: true }));
  });
  await choose(a, 'accident.place.wilaya', '16');
  await fill(a, 'accident.place.address', 'Rue Didouche Mourad');
  await choose(a, 'accident.injuries', 'no');
  // The shared part typed on A appears on B.
  await waitValue(b, 'accident.place.address', 'Rue Didouche Mourad');
  await fill(b, 'accident.place.commune', 'Alger Centre');
  await waitValue(a, 'accident.place.commune', 'Alger Centre');

  await fillColumn(a, 'vehicleA', {
    'policyholder.lastName': 'Benali',
    'policyholder.firstName': 'Amina',
    'vehicle.make': 'Renault Clio',
    'insurer.policyNumber': 'SAA-2026-0001',
    'driver.lastName': 'Benali',
    'driver.firstName': 'Amina',
    'driver.licenceNumber': 'L-160001',
  });
  // Typed with spaces: the app writes the normalised plate and says it is valid.
  await fill(a, 'vehicleA.vehicle.plate', '12345 115 16');
  await waitValue(a, 'vehicleA.vehicle.plate', '12345-115-16');
  assert.is(await a.$eval('#f-vehicleA-vehicle-plate-check', (el) => el.className), 'ok');
  await choose(a, 'vehicleA.insurer.company', 'saa');
  await a.click('#f-vehicleA-circumstances-1');
  await fill(a, 'vehicleA.circumstanceCount', '1');
  await a.$eval('#f-vehicleA-impactPoint', (el) => el.scrollIntoView({ block: 'center' }));
  const box = await (await a.$('#f-vehicleA-impactPoint'))!.boundingBox();
  await a.mouse.click(box!.x + box!.width / 2, box!.y + 8);
  await a.waitForFunction(() =>
    (document.querySelector('#f-vehicleA-impactPoint') as SVGElement).dataset.point?.endsWith(
      'front',
    ),
  );

  // B's plate in progress is flagged, then invalid wilaya is an error, then fixed.
  await fill(b, 'vehicleB.vehicle.plate', '98765-2');
  assert.is(await b.$eval('#f-vehicleB-vehicle-plate-check', (el) => el.className), 'hint');
  await fill(b, 'vehicleB.vehicle.plate', '98765-219-99');
  assert.is(await b.$eval('#f-vehicleB-vehicle-plate-check', (el) => el.className), 'error');
  await fill(b, 'vehicleB.vehicle.plate', '98765-219-31');
  assert.is(await b.$eval('#f-vehicleB-vehicle-plate-check', (el) => el.className), 'ok');
  await fillColumn(b, 'vehicleB', {
    'policyholder.lastName': 'حداد',
    'policyholder.firstName': 'كريم',
    'vehicle.make': 'Peugeot 208',
    'driver.lastName': 'حداد',
    'driver.firstName': 'كريم',
    'driver.licenceNumber': 'L-310002',
  });
  // A's edits are on B's page, read-only; B's Arabic text is on A's page.
  await waitValue(b, 'vehicleA.vehicle.plate', '12345-115-16');
  await waitValue(a, 'vehicleB.policyholder.lastName', 'حداد');
  await screenshot(a, 'a-filled', '#f-vehicleA-vehicle-make');
  await screenshot(b, 'b-filled-arabic', '#f-vehicleB-vehicle-make');
});

test('signing an incomplete constat shows the server fieldErrors beside the fields', async () => {
  await b.$eval('#sign', (el) => el.scrollIntoView({ block: 'center' }));
  await b.click('#sign');
  await b.waitForSelector('[data-error-for="vehicleB.insurer.company"]');
  assert.ok(await b.$('[data-error-for="vehicleB.insurer.policyNumber"]'));
  assert.ok(await b.$('[data-error-for="vehicleB.circumstanceCount"]'));
  await screenshot(b, 'b-field-errors', '#f-vehicleB-insurer-company');
  await choose(b, 'vehicleB.insurer.company', 'trust');
  await fill(b, 'vehicleB.insurer.policyNumber', 'TR-77');
  await b.click('#f-vehicleB-circumstances-14');
  await fill(b, 'vehicleB.circumstanceCount', '1');
  await waitValue(a, 'vehicleB.insurer.policyNumber', 'TR-77');
});

test('both sketch: a road and vehicle A with the mouse, vehicle B with a finger', async () => {
  await a.$eval('#sketch-canvas', (el) => el.scrollIntoView({ block: 'center' }));
  const canvas = (await (await a.$('#sketch-canvas'))!.boundingBox())!;
  await a.click('[data-tool="road"]');
  await a.mouse.move(canvas.x + 10, canvas.y + canvas.height / 2);
  await a.mouse.down();
  await a.mouse.move(canvas.x + canvas.width / 2, canvas.y + canvas.height / 2, { steps: 5 });
  await a.mouse.move(canvas.x + canvas.width - 10, canvas.y + canvas.height / 2, { steps: 5 });
  await a.mouse.up();
  await a.click('[data-tool="vehicleA"]');
  await a.mouse.click(canvas.x + canvas.width * 0.3, canvas.y + canvas.height * 0.45);
  await a.click('[data-tool="stroke"]');
  await a.mouse.move(canvas.x + 40, canvas.y + 20);
  await a.mouse.down();
  for (let i = 1; i <= 8; i++)
    await a.mouse.move(canvas.x + 40 + i * 12, canvas.y + 20 + (i % 2) * 14);
  await a.mouse.up();

  await b.$eval('#sketch-canvas', (el) => el.scrollIntoView({ block: 'center' }));
  const canvasB = (await (await b.$('#sketch-canvas'))!.boundingBox())!;
  await b.waitForFunction(
    () => document.querySelector('#sketch-canvas')?.getAttribute('data-elements') === '3',
  );
  await b.click('[data-tool="vehicleB"]');
  await b.touchscreen.tap(canvasB.x + canvasB.width * 0.7, canvasB.y + canvasB.height * 0.55);
  // Rotate B's vehicle: select it by touch, then the rotate button.
  await b.touchscreen.tap(canvasB.x + canvasB.width * 0.7, canvasB.y + canvasB.height * 0.55);
  await b.click('[data-action="rotate"]');
  await a.waitForFunction(
    () => document.querySelector('#sketch-canvas')?.getAttribute('data-elements') === '4',
  );
  await screenshot(a, 'a-sketch', '#sketch');
  await screenshot(b, 'b-sketch', '#sketch');
});

test('a photo is attached through the upload flow, or the app says the server has none', async () => {
  const schema = await gql<{ __type: { fields: Array<{ name: string }> } }>(
    server.url,
    await (
      await fetch(`${server.url}/v1/dev/token`, {
        method: 'POST',
        body: JSON.stringify({ user: 'probe', device: 'probe' }),
        headers: { 'content-type': 'application/json' },
      }).then((r) => r.json() as Promise<{ token: string }>)
    ).token,
    `{ __type(name: "Mutation") { fields { name } } }`,
  );
  const uploads = schema.data!.__type.fields.some((f) => f.name === 'requestUpload');
  const photo = path.join(profile, 'damage.png');
  await b.screenshot({
    path: photo as `${string}.png`,
    clip: { x: 0, y: 0, width: 200, height: 150 },
  });
  const input = (await b.$('#photo-pick')) as ElementHandle<HTMLInputElement>;
  await input.uploadFile(photo);
  if (uploads) {
    // Checked by the server (size, hash, type), then shown on both phones.
    await b.waitForSelector('#thumbs figure[data-status="VERIFIED"] img');
    await a.waitForSelector('#thumbs figure[data-status="VERIFIED"] img');
    // A's page shows B's photo, downloaded from the server.
    await a.waitForFunction(() =>
      [...document.querySelectorAll<HTMLImageElement>('#thumbs figure img')].some(
        (img) => img.complete && img.naturalWidth > 0,
      ),
    );
  } else {
    await b.waitForSelector('#photo-message[data-state="unavailable"]');
  }
  await b.$eval('#photos', (el) => el.scrollIntoView({ block: 'center' }));
  await screenshot(b, 'b-photo', '#photos');
});

test("a write into A's column forced from B's page is refused visibly, and B recovers", async () => {
  const target = '[data-path="vehicleA.policyholder.lastName"]';
  // What a hostile user could do with the page's developer tools.
  await b.$eval(target, (el) => el.removeAttribute('readonly'));
  await b.$eval(target, (el) => {
    const input = el as HTMLInputElement;
    input.value = `${input.value}X`;
    input.dispatchEvent(new Event('input', { bubbles: true }));
  });
  await b.waitForSelector('#banner-refused');
  await b.waitForSelector('#banner-closed[data-code="4403"]');
  const text = await b.$eval('#banner-refused', (el) => el.textContent ?? '');
  assert.match(text, /vehicleA/);
  await screenshot(b, 'b-forbidden-write-refused', 'body');
  // A never saw it.
  assert.is(await a.$eval(target, (el) => (el as HTMLInputElement).value), 'Benali');
  // B drops its local copy and starts again from the server's.
  await b.click('#reset-local');
  await b.waitForSelector('[data-presence="A"][data-here="true"]');
  await waitValue(b, 'vehicleA.policyholder.lastName', 'Benali');
  assert.not.ok(await b.$('#banner-closed'));
});

test('A goes offline, edits, comes back: both converge', async () => {
  await a.setOfflineMode(true);
  await a.waitForSelector('#banner-offline');
  await fill(a, 'vehicleA.remarks', 'Le véhicule B a changé de file');
  await fill(a, 'accident.place.address', ', angle rue Larbi Ben Mhidi');
  await fill(b, 'vehicleB.remarks', 'ما كنتش نشوف');
  await screenshot(a, 'a-offline-editing', 'body');
  // Nothing of A's offline edits reached B.
  assert.is(
    await b.$eval('[data-path="vehicleA.remarks"]', (el) => (el as HTMLTextAreaElement).value),
    '',
  );
  await a.setOfflineMode(false);
  await a.waitForFunction(
    () =>
      !document.querySelector('#banner-offline') && !document.querySelector('#banner-reconnecting'),
  );
  await waitValue(b, 'vehicleA.remarks', 'Le véhicule B a changé de file');
  await waitValue(a, 'vehicleB.remarks', 'ما كنتش نشوف');
  const addressA = await a.$eval(
    '[data-path="accident.place.address"]',
    (el) => (el as HTMLInputElement).value,
  );
  await waitValue(b, 'accident.place.address', addressA);
  await screenshot(a, 'a-back-online', '#f-vehicleA-remarks');
});

test('both sign; both see the constat finalized with the same id', async () => {
  for (const page of [a, b]) {
    await page.$eval('#sign', (el) => el.scrollIntoView({ block: 'center' }));
    const hash = await page.$eval('#content-hash', (el) => el.textContent ?? '');
    assert.match(hash, /^[0-9a-f]{64}$/);
    await page.click('#sign');
  }
  await a.waitForSelector('#constat-id');
  await b.waitForSelector('#constat-id');
  constatId = await a.$eval('#constat-id', (el) => el.textContent ?? '');
  assert.is(await b.$eval('#constat-id', (el) => el.textContent ?? ''), constatId);
  assert.match(constatId, /\S{8,}/);
  // Read-only from now on.
  assert.is(
    await a.$eval('[data-path="vehicleA.remarks"]', (el) => (el as HTMLTextAreaElement).readOnly),
    true,
  );
  // The signed report appears once rendered (subscription), on both phones.
  await a.waitForSelector('#finalized #pdf-link', { timeout: 60_000 });
  await b.waitForSelector('#finalized #pdf-link', { timeout: 60_000 });
  const pdf = await a.$eval('#pdf-link', (el) => (el as HTMLAnchorElement).href);
  const res = await fetch(pdf);
  assert.is(res.status, 200);
  assert.is(res.headers.get('content-type'), 'application/pdf');
  await screenshot(a, 'a-finalized', 'body');
  await screenshot(b, 'b-finalized', 'body');
});

test('the constat is listed in history on both phones and opens with its status', async () => {
  for (const page of [a, b]) {
    await page.goto(`${server.url}/app/#/`);
    await page.waitForSelector(`#history li[data-constat="${constatId}"]`);
  }
  await a.click(`#history li[data-constat="${constatId}"] button`);
  await a.waitForSelector('#detail-status');
  assert.is(await a.$eval('#detail-id', (el) => el.textContent), constatId);
  assert.is(await a.$eval('#detail-status', (el) => el.textContent), 'FINALIZED');
  await screenshot(a, 'a-history-detail', 'body');
  await screenshot(b, 'b-history', '#history-card');
});

test.run();
