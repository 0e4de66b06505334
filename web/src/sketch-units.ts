/**
 * The sketch's two sets of units, and the one place that converts between them.
 *
 * - **document** (docs/document.md, what the report, the video and the simulator read):
 *   `x`, `y` and `points` are fractions 0..1 of the sketch's width and height, `points` are
 *   absolute, `rotation` is degrees clockwise with 0 = a vehicle whose front points up.
 * - **view** (the app's Konva stage): a 1000 × 600 space, a line's points relative to its
 *   position (that is how a Konva node moves and turns), a vehicle drawn facing right at 0°.
 *
 * The app reads and writes the document through `viewOf` / `docOf` only. A line's position and
 * rotation in the view are baked into its absolute points when written, so the document holds
 * no transform that a reader would have to apply. Pure: no Konva, no Yjs.
 */

export const VIEW_WIDTH = 1000;
export const VIEW_HEIGHT = 600;
/** The view draws a vehicle facing right; the document's 0° faces up. */
const VEHICLE_TURN = 90;
/** An arrow stored without points (as the simulator writes it): drawn this long, centred. */
const BARE_ARROW = 80;
/**
 * Fractions are kept to 6 decimals (a thousandth of a view unit): both phones see the same
 * value either way, and the document does not carry 17-digit floats for every stroke point.
 */
const PRECISION = 1e6;

export type Kind = 'road' | 'vehicle' | 'arrow' | 'sign' | 'stroke' | 'label';

/** An element as stored (only the fields that carry geometry). */
export interface DocGeometry {
  x: number;
  y: number;
  /** Absent for lines (their turn is in their points). */
  rotation?: number;
  /** Absolute fractions, flat [x0, y0, x1, y1, …]; present for lines only. */
  points?: number[];
}

/** An element as the stage draws it: a Konva node's position, rotation and own points. */
export interface ViewGeometry {
  x: number;
  y: number;
  rotation: number;
  /** Relative to (x, y), before rotation. */
  points: number[];
}

export const isLine = (kind: unknown): boolean =>
  kind === 'road' || kind === 'arrow' || kind === 'stroke';

const fraction = (v: number, size: number) => Math.round((v / size) * PRECISION) / PRECISION;

/** Degrees in [0, 360). */
export function wrap(degrees: number): number {
  const r = ((degrees % 360) + 360) % 360;
  return r === 0 ? 0 : r; // no -0
}

export function viewOf(kind: unknown, doc: DocGeometry): ViewGeometry {
  const x = doc.x * VIEW_WIDTH;
  const y = doc.y * VIEW_HEIGHT;
  const rotation = doc.rotation ?? 0;
  if (isLine(kind)) {
    const abs = doc.points ?? [];
    if (abs.length < 4 && kind === 'arrow') {
      // Pointing up before rotation, as the report and the video draw a bare arrow.
      return { x, y, rotation, points: [0, BARE_ARROW / 2, 0, -BARE_ARROW / 2] };
    }
    const points = abs.map((v, i) => (i % 2 === 0 ? v * VIEW_WIDTH - x : v * VIEW_HEIGHT - y));
    return { x, y, rotation: 0, points };
  }
  return { x, y, rotation: kind === 'vehicle' ? rotation - VEHICLE_TURN : rotation, points: [] };
}

export function docOf(kind: unknown, view: ViewGeometry): DocGeometry {
  const x = fraction(view.x, VIEW_WIDTH);
  const y = fraction(view.y, VIEW_HEIGHT);
  if (isLine(kind)) {
    const turn = (view.rotation * Math.PI) / 180;
    const cos = Math.cos(turn);
    const sin = Math.sin(turn);
    const points: number[] = [];
    for (let i = 0; i + 1 < view.points.length; i += 2) {
      const px = view.points[i]!;
      const py = view.points[i + 1]!;
      points.push(
        fraction(view.x + px * cos - py * sin, VIEW_WIDTH),
        fraction(view.y + px * sin + py * cos, VIEW_HEIGHT),
      );
    }
    return { x, y, points };
  }
  const rotation = wrap(kind === 'vehicle' ? view.rotation + VEHICLE_TURN : view.rotation);
  return { x, y, rotation };
}

/**
 * The direction a person hears for an element, in the document's convention (degrees clockwise,
 * 0 = up): a vehicle's heading, a line's direction from its first point to its last, a label's
 * turn.
 */
export function directionOf(kind: unknown, doc: DocGeometry): number {
  const p = doc.points ?? [];
  if (isLine(kind) && p.length >= 4) {
    const dx = (p.at(-2)! - p[0]!) * VIEW_WIDTH;
    const dy = (p.at(-1)! - p[1]!) * VIEW_HEIGHT;
    return wrap(Math.round((Math.atan2(dx, -dy) * 180) / Math.PI));
  }
  return wrap(Math.round(doc.rotation ?? 0));
}
