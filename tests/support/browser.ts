/**
 * Phones in a real browser for the reference app's tests: headless Chromium (Debian's, found by
 * `chromiumPath()`, over the DevTools protocol) or Firefox ESR (Debian's, over WebDriver BiDi),
 * each phone a browser context with storage of its own,
 * 360 × 740 with touch; helpers that act as a person would (type into the field at a document
 * path, choose, wait for a value) and save screenshots of each step.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { chromiumPath, firefoxPath } from '../../scripts/system-packages.js';

export const STEP_TIMEOUT = 20_000;

export interface TestBrowser {
  browser: Browser;
  /** The browser's fresh profile folder, removed by `close()`. */
  profile: string;
  /** A new phone: a context of its own (storage, IndexedDB, keys). */
  phone(): Promise<Page>;
  close(): Promise<void>;
}

const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export type Engine = 'chromium' | 'firefox';

export interface LaunchOptions {
  /**
   * Chromium only: a Y4M file its fake camera films (permission granted without asking), read
   * when a page starts the camera, so it may be written after the launch.
   */
  camera?: string;
}

export async function launchBrowser(
  engine: Engine = 'chromium',
  options: LaunchOptions = {},
): Promise<TestBrowser> {
  const executablePath = engine === 'firefox' ? firefoxPath() : chromiumPath();
  if (!executablePath) throw new Error(`${engine} is missing: the test runner installs it`);
  const profile = await mkdtemp(path.join(os.tmpdir(), `constat-${engine}-`));
  const browser = await puppeteer.launch(
    engine === 'firefox'
      ? { browser: 'firefox', executablePath, headless: true, userDataDir: profile }
      : {
          executablePath,
          headless: true,
          userDataDir: profile,
          args: [
            ...CHROMIUM_FLAGS,
            ...(options.camera
              ? [
                  '--use-fake-ui-for-media-stream',
                  '--use-fake-device-for-media-stream',
                  `--use-file-for-fake-video-capture=${options.camera}`,
                ]
              : []),
          ],
        },
  );
  return {
    browser,
    profile,
    async phone() {
      const context = await browser.createBrowserContext();
      // Firefox runs input actions on animation frames, which a background tab does not get:
      // each phone has a window of its own there, so both are in the foreground.
      const page = await context.newPage(engine === 'firefox' ? { type: 'window' } : undefined);
      await page.setViewport({ width: 360, height: 740, deviceScaleFactor: 1, hasTouch: true });
      page.setDefaultTimeout(STEP_TIMEOUT);
      page.on('pageerror', (err) => console.error(`[page error] ${String(err)}`));
      return page;
    },
    async close() {
      await browser.close().catch(() => {});
      await rm(profile, { recursive: true, force: true });
    },
  };
}

/** Numbered screenshots of the phone's screen under `.cache/screenshots/<name>/`. */
export async function screenshots(
  name: string,
): Promise<(page: Page, step: string, selector?: string) => Promise<void>> {
  const dir = path.resolve('.cache/screenshots', name);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  let n = 0;
  return async (page, step, selector) => {
    n += 1;
    if (selector) await page.$eval(selector, (el) => el.scrollIntoView({ block: 'start' }));
    const file = path.join(dir, `${String(n).padStart(2, '0')}-${step}.png`) as `${string}.png`;
    await page.screenshot({ path: file });
  };
}

export async function signIn(page: Page, baseUrl: string, name: string): Promise<void> {
  await page.goto(`${baseUrl}/app/`);
  await page.waitForSelector('#name');
  await page.type('#name', name);
  await page.click('#sign-in');
  await page.waitForSelector('#open');
}

/** A opens a constat; returns the join code it shows. */
export async function openConstat(page: Page): Promise<string> {
  await page.click('#open');
  await page.waitForSelector('#join-code-shown');
  return page.$eval('#join-code-shown', (el) => el.textContent ?? '');
}

/** B joins with the code and waits until it sees A connected. */
export async function joinConstat(page: Page, code: string): Promise<void> {
  await page.type('#join-code', code);
  await page.click('#join');
  await page.waitForSelector('[data-presence="A"][data-here="true"]');
}

/** Types into the field at a document path, as a person would. */
export async function fill(page: Page, docPath: string, text: string): Promise<void> {
  const selector = `[data-path="${docPath}"]`;
  await page.waitForSelector(selector);
  await page.$eval(selector, (el) => el.scrollIntoView({ block: 'center' }));
  await page.click(selector, { count: 3 });
  await page.type(selector, text);
}

/** Sets a date or time input (their pickers differ between browsers) and fires `input`. */
export async function setInput(page: Page, docPath: string, value: string): Promise<void> {
  await page.$eval(
    `[data-path="${docPath}"]`,
    (el, v) => {
      const input = el as HTMLInputElement;
      input.value = v;
      input.dispatchEvent(new Event('input', { bubbles: true }));
    },
    value,
  );
}

export async function choose(page: Page, docPath: string, value: string): Promise<void> {
  await page.select(`[data-path="${docPath}"]`, value);
}

/** Waits until the field at a document path shows `value` on that page. */
export async function waitValue(page: Page, docPath: string, value: string): Promise<void> {
  await page.waitForFunction(
    (p, v) =>
      (document.querySelector(`[data-path="${p}"]`) as HTMLInputElement | null)?.value === v,
    // Polled by time, not by animation frame: a page in a background tab gets few frames.
    { timeout: STEP_TIMEOUT, polling: 100 },
    docPath,
    value,
  );
}

export async function fillColumn(
  page: Page,
  root: string,
  fields: Record<string, string>,
): Promise<void> {
  for (const [field, text] of Object.entries(fields)) await fill(page, `${root}.${field}`, text);
}

