/**
 * The reference app in a real browser: two headless Chromium pages, each with storage of its
 * own (two phones), 360 px wide, against a real server (PostgreSQL, Redis hub) in development
 * mode. One scenario, step by step: A signs in and opens a constat; B joins by a picture of
 * A's QR code (the scanner's decoder on an image; web-camera.test.ts films it) and works
 * in Arabic; both fill their parts and see each other's edits; both sketch (a road dragged, a
 * free stroke drawn, a label, the vehicles placed and one turned); a photo is attached; a
 * write into A's column forced from B's page is refused visibly; A loses the network, edits,
 * reloads the page with the network still down (the service worker starts the app, IndexedDB
 * gives back the edits), comes back and both converge; both sign; both see the
 * constat finalized and the PDF link (announced by the subscription); the signed sketch holds
 * the document's units (fractions, absolute points, 0° = front up) and the report's SVG draws
 * each vehicle and the label where and as the app showed them; it is listed in history.
 * Each step leaves a screenshot in .cache/screenshots/web-app/.
 *
 * A reaches the server through a TCP gate the test can shut: the browser's offline switch
 * does not cover a service worker's own requests, the shut gate does, as a lost network would.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import path from 'node:path';
import { writeFile } from 'node:fs/promises';
import type { ElementHandle, Page } from 'puppeteer-core';
import { setUp } from './support/suite.js';
import { sketchSvg } from '../report/sketch-svg.js';
import type { SketchElement } from '../constat/constat-doc.js';
import { gql, type TestServer } from './support/server.js';
import { twoPhones, type TwoPhones } from './support/phones.js';
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
  openConstat,
  openFromHistory,
  reloadOffline,
  screenshots,
  sign,
  signBoth,
  signIn,
  tickBox,
  valueOf,
  waitElements,
  waitValue,
  type TestBrowser,
} from './support/browser.js';

let phones: TwoPhones;
let server: TestServer;
let gate: TcpGate;
/** Where A reaches the server: through the gate. */
let aUrl = '';
let chromium: TestBrowser;
let a: Page;
let b: Page;
let joinCode = '';
let constatId = '';
let screenshot: Awaited<ReturnType<typeof screenshots>>;

type Xy = [number, number];
/** A vehicle as the app shows it: centre in fractions of the stage, front as a unit vector. */
interface Shown {
  x: number;
  y: number;
  front: Xy;
}
/** What the pointer drew, in fractions of the stage, and where the app showed the vehicles. */
const drawn = {
  road: [] as Xy[],
  stroke: [] as Xy[],
  vehicles: {} as Record<string, Shown>,
  /** The label's box on the stage (fractions): left, top, right, bottom. */
  label: [] as number[],
};

/** Page pixels to fractions of the sketch's stage (inside the host's border). */
async function stageFractions(page: Page): Promise<(x: number, y: number) => Xy> {
  const box = (await (await page.$('#sketch-canvas .konvajs-content'))!.boundingBox())!;
  return (x, y) => [(x - box.x) / box.width, (y - box.y) / box.height];
}

/** The vehicles on the page's stage, read from Konva itself (drawn facing +x before rotation). */
const SHOWN_VEHICLES = `(() => {
  const stage = window.Konva.stages.filter((s) => s.container().isConnected).at(-1);
  const out = {};
  for (const text of stage.find('Text')) {
    const group = text.getParent();
    if (group.getClassName() !== 'Group') continue;
    const p = group.getAbsolutePosition();
    const turn = (group.getAbsoluteRotation() * Math.PI) / 180;
    out[text.text()] = {
      x: p.x / stage.width(),
      y: p.y / stage.height(),
      front: [Math.cos(turn), Math.sin(turn)],
    };
  }
  return out;
})()`;

/** The box of the one label on the page's stage, in fractions: left, top, right, bottom. */
const SHOWN_LABEL = `(() => {
  const stage = window.Konva.stages.filter((s) => s.container().isConnected).at(-1);
  const label = stage.find('Text').find((t) => t.getParent().getClassName() === 'Layer');
  const r = label.getClientRect();
  return [r.x / stage.width(), r.y / stage.height(),
    (r.x + r.width) / stage.width(), (r.y + r.height) / stage.height()];
})()`;

setUp(test, async () => {
  screenshot = await screenshots('web-app');
  phones = await twoPhones();
  ({ server, gate, aUrl, a, b, browser: chromium } = phones);
});

test.after(async () => {
  await phones?.close();
});

