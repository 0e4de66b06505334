/**
 * The reference app's accessibility, in headless Chromium at 360 × 740 (a small phone):
 *
 * - axe-core (WCAG 2.x A and AA rules) finds nothing on the sign-in, home and constat screens,
 *   in French and in Arabic (right to left): every input and button has an accessible name,
 *   ARIA is valid, contrast is sufficient;
 * - every control a finger uses is at least 44 × 44 px, and nothing is wider than the screen;
 * - the sketch works without a pointer: the toolbar places vehicle A, an arrow and a label from
 *   the keyboard, the focused sketch moves and rotates the selection with the arrow keys and R,
 *   N chooses another element, Delete removes it; each change is announced and reaches the
 *   other phone.
 *
 * Screenshots of each step are saved in .cache/screenshots/web-a11y/.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Page } from 'puppeteer-core';
import { setUp } from './support/suite.js';
import type { TestServer } from './support/server.js';
import { twoPhones, type TwoPhones } from './support/phones.js';
import { axeViolations } from './support/axe.js';
import {
  joinConstat,
  openConstat,
  screenshots,
  signIn,
  waitElements,
  waitSelected,
} from './support/browser.js';

let phones: TwoPhones;
let server: TestServer;
let a: Page;
let b: Page;
let screenshot: Awaited<ReturnType<typeof screenshots>>;

setUp(test, async () => {
  screenshot = await screenshots('web-a11y');
  phones = await twoPhones();
  ({ server, a, b } = phones);
});

test.after(async () => {
  await phones?.close();
});

/**
 * Controls smaller than 44 × 44 px (a checkbox counts with its label), and page overflow. A
 * script as text: the test runner's transpiler would wrap named functions in a helper the page
 * does not have.
 */
const SMALL_TARGETS = `(() => {
  const small = [];
  const name = (el) =>
    el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
    (el.getAttribute('data-path') ? '[' + el.getAttribute('data-path') + ']' : '') +
    (el.getAttribute('data-tool') ? '[' + el.getAttribute('data-tool') + ']' : '');
  const controls = document.querySelectorAll(
    'button, select, textarea, a[href], label.button-like, input:not([type=file])',
  );
  for (const el of controls) {
    const target = el.matches('input[type=checkbox], input[type=radio]') ? el.closest('label') : el;
    if (!target) {
      small.push(name(el) + ' has no label to tap');
      continue;
    }
    const box = target.getBoundingClientRect();
    if (box.width === 0 && box.height === 0) continue; // hidden
    if (box.width < 44 || box.height < 44)
      small.push(name(el) + ' ' + Math.round(box.width) + 'x' + Math.round(box.height));
  }
  if (document.documentElement.scrollWidth > window.innerWidth)
    small.push('the page is ' + document.documentElement.scrollWidth + ' px wide');
  return small;
})()`;

async function smallTargets(page: Page): Promise<string[]> {
  return page.evaluate(SMALL_TARGETS) as Promise<string[]>;
}

async function checkScreen(page: Page, what: string): Promise<void> {
  const found = await axeViolations(page);
  assert.equal(found, [], `${what}: axe found\n${found.join('\n')}`);
  const small = await smallTargets(page);
  assert.equal(small, [], `${what}: too small for a finger: ${small.join(', ')}`);
}

const selected = (page: Page) =>
  page.$eval('#sketch-canvas', (el) => (el as HTMLElement).dataset.selected ?? '');

test('sign-in and home screens: named inputs, large targets, French and Arabic', async () => {
  await a.goto(`${server.url}/app/`);
  await a.waitForSelector('#name');
  await checkScreen(a, 'sign-in');
  await signIn(a, server.url, 'Amina Benali');
  await checkScreen(a, 'home (fr)');
  await a.click('#lang');
  await a.waitForSelector('html[dir="rtl"]');
  await checkScreen(a, 'home (ar)');
  await screenshot(a, 'home-arabic', 'body');
  await a.click('#lang');
  await a.waitForSelector('html[dir="ltr"]');
});

