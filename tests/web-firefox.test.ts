/**
 * The reference app in a second engine: two headless Firefox ESR pages (Debian's
 * `firefox-esr`, driven by puppeteer-core over WebDriver BiDi), each a user context with
 * storage of its own, 360 px wide, against a real server in development mode. The path a
 * constat takes, in Firefox: A opens, B types the code and joins in Arabic, axe (WCAG A/AA)
 * finds nothing on the constat screen in either language, both fill, vehicle A is placed and
 * moved from the keyboard, A loses the network (behind a TCP gate), edits, reloads offline and comes back, both sign with their WebCrypto Ed25519 keys,
 * both see it finalized with the same constat id, it is listed in history. The Chromium suite
 * (web-app.test.ts) covers the rest of the flow; this one proves the app is not Chromium-only.
 * Screenshots of each step are in .cache/screenshots/web-firefox/.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Page } from 'puppeteer-core';
import { setUp } from './support/suite.js';
import type { TestServer } from './support/server.js';
import { twoPhones, type TwoPhones } from './support/phones.js';
import { axeViolations } from './support/axe.js';
import type { TcpGate } from './support/tcp-gate.js';
import {
  COLUMN_A,
  COLUMN_B,
  choose,
  comeBack,
  fill,
  fillAccident,
  fillColumn,
  goOffline,
  joinConstat,
  openConstat,
  openFromHistory,
  reloadOffline,
  screenshots,
  signBoth,
  signIn,
  tickBox,
  valueOf,
  waitElements,
  waitSelected,
  waitValue,
  type TestBrowser,
} from './support/browser.js';

let phones: TwoPhones;
let server: TestServer;
let gate: TcpGate;
/** Where A reaches the server: through the gate. */
let aUrl = '';
let firefox: TestBrowser;
let a: Page;
let b: Page;
let joinCode = '';
let constatId = '';
let screenshot: Awaited<ReturnType<typeof screenshots>>;

setUp(test, async () => {
  screenshot = await screenshots('web-firefox');
  phones = await twoPhones('firefox');
  ({ server, gate, aUrl, a, b, browser: firefox } = phones);
});

test.after(async () => {
  await phones?.close();
});

test('Firefox: A opens a constat, B types the code in Arabic and joins', async () => {
  assert.match(await firefox.browser.version(), /firefox/i);
  await signIn(a, aUrl, 'Amina Benali');
  joinCode = await openConstat(a);
  assert.match(joinCode, /^\d{6}$/);
  await a.waitForFunction(() =>
    (document.querySelector('#join-qr') as HTMLImageElement)?.src.startsWith('data:image/png'),
  );
  await signIn(b, server.url, 'Karim Haddad');
  await b.click('#lang');
  assert.is(await b.$eval('html', (el) => el.getAttribute('dir')), 'rtl');
  await joinConstat(b, joinCode);
  await a.waitForSelector('[data-presence="B"][data-here="true"]');
  await screenshot(a, 'a-opened', 'body');
  await screenshot(b, 'b-joined-arabic', 'body');
});

test('Firefox: axe finds nothing on the constat screen, in French (A) and Arabic (B)', async () => {
  for (const [page, what] of [
    [a, 'constat (fr)'],
    [b, 'constat (ar)'],
  ] as const) {
    const found = await axeViolations(page);
    assert.equal(found, [], `${what}: axe found\n${found.join('\n')}`);
  }
});

test('Firefox: both fill their parts and see each other’s edits', async () => {
  await fillAccident(a);
  await waitValue(b, 'accident.place.address', 'Rue Didouche Mourad');
  await fillColumn(a, 'vehicleA', COLUMN_A);
  await fill(a, 'vehicleA.vehicle.plate', '12345 115 16');
  await waitValue(a, 'vehicleA.vehicle.plate', '12345-115-16');
  await choose(a, 'vehicleA.insurer.company', 'saa');
  await tickBox(a, 'vehicleA', 1);

  await fillColumn(b, 'vehicleB', COLUMN_B);
  await fill(b, 'vehicleB.vehicle.plate', '98765-219-31');
  assert.is(await b.$eval('#f-vehicleB-vehicle-plate-check', (el) => el.className), 'ok');
  await choose(b, 'vehicleB.insurer.company', 'trust');
  await fill(b, 'vehicleB.insurer.policyNumber', 'TR-77');
  await tickBox(b, 'vehicleB', 14);

  await waitValue(b, 'vehicleA.vehicle.plate', '12345-115-16');
  await waitValue(a, 'vehicleB.policyholder.lastName', 'حداد');
  await waitValue(a, 'vehicleB.insurer.policyNumber', 'TR-77');
  await screenshot(a, 'a-filled', '#f-vehicleA-vehicle-make');
  await screenshot(b, 'b-filled-arabic', '#f-vehicleB-vehicle-make');
});

test('Firefox: vehicle A placed and moved from the keyboard, seen on the other phone', async () => {
  // Keys go to the window that has the focus, as on a desktop.
  await a.bringToFront();
  await a.focus('[data-tool="vehicleA"]');
  await a.keyboard.press('Enter');
  await waitSelected(a, /^vehicleA x 500 · y 300 · 90°$/);
  await a.keyboard.press('ArrowLeft');
  await a.keyboard.press('r');
  await waitSelected(a, /^vehicleA x 490 · y 300 · 105°$/);
  await waitElements(b, 1);
  await screenshot(b, 'b-sketch', '#sketch');
});

test('Firefox: A loses the network, edits, reloads offline, comes back: both converge', async () => {
  await goOffline(a, gate);
  await fill(a, 'vehicleA.remarks', 'Hors ligne, puis rechargé');
  await reloadOffline(a, {
    'vehicleA.remarks': 'Hors ligne, puis rechargé',
    'vehicleA.vehicle.plate': '12345-115-16',
  });
  await screenshot(a, 'a-reloaded-offline', 'body');
  assert.is(await valueOf(b, 'vehicleA.remarks'), '');
  await comeBack(a, gate);
  await waitValue(b, 'vehicleA.remarks', 'Hors ligne, puis rechargé');
});

test('Firefox: both sign; both see the constat finalized with the same id', async () => {
  constatId = await signBoth(a, b);
  await screenshot(a, 'a-finalized', 'body');
  await screenshot(b, 'b-finalized', 'body');
});

test('Firefox: the constat is listed in history and opens with its status', async () => {
  assert.equal(await openFromHistory(b, server.url, constatId), {
    id: constatId,
    status: 'FINALIZED',
  });
  await screenshot(b, 'b-history-detail', 'body');
});

test.run();