test('A signs in, opens a constat and shows the join code and QR code', async () => {
  await signIn(a, aUrl, 'Amina Benali');
  joinCode = await openConstat(a);
  assert.match(joinCode, /^\d{6}$/);
  await a.waitForFunction(() =>
    (document.querySelector('#join-qr') as HTMLImageElement)?.src.startsWith('data:image/png'),
  );
  await screenshot(a, 'a-opened-code-and-qr', 'body');
});

test('B switches to Arabic, joins by a picture of the QR code, and both see each other present', async () => {
  await signIn(b, server.url, 'Karim Haddad');
  await b.click('#lang');
  assert.is(await b.$eval('html', (el) => el.getAttribute('dir')), 'rtl');
  // The QR code on A's screen, as a picture B picks: the camera scanner's decoder reads it.
  const qr = await a.$eval('#join-qr', (el) => (el as HTMLImageElement).src);
  const picture = path.join(chromium.profile, 'join-qr.png');
  await writeFile(picture, Buffer.from(qr.slice(qr.indexOf(',') + 1), 'base64'));
  // First a picture with no QR code in it: refused with a message, nothing joined.
  const noQr = path.join(chromium.profile, 'no-qr.png');
  await b.screenshot({
    path: noQr as `${string}.png`,
    clip: { x: 0, y: 0, width: 120, height: 60 },
  });
  await ((await b.$('#scan-file')) as ElementHandle<HTMLInputElement>).uploadFile(noQr);
  await b.waitForFunction(() => !!document.querySelector('#join-error')?.textContent);
  assert.is(await b.$eval('#join-code', (el) => (el as HTMLInputElement).value), '');
  await ((await b.$('#scan-file')) as ElementHandle<HTMLInputElement>).uploadFile(picture);
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
  await screenshot(b, 'b-joined-arabic', '#vehicleB .boxes');
});

test('both fill their parts, edits appear live on the other phone, the plate is checked as typed', async () => {
  await fillAccident(a);
  // The shared part typed on A appears on B.
  await waitValue(b, 'accident.place.address', 'Rue Didouche Mourad');
  await fill(b, 'accident.place.commune', 'Alger Centre');
  await waitValue(a, 'accident.place.commune', 'Alger Centre');

  await fillColumn(a, 'vehicleA', COLUMN_A);
  // Typed with spaces: the app writes the normalised plate and says it is valid.
  await fill(a, 'vehicleA.vehicle.plate', '12345 115 16');
  await waitValue(a, 'vehicleA.vehicle.plate', '12345-115-16');
  assert.is(await a.$eval('#f-vehicleA-vehicle-plate-check', (el) => el.className), 'ok');
  await choose(a, 'vehicleA.insurer.company', 'saa');
  await tickBox(a, 'vehicleA', 1);
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
  await fillColumn(b, 'vehicleB', COLUMN_B);
  // A's edits are on B's page, read-only; B's Arabic text is on A's page.
  await waitValue(b, 'vehicleA.vehicle.plate', '12345-115-16');
  await waitValue(a, 'vehicleB.policyholder.lastName', 'حداد');
  await screenshot(a, 'a-filled', '#f-vehicleA-vehicle-make');
  await screenshot(b, 'b-filled-arabic', '#f-vehicleB-vehicle-make');
});

test('signing an incomplete constat shows the server fieldErrors beside the fields', async () => {
  await sign(b);
  await b.waitForSelector('[data-error-for="vehicleB.insurer.company"]');
  assert.ok(await b.$('[data-error-for="vehicleB.insurer.policyNumber"]'));
  assert.ok(await b.$('[data-error-for="vehicleB.circumstanceCount"]'));
  await screenshot(b, 'b-field-errors', '#f-vehicleB-insurer-company');
  await choose(b, 'vehicleB.insurer.company', 'trust');
  await fill(b, 'vehicleB.insurer.policyNumber', 'TR-77');
  await tickBox(b, 'vehicleB', 14);
  await waitValue(a, 'vehicleB.insurer.policyNumber', 'TR-77');
});

