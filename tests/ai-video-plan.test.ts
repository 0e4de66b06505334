/**
 * The reconstruction video's pure parts: the motion templates (checked at load, chosen by
 * priority), the document's sketch units read into the video's space, paths built backwards from the
 * sketched pose (ending exactly there, shrunk to fit), and the plan (captions in French and
 * Arabic from the form, the impact point from the tapped outline, a still with a note when
 * the sketch lacks a vehicle).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { viewOf } from '../ai/constat-view.js';
import { buildPath, fittedPath, outlinePoint, poseAt } from '../ai/video/motion.js';
import { planVideo, toVideo, vehiclePoseAt } from '../ai/video/plan.js';
import { sceneOf } from '../ai/video/scene.js';
import { checkTemplates, chooseTemplate, loadTemplates } from '../ai/video/templates.js';
import { finalizedData } from './fixtures/finalized.js';

const templates = loadTemplates();
const near = (a: number, b: number, eps = 0.5) => Math.abs(a - b) <= eps;

test('the shipped templates load; every box of both forms names a template', () => {
  assert.match(templates.version, /^motion-/);
  assert.is(Object.keys(templates.forms.dz!).length, 23);
  assert.is(Object.keys(templates.forms.eu!).length, 17);
});

test('a bad template file fails naming the field', () => {
  const bad = structuredClone(templates);
  bad.forms.dz!['16'] = 'moonwalk';
  assert.throws(() => checkTemplates(bad), /forms\.dz\.16 names unknown template "moonwalk"/);
  const badSeg = structuredClone(templates);
  badSeg.templates.turn_left!.segments = [{ turn: -90, radius: 0 }];
  assert.throws(() => checkTemplates(badSeg), /templates\.turn_left\.segments\[0\] radius/);
});

test('several boxes: the template first in priority moves the vehicle; none: the default', () => {
  // dz 2 "same direction, other lane" (straight) and 11 "reversing": reversing wins.
  assert.equal(chooseTemplate(templates, 'dz', new Set(['2', '11'])), {
    name: 'reversing',
    assumed: false,
  });
  assert.equal(chooseTemplate(templates, 'eu', new Set(['13'])), {
    name: 'turn_left',
    assumed: false,
  });
  assert.equal(chooseTemplate(templates, 'dz', new Set(['99'])), {
    name: 'straight',
    assumed: true,
  });
});

test('normalised sketches: 0..1 scaled to 1000 × 600, rotation 0 faces up', () => {
  const scene = sceneOf({
    elements: {
      a: { kind: 'vehicle', vehicle: 'A', x: 0.3, y: 0.5, rotation: 90 },
      r: { kind: 'road', x: 0, y: 0.5, points: [0, 0.5, 1, 0.5] },
      w: { kind: 'arrow', x: 0.5, y: 0.5, rotation: 0 },
    },
  });
  assert.equal(scene.vehicles.A, { x: 300, y: 300, heading: 0 });
  const road = scene.elements.find((e) => e.kind === 'road')!;
  assert.equal(road.points, [
    [0, 300],
    [1000, 300],
  ]);
  // A bare arrow at rotation 0 points up: its end is above its start.
  const arrow = scene.elements.find((e) => e.kind === 'arrow')!.points!;
  assert.ok(arrow[1]![1] < arrow[0]![1]);
});

test('points are absolute whatever the element position; what is not a number is skipped', () => {
  const scene = sceneOf({
    elements: {
      b: { kind: 'vehicle', vehicle: 'B', x: 0.6, y: 0.25, rotation: 180 },
      s: { kind: 'stroke', x: 0.1, y: 0.2, points: [0, 0, 0.05, 0.02, 'x', 0.3] },
      junk: { kind: 'vehicle', vehicle: 'B', x: 'NaN' },
      bad: 'not an element',
    },
  });
  assert.equal(scene.vehicles.B, { x: 600, y: 150, heading: 90 });
  assert.equal(scene.elements.find((e) => e.kind === 'stroke')!.points, [
    [0, 0],
    [50, 12],
  ]);
});

test('a path ends exactly at the sketched pose; a left turn starts 90° to the right of it', () => {
  const end = { x: 500, y: 300, heading: -90 };
  const path = buildPath(end, templates.templates.turn_left!.segments);
  const last = path[path.length - 1]!;
  assert.equal(last, end);
  assert.ok(near(path[0]!.heading, 0, 1), `start heading ${path[0]!.heading}`);
  // Straight 120 then a quarter circle of radius 130: 250 left of and 130 below the end.
  assert.ok(near(path[0]!.x, 500 - 130 - 120, 3), `x ${path[0]!.x}`);
  assert.ok(near(path[0]!.y, 300 + 130, 3), `y ${path[0]!.y}`);
});

test('reversing: the vehicle starts ahead of its front and faces the same way throughout', () => {
  const end = { x: 500, y: 300, heading: 0 };
  const path = fittedPath(end, templates.templates.reversing!.segments, true);
  assert.ok(near(path.poses[0]!.x, 640, 1));
  assert.ok(path.poses.every((p) => near(p.heading, 0, 0.01)));
});

test('a path that would start outside the sketch is shrunk until it fits', () => {
  const end = { x: 200, y: 300, heading: 0 };
  const path = fittedPath(end, [{ straight: 300 }]);
  assert.ok(path.poses[0]!.x >= 40, `start ${path.poses[0]!.x}`);
  assert.equal(poseAt(path, 1), end);
});

test('the plan: captions from the form in French and Arabic, impact on the tapped outline', () => {
  const data = finalizedData({
    vehicleA: { circumstances: { '16': true }, impactPoint: { x: 0.5, y: 0 } },
    vehicleB: { circumstances: { '2': true } },
    sketch: {
      elements: {
        a: { kind: 'vehicle', vehicle: 'A', x: 0.47, y: 0.45, rotation: 0 },
        b: { kind: 'vehicle', vehicle: 'B', x: 0.6, y: 0.55, rotation: 270 },
      },
    },
  });
  const plan = planVideo(viewOf(data), templates);
  assert.is(plan.still, false);
  assert.is(plan.durationSeconds, 10);
  // The fixture's party A has box 1 ticked too; 16 (turn left) comes first in priority.
  assert.is(plan.vehicles[0]!.template, 'turn_left');
  assert.match(plan.captions.A.fr, /Virait à gauche/);
  assert.match(plan.captions.A.ar, /كان ينعطف إلى اليسار/);
  assert.match(plan.captions.B.fr, /même sens sur une file différente/);
  // Impact point x 0.5, y 0 = the middle of A's front; A faces up at (470, 270).
  const [ix, iy] = outlinePoint({ x: 470, y: 270, heading: -90 }, { x: 0.5, y: 0 }, 110, 54);
  assert.ok(near(plan.impact!.x, ix) && near(plan.impact!.y, iy));
  assert.ok(near(iy, 215));
  assert.is(plan.impact!.from, 'A');
  // Before the start the vehicles wait at the start; at the impact they are where sketched.
  const a = plan.vehicles[0]!;
  assert.equal(vehiclePoseAt(plan, a, 0), a.path.poses[0]);
  assert.equal(vehiclePoseAt(plan, a, plan.timeline.impactSeconds), {
    x: 470,
    y: 270,
    heading: -90,
  });
  const [vx, vy] = toVideo(plan, { x: 0, y: 0 });
  assert.ok(vx > 0 && vy > 0, 'the sketch sits inside the frame, below the advisory band');
  assert.ok(plan.notes.some((n) => n.code === 'advisory'));
});

test('a sketch without both vehicles gives a still with a note; hostile content is ignored', () => {
  const data = finalizedData({
    sketch: {
      elements: {
        r: { kind: 'road', x: 0, y: 0.5, points: [0, 0.5, 1, 0.5] },
        a: { kind: 'vehicle', vehicle: 'A', x: 0.3, y: 0.5, rotation: 90 },
        l: { kind: 'label', x: 0.5, y: 0.2, text: 'x'.repeat(10_000) },
        evil: { kind: 'vehicle', vehicle: 'B', x: Infinity, y: null },
      },
    },
  });
  const plan = planVideo(viewOf(data), templates);
  assert.is(plan.still, true);
  assert.is(plan.impact, undefined);
  const note = plan.notes.find((n) => n.code === 'sketch_without_vehicles')!;
  assert.match(note.fr, /véhicule B absent/);
  assert.match(note.ar, /المركبة B/);
  assert.is(plan.scene.elements.find((e) => e.kind === 'label')!.text!.length, 120);
  const empty = planVideo(viewOf(finalizedData({ sketch: {} })), templates);
  assert.is(empty.still, true);
  assert.match(empty.notes[1]!.fr, /véhicule A et B absent/);
});

test('an arrow drawn from a vehicle bends a straight approach', () => {
  const data = finalizedData({
    vehicleA: { circumstances: { '2': true } },
    sketch: {
      elements: {
        a: { kind: 'vehicle', vehicle: 'A', x: 0.5, y: 0.5, rotation: 90 },
        b: { kind: 'vehicle', vehicle: 'B', x: 0.7, y: 0.5, rotation: 270 },
        // From just above A, pointing down: A came down and turned to face right.
        w: { kind: 'arrow', x: 0.5, y: 0.25, points: [0.5, 0.25, 0.5, 0.4] },
      },
    },
  });
  const plan = planVideo(viewOf(data), templates);
  const a = plan.vehicles.find((v) => v.role === 'A')!;
  assert.is(a.arrow, true);
  assert.ok(near(a.path.poses[0]!.heading, 90, 1), `start heading ${a.path.poses[0]!.heading}`);
});

test.run();
