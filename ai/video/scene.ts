/**
 * The sketch as the video draws it: every element in one space (1000 × 600 "sketch units"),
 * with vehicle headings as angles. The document's units (docs/document.md): coordinates 0..1 of
 * the sketch's width and height, points absolute, a vehicle at rotation 0 faces up. Everything
 * is capped (elements, points, text) and non-numbers are skipped: the content is what two
 * phones wrote.
 */
import type { Role } from '../constat-view.js';

export const SKETCH_WIDTH = 1000;
export const SKETCH_HEIGHT = 600;
const MAX_ELEMENTS = 300;
const MAX_POINTS = 20_000;
const MAX_TEXT = 120;
/** An arrow stored without points is drawn this long. */
const BARE_ARROW = 80;

/** A position and the direction the vehicle's front points: degrees clockwise from +x. */
export interface Pose {
  x: number;
  y: number;
  heading: number;
}

export type Point = [number, number];

export interface SceneElement {
  kind: 'road' | 'arrow' | 'stroke' | 'sign' | 'label';
  x: number;
  y: number;
  points?: Point[];
  text?: string;
}

export interface Scene {
  vehicles: Partial<Record<Role, Pose>>;
  elements: SceneElement[];
}

type Raw = Record<string, unknown>;
const num = (v: unknown): number | undefined =>
  typeof v === 'number' && Number.isFinite(v) ? v : undefined;

function rawElements(sketch: unknown): Raw[] {
  const elements = (sketch as { elements?: unknown } | undefined)?.elements;
  if (typeof elements !== 'object' || elements === null || Array.isArray(elements)) return [];
  return Object.entries(elements as Raw)
    .filter(([, e]) => typeof e === 'object' && e !== null && !Array.isArray(e))
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .slice(0, MAX_ELEMENTS)
    .map(([, e]) => e as Raw);
}

/** Normalises an angle to (-180, 180]. */
export function wrapDegrees(a: number): number {
  const r = ((a % 360) + 360) % 360;
  return r > 180 ? r - 360 : r;
}

export function sceneOf(sketch: unknown): Scene {
  // The document's 0° faces up; a heading's 0° faces right (+x).
  const headingOf = (rotation: number) => wrapDegrees(rotation - 90);
  const budget = { points: MAX_POINTS };
  const scene: Scene = { vehicles: {}, elements: [] };
  for (const e of rawElements(sketch)) {
    const x = (num(e.x) ?? 0) * SKETCH_WIDTH;
    const y = (num(e.y) ?? 0) * SKETCH_HEIGHT;
    const rotation = Math.max(-3600, Math.min(3600, num(e.rotation) ?? 0));
    switch (e.kind) {
      case 'vehicle': {
        const role = e.vehicle === 'A' || e.vehicle === 'B' ? e.vehicle : undefined;
        // The first vehicle of each role counts (ids are sorted, so this is deterministic).
        if (role && !scene.vehicles[role] && num(e.x) !== undefined && num(e.y) !== undefined)
          scene.vehicles[role] = { x, y, heading: headingOf(rotation) };
        break;
      }
      case 'road':
      case 'stroke':
      case 'arrow': {
        let points = pointsOf(e, budget);
        if (!points && e.kind === 'arrow') {
          const h = (headingOf(rotation) * Math.PI) / 180;
          const dx = (Math.cos(h) * BARE_ARROW) / 2;
          const dy = (Math.sin(h) * BARE_ARROW) / 2;
          points = [
            [x - dx, y - dy],
            [x + dx, y + dy],
          ];
        }
        if (points) scene.elements.push({ kind: e.kind, x, y, points });
        break;
      }
      case 'sign':
      case 'label': {
        const text = typeof e.text === 'string' ? e.text.slice(0, MAX_TEXT) : '';
        scene.elements.push({ kind: e.kind, x, y, text });
        break;
      }
      default:
        break;
    }
  }
  return scene;
}

function pointsOf(e: Raw, budget: { points: number }): Point[] | undefined {
  if (!Array.isArray(e.points)) return undefined;
  const flat = e.points as unknown[];
  const out: Point[] = [];
  for (let i = 0; i + 1 < flat.length && budget.points > 0; i += 2) {
    const px = num(flat[i]);
    const py = num(flat[i + 1]);
    if (px === undefined || py === undefined) continue;
    out.push([px * SKETCH_WIDTH, py * SKETCH_HEIGHT]);
    budget.points--;
  }
  return out.length >= 2 ? out : undefined;
}