test('both sketch: a road, vehicle A, a stroke and a label with the mouse, vehicle B with a finger', async () => {
  await a.$eval('#sketch-canvas', (el) => el.scrollIntoView({ block: 'center' }));
  const canvas = (await (await a.$('#sketch-canvas'))!.boundingBox())!;
  const onA = await stageFractions(a);
  await a.click('[data-tool="road"]');
  await a.mouse.move(canvas.x + 10, canvas.y + canvas.height / 2);
  await a.mouse.down();
  await a.mouse.move(canvas.x + canvas.width / 2, canvas.y + canvas.height / 2, { steps: 5 });
  await a.mouse.move(canvas.x + canvas.width - 10, canvas.y + canvas.height / 2, { steps: 5 });
  await a.mouse.up();
  drawn.road = [
    onA(canvas.x + 10, canvas.y + canvas.height / 2),
    onA(canvas.x + canvas.width - 10, canvas.y + canvas.height / 2),
  ];
  await a.click('[data-tool="vehicleA"]');
  await a.mouse.click(canvas.x + canvas.width * 0.3, canvas.y + canvas.height * 0.45);
  await a.click('[data-tool="stroke"]');
  await a.mouse.move(canvas.x + 40, canvas.y + 20);
  await a.mouse.down();
  drawn.stroke.push(onA(canvas.x + 40, canvas.y + 20));
  for (let i = 1; i <= 8; i++) {
    await a.mouse.move(canvas.x + 40 + i * 12, canvas.y + 20 + (i % 2) * 14);
    drawn.stroke.push(onA(canvas.x + 40 + i * 12, canvas.y + 20 + (i % 2) * 14));
  }
  await a.mouse.up();
  a.once('dialog', (dialog) => void dialog.accept('Stop'));
  await a.click('[data-tool="label"]');
  await a.mouse.click(canvas.x + canvas.width * 0.6, canvas.y + canvas.height * 0.25);
  await waitElements(a, 4);
  drawn.label = (await a.evaluate(SHOWN_LABEL)) as number[];

  await b.$eval('#sketch-canvas', (el) => el.scrollIntoView({ block: 'center' }));
  const canvasB = (await (await b.$('#sketch-canvas'))!.boundingBox())!;
  await waitElements(b, 4);
  await b.click('[data-tool="vehicleB"]');
  await b.touchscreen.tap(canvasB.x + canvasB.width * 0.7, canvasB.y + canvasB.height * 0.55);
  // Rotate B's vehicle: select it by touch, then the rotate button.
  await b.touchscreen.tap(canvasB.x + canvasB.width * 0.7, canvasB.y + canvasB.height * 0.55);
  await b.click('[data-action="rotate"]');
  await waitElements(a, 5);
  drawn.vehicles.A = ((await a.evaluate(SHOWN_VEHICLES)) as Record<string, Shown>).A!;
  drawn.vehicles.B = ((await b.evaluate(SHOWN_VEHICLES)) as Record<string, Shown>).B!;
  // The pointer put them there, A as placed (facing right), B turned 15° further.
  const [ax, ay] = onA(canvas.x + canvas.width * 0.3, canvas.y + canvas.height * 0.45);
  assert.ok(Math.hypot(drawn.vehicles.A.x - ax, drawn.vehicles.A.y - ay) < 0.005);
  assert.ok(Math.abs(drawn.vehicles.B.front[1] - Math.sin(Math.PI / 12)) < 1e-6);
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
  const photo = path.join(chromium.profile, 'damage.png');
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

test('A loses the network, edits, reloads the page offline, comes back: both converge', async () => {
  await goOffline(a, gate);
  await fill(a, 'vehicleA.remarks', 'Le véhicule B a changé de file');
  await fill(a, 'accident.place.address', ', angle rue Larbi Ben Mhidi');
  await fill(b, 'vehicleB.remarks', 'ما كنتش نشوف');
  await screenshot(a, 'a-offline-editing', 'body');
  const addressTyped = await valueOf(a, 'accident.place.address');
  await reloadOffline(a, {
    'vehicleA.remarks': 'Le véhicule B a changé de file',
    'accident.place.address': addressTyped,
    'vehicleA.policyholder.lastName': 'Benali',
  });
  await screenshot(a, 'a-reloaded-offline', 'body');
  // Nothing of A's offline edits reached B.
  assert.is(await valueOf(b, 'vehicleA.remarks'), '');
  await comeBack(a, gate);
  await waitValue(b, 'vehicleA.remarks', 'Le véhicule B a changé de file');
  await waitValue(a, 'vehicleB.remarks', 'ما كنتش نشوف');
  await waitValue(b, 'accident.place.address', await valueOf(a, 'accident.place.address'));
  await screenshot(a, 'a-back-online', '#f-vehicleA-remarks');
});

test('both sign; both see the constat finalized with the same id', async () => {
  constatId = await signBoth(a, b);
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

test("the signed sketch is in the document's units; the report draws vehicles and label as the app showed them", async () => {
  const identity = await a.evaluate(() => localStorage.getItem('constat.identity') ?? '{}');
  const { token } = JSON.parse(identity) as { token: string };
  const res = await gql<{
    constat: { content: { sketch: { elements: Record<string, SketchElement> } } };
  }>(server.url, token, 'query ($id: ID!) { constat(id: $id) { content } }', { id: constatId });
  const elements = Object.values(res.data!.constat.content.sketch.elements);
  const one = (kind: string, vehicle?: string) => {
    const found = elements.filter((e) => e.kind === kind && (!vehicle || e.vehicle === vehicle));
    assert.is(found.length, 1, `one ${kind} ${vehicle ?? ''}`);
    return found[0]!;
  };
  const near = (got: number, want: number, what: string, eps = 0.004) =>
    assert.ok(Math.abs(got - want) <= eps, `${what}: ${got}, want ${want}`);
  // Fractions of the sketch: every coordinate within 0..1.
  for (const e of elements)
    for (const v of [e.x, e.y, ...(e.points ?? [])])
      assert.ok(typeof v === 'number' && v >= 0 && v <= 1, `${e.kind}: ${v} is not 0..1`);

  // Lines: absolute points where the pointer went, their place being the first point, no rotation.
  const road = one('road');
  const stroke = one('stroke');
  for (const [line, want] of [
    [road, drawn.road],
    [stroke, drawn.stroke],
  ] as const) {
    assert.is(line.rotation, undefined);
    assert.equal([line.x, line.y], line.points!.slice(0, 2));
    const got = line.points!;
    const ends = line === road ? [got.slice(0, 2), got.slice(-2)] : chunk(got);
    assert.is(ends.length, want.length, `${line.kind} points`);
    ends.forEach(([x, y], i) => {
      near(x!, want[i]![0], `${line.kind} point ${i} x`);
      near(y!, want[i]![1], `${line.kind} point ${i} y`);
    });
  }

  // Vehicles: where the app showed them; 0° = front up, so A placed facing right is 90° and
  // B, turned once by the rotate button, 105°.
  const rotations = { A: 90, B: 105 };
  const svg = sketchSvg(res.data!.constat.content.sketch.elements);
  for (const role of ['A', 'B'] as const) {
    const vehicle = one('vehicle', role);
    const shown = drawn.vehicles[role]!;
    near(vehicle.x!, shown.x, `vehicle ${role} x`);
    near(vehicle.y!, shown.y, `vehicle ${role} y`);
    assert.is(vehicle.rotation, rotations[role]);
    // The report's vehicle: drawn front up, then translated and turned by its transform.
    const drawnAt = new RegExp(
      `<g transform="translate\\(([-\\d.]+) ([-\\d.]+)\\) rotate\\(([-\\d.]+)\\)"><rect[^>]*/><path[^>]*/><text[^>]*>${role}</text></g>`,
    ).exec(svg);
    assert.ok(drawnAt, `vehicle ${role} in the report's SVG`);
    const [tx, ty, r] = drawnAt.slice(1).map(Number) as [number, number, number];
    near(tx / 1000, shown.x, `report ${role} x`);
    near(ty / 600, shown.y, `report ${role} y`);
    const turn = (r * Math.PI) / 180;
    const front: Xy = [Math.sin(turn), -Math.cos(turn)];
    const along = front[0] * shown.front[0] + front[1] * shown.front[1];
    assert.ok(
      along > 0.999,
      `report ${role} faces [${front.join(', ')}], the app [${shown.front.join(', ')}]`,
    );
  }
  // The label: the report centres its text on x with the baseline on y; the app showed the
  // text's box centred there, the baseline in its lower half.
  const label =
    /<text x="([\d.]+)" y="([\d.]+)" text-anchor="middle"[^>]*><tspan>Stop<\/tspan>/.exec(svg);
  assert.ok(label, "the label in the report's SVG");
  const [left, top, right, bottom] = drawn.label as [number, number, number, number];
  near(Number(label[1]) / 1000, (left + right) / 2, 'label centre');
  const baseline = Number(label[2]) / 600;
  assert.ok(
    baseline > (top + bottom) / 2 && baseline < bottom,
    `label baseline ${baseline}, the app's box ${top}..${bottom}`,
  );
});

test('the constat is listed in history on both phones and opens with its status', async () => {
  assert.equal(await openFromHistory(a, aUrl, constatId), { id: constatId, status: 'FINALIZED' });
  await screenshot(a, 'a-history-detail', 'body');
  assert.equal(await openFromHistory(b, server.url, constatId), {
    id: constatId,
    status: 'FINALIZED',
  });
  await screenshot(b, 'b-history-detail', 'body');
});

function chunk(flat: number[]): number[][] {
  const out: number[][] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) out.push([flat[i]!, flat[i + 1]!]);
  return out;
}

test.run();
