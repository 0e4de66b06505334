/**
 * Vehicle paths, pure geometry. The sketch shows the moment of impact, so a path is built
 * backwards from the vehicle's sketched pose: its template's segments (straight runs and arcs)
 * are undone one small step at a time, which gives where the vehicle started. A path that
 * would start outside the sketch is shrunk until it fits. `poseAt` gives a vehicle's pose at a
 * fraction of its path, and the tests compute expected pixel positions with the same function.
 */
import { SKETCH_HEIGHT, SKETCH_WIDTH, wrapDegrees, type Point, type Pose } from './scene.js';
import type { PathSegment } from './templates.js';

/** Sampled poses from start to impact; headings are where the front points. */
export interface VehiclePath {
  poses: Pose[];
}

const STEP = 4;
const MARGIN = 40;
const SHRINK = [1, 0.8, 0.6, 0.45, 0.3];
const rad = (deg: number) => (deg * Math.PI) / 180;

/** Poses from start to `end`, driving `segments` (rear first when `reverse`). */
export function buildPath(end: Pose, segments: readonly PathSegment[], reverse = false): Pose[] {
  // The direction of travel: the front's, or the rear's for a vehicle reversing.
  let travel = reverse ? end.heading + 180 : end.heading;
  let x = end.x;
  let y = end.y;
  const back: Pose[] = [{ ...end }];
  for (const seg of [...segments].reverse()) {
    const length = 'straight' in seg ? seg.straight : seg.radius * Math.abs(rad(seg.turn));
    const steps = Math.max(1, Math.ceil(length / STEP));
    const turnPerStep = 'turn' in seg ? seg.turn / steps : 0;
    for (let i = 0; i < steps; i++) {
      // Forward: move, then turn. Backward: unturn, then move back.
      travel -= turnPerStep;
      x -= Math.cos(rad(travel)) * (length / steps);
      y -= Math.sin(rad(travel)) * (length / steps);
      back.push({ x, y, heading: wrapDegrees(reverse ? travel + 180 : travel) });
    }
  }
  return back.reverse();
}

function scaled(segments: readonly PathSegment[], k: number): PathSegment[] {
  return segments.map((s) =>
    'straight' in s ? { straight: s.straight * k } : { turn: s.turn, radius: s.radius * k },
  );
}

const inside = (p: Pose) =>
  p.x >= MARGIN && p.x <= SKETCH_WIDTH - MARGIN && p.y >= MARGIN && p.y <= SKETCH_HEIGHT - MARGIN;

/** The path, shrunk until its start lies within the sketch (or as short as it gets). */
export function fittedPath(
  end: Pose,
  segments: readonly PathSegment[],
  reverse = false,
): VehiclePath {
  let poses: Pose[] = [end];
  for (const k of SHRINK) {
    poses = buildPath(end, scaled(segments, k), reverse);
    if (inside(poses[0]!)) break;
  }
  return { poses };
}

/** The pose at fraction `u` (0 start, 1 impact) of the path's length. */
export function poseAt(path: VehiclePath, u: number): Pose {
  const poses = path.poses;
  if (poses.length === 1 || u <= 0) return poses[0]!;
  if (u >= 1) return poses[poses.length - 1]!;
  const f = u * (poses.length - 1);
  const i = Math.floor(f);
  const a = poses[i]!;
  const b = poses[i + 1]!;
  const t = f - i;
  return {
    x: a.x + (b.x - a.x) * t,
    y: a.y + (b.y - a.y) * t,
    heading: wrapDegrees(a.heading + wrapDegrees(b.heading - a.heading) * t),
  };
}

/** Ease in and out, so vehicles start and reach the impact smoothly. */
export function ease(u: number): number {
  const c = Math.min(1, Math.max(0, u));
  return c * c * (3 - 2 * c);
}

/**
 * The arrow drawn from a vehicle, if any: the arrow whose first point is nearest the vehicle,
 * within `reach`. Its direction is where the vehicle was heading before it turned.
 */
export function arrowHeading(
  vehicle: Pose,
  arrows: ReadonlyArray<readonly Point[]>,
  reach = 200,
): number | undefined {
  let best: { d: number; heading: number } | undefined;
  for (const pts of arrows) {
    const [x0, y0] = pts[0]!;
    const [x1, y1] = pts[pts.length - 1]!;
    const d = Math.hypot(x0 - vehicle.x, y0 - vehicle.y);
    if (d > reach || (x0 === x1 && y0 === y1)) continue;
    if (!best || d < best.d) best = { d, heading: (Math.atan2(y1 - y0, x1 - x0) * 180) / Math.PI };
  }
  return best?.heading;
}

/**
 * A point on a vehicle's outline (the impact point the driver tapped: x across, y from the
 * front 0 to the rear 1) placed in the sketch, for a vehicle `length` × `width` at `pose`.
 */
export function outlinePoint(
  pose: Pose,
  at: { x: number; y: number },
  length: number,
  width: number,
): Point {
  const along = (0.5 - at.y) * length; // + toward the front
  const across = (at.x - 0.5) * width; // + toward the vehicle's right
  const h = rad(pose.heading);
  return [
    pose.x + Math.cos(h) * along - Math.sin(h) * across,
    pose.y + Math.sin(h) * along + Math.cos(h) * across,
  ];
}
