/**
 * The reference app's camera, in headless Chromium with its fake capture device: B's camera
 * films A's QR code (the picture on A's screen, played as a video) and B joins A's constat
 * without typing anything. The permission is granted by Chromium's fake prompt; the video the
 * scanner shows is the camera's (live stream, non-zero size) while it looks, and is hidden once
 * the code is read.
 *
 * Screenshots of each step are saved in .cache/screenshots/web-camera/.
 */
import { rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Page } from 'puppeteer-core';
import { setUp } from './support/suite.js';
import type { TestServer } from './support/server.js';
import { twoPhones, type TwoPhones } from './support/phones.js';
import { writeCameraVideo } from './support/fake-camera.js';
import { openConstat, screenshots, signIn } from './support/browser.js';

let phones: TwoPhones;
let server: TestServer;
let a: Page;
let b: Page;
let camera = '';
let screenshot: Awaited<ReturnType<typeof screenshots>>;

setUp(test, async () => {
  screenshot = await screenshots('web-camera');
  // The file is read when a page starts the camera: A's code is written there before B looks.
  camera = path.join(os.tmpdir(), `constat-camera-${process.pid}.y4m`);
  phones = await twoPhones('chromium', { camera });
  ({ server, a, b } = phones);
});

test.after(async () => {
  await phones?.close();
  await rm(camera, { force: true });
});

test("B's camera films A's QR code and B joins without typing", async () => {
  await signIn(a, server.url, 'Amina Benali');
  await openConstat(a);
  await a.waitForFunction(() =>
    (document.querySelector('#join-qr') as HTMLImageElement)?.src.startsWith('data:image/png'),
  );
  const qr = await a.$eval('#join-qr', (el) => (el as HTMLImageElement).src);
  await writeCameraVideo(camera, Buffer.from(qr.slice(qr.indexOf(',') + 1), 'base64'));

  // What the page got from the camera, noted as it starts (the scanner stops it once read).
  await b.evaluateOnNewDocument(() => {
    const seen: Array<Record<string, unknown>> = [];
    Object.assign(window, { cameraTracks: seen });
    const media = navigator.mediaDevices;
    const getUserMedia = media.getUserMedia.bind(media);
    media.getUserMedia = async (constraints) => {
      const stream = await getUserMedia(constraints);
      for (const track of stream.getVideoTracks())
        seen.push({ label: track.label, ...track.getSettings() });
      return stream;
    };
  });
  await signIn(b, server.url, 'Karim Haddad');
  await b.click('#scan');
  await b.waitForSelector('[data-presence="A"][data-here="true"]');
  await a.waitForSelector('[data-presence="B"][data-here="true"]');
  // The same session on both phones, reached through the camera.
  const session = (page: Page) => page.evaluate(() => location.hash);
  assert.match(await session(b), /^#\/session\//);
  assert.is(await session(b), await session(a));
  const tracks = (await b.evaluate(
    () => (window as unknown as { cameraTracks: unknown[] }).cameraTracks,
  )) as Array<{ width: number; height: number; label: string }>;
  assert.is(tracks.length, 1, JSON.stringify(tracks));
  assert.equal([tracks[0]!.width, tracks[0]!.height], [640, 480], JSON.stringify(tracks));
  // The scanner's video is put away once the code is read.
  assert.not.ok(await b.$('video.scanner:not([hidden])'));
  await screenshot(b, 'b-joined-by-camera', 'body');
});

test.run();
