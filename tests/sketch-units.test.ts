/**
 * The reference app's sketch codec (web/src/sketch-units.ts): the document's units (fractions,
 * absolute points, 0° = a vehicle facing up) to the stage's 1000 × 600 view and back, a line's
 * position and turn baked into its points, a vehicle's turn offset, and the direction a person
 * hears.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { directionOf, docOf, viewOf } from '../web/src/sketch-units.js';

const close = (got: number[], want: number[], what: string, eps = 1e-6) =>
  assert.ok(
    got.length === want.length && got.every((v, i) => Math.abs(v - want[i]!) <= eps),
    `${what}: got [${got.join(', ')}], want [${want.join(', ')}]`,
  );

test('a vehicle: the view position scales by 1000 × 600, facing right in the view is 90°', () => {
  const doc = docOf('vehicle', { x: 300, y: 270, rotation: 0, points: [] });
  assert.equal(doc, { x: 0.3, y: 0.45, rotation: 90 });
  // Facing up in the document is a quarter turn back on the stage (drawn facing right).
  assert.equal(viewOf('vehicle', { x: 0.3, y: 0.45, rotation: 0 }), {
    x: 300,
    y: 270,
    rotation: -90,
    points: [],
  });
  assert.is(docOf('vehicle', { x: 0, y: 0, rotation: -90, points: [] }).rotation, 0);
  assert.is(docOf('vehicle', { x: 0, y: 0, rotation: 285, points: [] }).rotation, 15);
  assert.is(directionOf('vehicle', doc), 90);
});

test('round trip: document → view → document gives the same values', () => {
  const elements: Array<[string, Parameters<typeof viewOf>[1]]> = [
    ['vehicle', { x: 0.53, y: 0.583333, rotation: 120 }],
    ['label', { x: 0.5, y: 0.866667, rotation: 0 }],
    ['road', { x: 0.1, y: 0.5, points: [0.1, 0.5, 0.9, 0.5] }],
    ['stroke', { x: 0.04, y: 0.03, points: [0.04, 0.03, 0.052, 0.053333, 0.064, 0.03] }],
  ];
  for (const [kind, doc] of elements) {
    const back = docOf(kind, viewOf(kind, doc));
    close([back.x, back.y], [doc.x, doc.y], `${kind} position`);
    assert.is(back.rotation, doc.rotation, `${kind} rotation`);
    close(back.points ?? [], doc.points ?? [], `${kind} points`);
  }
});

test("a line's view position and rotation are baked into absolute points; no rotation is kept", () => {
  // The keyboard's arrow: 120 long from (440, 300), pointing right, then turned −90° about its start.
  const arrow = docOf('arrow', { x: 440, y: 300, rotation: -90, points: [0, 0, 120, 0] });
  assert.is(arrow.rotation, undefined);
  close([arrow.x, arrow.y], [0.44, 0.5], 'anchor');
  close(arrow.points!, [0.44, 0.5, 0.44, 0.3], 'points'); // (440, 300) → (440, 180)
  assert.is(directionOf('arrow', arrow), 0);
  // Read back, its points are relative to its anchor again, unturned.
  const view = viewOf('arrow', arrow);
  assert.is(view.rotation, 0);
  close(view.points, [0, 0, 0, -120], 'view points', 1e-3);
  // A turn of 30° clockwise (y down) of a 100-long segment.
  const road = docOf('road', { x: 100, y: 100, rotation: 30, points: [0, 0, 100, 0] });
  close(
    road.points!,
    [0.1, 1 / 6, (100 + 100 * Math.cos(Math.PI / 6)) / 1000, (100 + 50) / 600],
    'rotated road',
  );
  assert.is(directionOf('road', road), 120);
  // Moved: every point moves with the anchor.
  const moved = docOf('road', { ...viewOf('road', road), x: 150, y: 130 });
  close(moved.points!, [0.15, 130 / 600, 0.15 + 0.0866025, (130 + 50) / 600], 'moved road');
});

test('a bare arrow (the simulator writes rotation only) points along its rotation, 0 = up', () => {
  const bare = { x: 0.5, y: 0.4, rotation: 90 };
  assert.is(directionOf('arrow', bare), 90);
  const view = viewOf('arrow', bare);
  // Written back from the app, it keeps its place and direction, now as points.
  const written = docOf('arrow', view);
  close(written.points!, [0.46, 0.4, 0.54, 0.4], 'bare arrow baked');
  assert.is(directionOf('arrow', written), 90);
});

test.run();