test('the constat screen: every input named, every target large, in both languages', async () => {
  await openConstat(a);
  await signIn(b, server.url, 'Karim Haddad');
  await joinConstat(b, await a.$eval('#join-code-shown', (el) => el.textContent ?? ''));
  await a.waitForSelector('[data-presence="B"][data-here="true"]');
  await checkScreen(a, 'constat (fr)');
  await a.click('#lang');
  await a.waitForSelector('html[dir="rtl"] [data-path="vehicleA.remarks"]');
  await checkScreen(a, 'constat (ar)');
  await a.click('#lang');
  await a.waitForSelector('html[dir="ltr"] [data-path="vehicleA.remarks"]');
});

test('the sketch without a pointer: place, move, rotate, choose and remove from the keyboard', async () => {
  await a.waitForSelector('#sketch-canvas');
  await waitElements(a, 0);
  // The toolbar button, activated from the keyboard, places vehicle A in the centre, facing
  // right: 90°, as the report and the video count (0° = front up, clockwise).
  await a.focus('[data-tool="vehicleA"]');
  await a.keyboard.press('Enter');
  await waitSelected(a, /^vehicleA x 500 · y 300 · 90°$/);
  assert.is(await a.evaluate(() => document.activeElement?.id), 'sketch-canvas');
  // Arrows move it (Shift: further), R rotates it; every step is written to the document.
  for (let i = 0; i < 3; i++) await a.keyboard.press('ArrowRight');
  await a.keyboard.down('Shift');
  await a.keyboard.press('ArrowDown');
  await a.keyboard.up('Shift');
  await a.keyboard.press('r');
  await a.keyboard.press('r');
  await waitSelected(a, /^vehicleA x 530 · y 350 · 120°$/);
  // Announced in the page's language, with the toolbar's word for it.
  const word = await a.$eval('[data-tool="vehicleA"]', (el) => el.textContent ?? '');
  assert.ok(
    (await a.$eval('#sketch-status', (el) => el.textContent ?? '')).endsWith(
      `${word} · x 530 · y 350 · 120°`,
    ),
  );
  // The other phone has it, where the keyboard put it.
  await waitElements(b, 1);
  await screenshot(a, 'keyboard-vehicle-a', '#sketch');

  // An arrow, pointing right (90°), turned back a quarter turn with Shift+R: it points up.
  await a.focus('[data-tool="arrow"]');
  await a.keyboard.press('Space');
  await waitSelected(a, /^arrow x 440 · y 300 · 90°$/);
  await a.keyboard.down('Shift');
  for (let i = 0; i < 6; i++) await a.keyboard.press('KeyR');
  await a.keyboard.up('Shift');
  await waitSelected(a, /^arrow x 440 · y 300 · 0°$/);

  // A label: its text asked in a dialog.
  a.once('dialog', (dialog) => void dialog.accept('Stop'));
  await a.focus('[data-tool="label"]');
  await a.keyboard.press('Enter');
  await waitSelected(a, /^label x 500 · y 300/);
  await waitElements(b, 3);

  // N goes through the elements; Escape deselects; Delete removes the selection.
  const seen = new Set<string>();
  for (let i = 0; i < 3; i++) {
    await a.keyboard.press('n');
    seen.add((await selected(a)).split(' ')[0]!);
  }
  assert.equal([...seen].sort(), ['arrow', 'label', 'vehicleA']);
  await a.keyboard.press('Escape');
  assert.is(await selected(a), '');
  while (!(await selected(a)).startsWith('arrow')) await a.keyboard.press('n');
  await a.keyboard.press('Delete');
  await waitElements(a, 2);
  await waitElements(b, 2);
  await screenshot(a, 'keyboard-sketch-done', '#sketch');

  // Tab leaves the sketch: the keyboard is never trapped in it.
  await a.focus('#sketch-canvas');
  await a.keyboard.press('Tab');
  assert.is.not(await a.evaluate(() => document.activeElement?.id), 'sketch-canvas');
});

test.run();