/** The accident section, complete: yesterday 08:45 in Algiers, no injuries. */
export async function fillAccident(page: Page): Promise<void> {
  await setInput(
    page,
    'accident.date',
    new Date(Date.now() - 86_400_000).toISOString().slice(0, 10),
  );
  await setInput(page, 'accident.time', '08:45');
  await choose(page, 'accident.place.wilaya', '16');
  await fill(page, 'accident.place.address', 'Rue Didouche Mourad');
  await choose(page, 'accident.injuries', 'no');
}

/** What each driver types into their column (the plate, insurer and boxes apart). */
export const COLUMN_A = {
  'policyholder.lastName': 'Benali',
  'policyholder.firstName': 'Amina',
  'vehicle.make': 'Renault Clio',
  'insurer.policyNumber': 'SAA-2026-0001',
  'driver.lastName': 'Benali',
  'driver.firstName': 'Amina',
  'driver.licenceNumber': 'L-160001',
};
export const COLUMN_B = {
  'policyholder.lastName': 'حداد',
  'policyholder.firstName': 'كريم',
  'vehicle.make': 'Peugeot 208',
  'driver.lastName': 'حداد',
  'driver.firstName': 'كريم',
  'driver.licenceNumber': 'L-310002',
};

/** Ticks one circumstance box and declares the count. */
export async function tickBox(page: Page, root: string, box: number): Promise<void> {
  await page.click(`#f-${root}-circumstances-${box}`);
  await fill(page, `${root}.circumstanceCount`, '1');
}

/** Signs on this phone ("I have read and I sign"). */
export async function sign(page: Page): Promise<void> {
  await page.$eval('#sign', (el) => el.scrollIntoView({ block: 'center' }));
  await page.click('#sign');
}

/** Waits until the sketch on that page holds `n` elements. */
export async function waitElements(page: Page, n: number): Promise<void> {
  await page.waitForFunction(
    (count) => document.querySelector('#sketch-canvas')?.getAttribute('data-elements') === count,
    { timeout: STEP_TIMEOUT, polling: 100 },
    String(n),
  );
}

/** Waits until the sketch's selection (`vehicleA x 500 · y 300 · 90°`) matches `pattern`. */
export async function waitSelected(page: Page, pattern: RegExp): Promise<void> {
  await page.waitForFunction(
    (source) =>
      new RegExp(source).test(
        (document.querySelector('#sketch-canvas') as HTMLElement | null)?.dataset.selected ?? '',
      ),
    { timeout: STEP_TIMEOUT, polling: 100 },
    pattern.source,
  );
}

/**
 * Both phones sign (each after seeing the content hash it signs); returns the constat id once
 * both show it finalized, the same on both.
 */
export async function signBoth(a: Page, b: Page): Promise<string> {
  for (const page of [a, b]) {
    await page.waitForFunction(
      () => /^[0-9a-f]{64}$/.test(document.querySelector('#content-hash')?.textContent ?? ''),
      { timeout: STEP_TIMEOUT, polling: 100 },
    );
    await sign(page);
  }
  const ids: string[] = [];
  for (const page of [a, b]) {
    await page.waitForSelector('#constat-id');
    ids.push(await page.$eval('#constat-id', (el) => el.textContent ?? ''));
  }
  if (!/\S{8,}/.test(ids[0]!) || ids[0] !== ids[1])
    throw new Error(`the phones show different constat ids: ${ids.join(' / ')}`);
  return ids[0]!;
}

/** The phone's home screen lists the constat; opened from there, it shows its status. */
export async function openFromHistory(
  page: Page,
  baseUrl: string,
  constatId: string,
): Promise<{ id: string; status: string }> {
  await page.goto(`${baseUrl}/app/#/`);
  await page.waitForSelector(`#history li[data-constat="${constatId}"]`);
  await page.click(`#history li[data-constat="${constatId}"] button`);
  await page.waitForSelector('#detail-status');
  return {
    id: await page.$eval('#detail-id', (el) => el.textContent ?? ''),
    status: await page.$eval('#detail-status', (el) => el.textContent ?? ''),
  };
}

/** What cuts a phone from the server: tests/support/tcp-gate.ts. */
interface Gate {
  shut(): void;
  open(): void;
}

/**
 * The phone loses the network: the browser goes offline and its gate to the server is shut
 * (the browser's offline switch does not cover a service worker's own requests; the gate does,
 * as a lost network would). Waits first until the app shell is in the service worker's cache.
 */
export async function goOffline(page: Page, gate: Gate): Promise<void> {
  await page.waitForSelector('html[data-offline-ready="true"]');
  gate.shut();
  await page.setOfflineMode(true);
  await page.waitForSelector('#banner-offline');
}

/**
 * Reloads the page with the network down: the app starts from the service worker's cache and
 * the document from IndexedDB. Returns once the fields show `values` again.
 */
export async function reloadOffline(page: Page, values: Record<string, string>): Promise<void> {
  await page.reload();
  await page.waitForSelector('#banner-offline');
  for (const [docPath, value] of Object.entries(values)) await waitValue(page, docPath, value);
}

/** The network is back: the gate opens, the browser is online, the app is connected again. */
export async function comeBack(page: Page, gate: Gate): Promise<void> {
  gate.open();
  await page.setOfflineMode(false);
  await page.waitForFunction(
    () =>
      !document.querySelector('#banner-offline') && !document.querySelector('#banner-reconnecting'),
    { timeout: STEP_TIMEOUT, polling: 100 },
  );
}

/** The value of the field at a document path on that page. */
export async function valueOf(page: Page, docPath: string): Promise<string> {
  return page.$eval(`[data-path="${docPath}"]`, (el) => (el as HTMLInputElement).value);
}
