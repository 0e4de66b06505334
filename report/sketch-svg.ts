/**
 * The accident sketch and the impact point as SVG, drawn from the document's data (never from
 * a picture a phone sent). Coordinates are 0..1 as the phones store them; anything that is not
 * a finite number is skipped, and counts are capped, so hostile content can neither break the
 * markup nor make the page huge.
 */
import type { SketchElement } from '../constat/constat-doc.js';
import { escapeHtml } from './html.js';

const WIDTH = 1000;
const HEIGHT = 600;
const MAX_ELEMENTS = 300;
/** Points drawn in all, over every element: enough for a busy hand-drawn sketch. */
const MAX_POINTS = 20_000;

export const ROLE_COLOURS = {
  A: { fill: '#d6e4f5', stroke: '#1f5fa8' },
  B: { fill: '#fff0b3', stroke: '#b08d00' },
} as const;

const num = (v: unknown): number | undefined =>
  typeof v === 'number' && Number.isFinite(v) ? v : undefined;
const clamp = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, v));
const px = (v: number) => (clamp(v, -1, 2) * WIDTH).toFixed(1);
const py = (v: number) => (clamp(v, -1, 2) * HEIGHT).toFixed(1);

/** What is left of the point budget while one sketch is drawn. */
interface Budget {
  points: number;
}

function points(raw: unknown, budget: Budget): string | undefined {
  if (!Array.isArray(raw)) return undefined;
  const out: string[] = [];
  for (let i = 0; i + 1 < raw.length && budget.points > 0; i += 2) {
    const x = num(raw[i]);
    const y = num(raw[i + 1]);
    if (x !== undefined && y !== undefined) {
      out.push(`${px(x)},${py(y)}`);
      budget.points--;
    }
  }
  return out.length >= 2 ? out.join(' ') : undefined;
}

function element(e: SketchElement, budget: Budget): string {
  const x = num(e.x) ?? 0;
  const y = num(e.y) ?? 0;
  const rotation = clamp(num(e.rotation) ?? 0, -3600, 3600);
  const at = `translate(${px(x)} ${py(y)}) rotate(${rotation.toFixed(1)})`;
  const line = points(e.points, budget);
  switch (e.kind) {
    case 'road':
      return line
        ? `<polyline points="${line}" fill="none" stroke="#bbb" stroke-width="70" stroke-linecap="butt"/>` +
            `<polyline points="${line}" fill="none" stroke="#fff" stroke-width="3" stroke-dasharray="24 18"/>`
        : '';
    case 'vehicle': {
      const role = e.vehicle === 'B' ? 'B' : 'A';
      const c = ROLE_COLOURS[role];
      // Drawn pointing up (front at the top) before rotation, like the impact outline.
      return (
        `<g transform="${at}"><rect x="-22" y="-40" width="44" height="80" rx="10" fill="${c.fill}" stroke="${c.stroke}" stroke-width="4"/>` +
        `<path d="M-14 -30 L14 -30 L0 -44 Z" fill="${c.stroke}"/>` +
        `<text x="0" y="12" text-anchor="middle" font-size="30" font-weight="bold" fill="${c.stroke}">${role}</text></g>`
      );
    }
    case 'arrow':
      return line
        ? `<polyline points="${line}" fill="none" stroke="#333" stroke-width="5" marker-end="url(#arrow)"/>`
        : `<g transform="${at}"><line x1="0" y1="40" x2="0" y2="-40" stroke="#333" stroke-width="5" marker-end="url(#arrow)"/></g>`;
    case 'sign':
      return (
        `<g transform="translate(${px(x)} ${py(y)})"><circle r="24" fill="#fff" stroke="#c00" stroke-width="6"/>` +
        `<text y="8" text-anchor="middle" font-size="20">${escapeHtml(String(e.text ?? '').slice(0, 6))}</text></g>`
      );
    case 'stroke':
      return line
        ? `<polyline points="${line}" fill="none" stroke="#222" stroke-width="3" stroke-linejoin="round"/>`
        : '';
    case 'label':
      return `<text x="${px(x)}" y="${py(y)}" text-anchor="middle" font-size="26"><tspan>${escapeHtml(String(e.text ?? '').slice(0, 120))}</tspan></text>`;
    default:
      return '';
  }
}

/** Draw order: roads under everything, labels on top. */
const LAYER: Record<string, number> = {
  road: 0,
  stroke: 1,
  arrow: 2,
  sign: 3,
  vehicle: 4,
  label: 5,
};

export function sketchSvg(elements: unknown): string {
  const list =
    typeof elements === 'object' && elements !== null && !Array.isArray(elements)
      ? Object.entries(elements as Record<string, SketchElement>)
          .filter(([, e]) => typeof e === 'object' && e !== null)
          .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
          .slice(0, MAX_ELEMENTS)
          .map(([, e]) => e)
      : [];
  list.sort((a, b) => (LAYER[a.kind ?? ''] ?? 9) - (LAYER[b.kind ?? ''] ?? 9));
  const budget: Budget = { points: MAX_POINTS };
  return (
    `<svg class="sketch" viewBox="0 0 ${WIDTH} ${HEIGHT}" xmlns="http://www.w3.org/2000/svg">` +
    `<defs><marker id="arrow" viewBox="0 0 10 10" refX="8" refY="5" markerWidth="5" markerHeight="5" orient="auto-start-reverse"><path d="M0 0 L10 5 L0 10 Z" fill="#333"/></marker></defs>` +
    `<rect width="${WIDTH}" height="${HEIGHT}" fill="#fafafa" stroke="#999"/>` +
    list.map((e) => element(e, budget)).join('') +
    `</svg>`
  );
}

/**
 * A car seen from above (front at the top) with the impact point the driver placed on it:
 * `{ x, y }` in 0..1 over the outline's box.
 */
export function impactSvg(role: 'A' | 'B', impact: unknown): string {
  const c = ROLE_COLOURS[role];
  const p = (typeof impact === 'object' && impact !== null ? impact : {}) as {
    x?: unknown;
    y?: unknown;
  };
  const x = num(p.x);
  const y = num(p.y);
  const mark =
    x !== undefined && y !== undefined
      ? (() => {
          const cx = (clamp(x, 0, 1) * 80 + 10).toFixed(1);
          const cy = (clamp(y, 0, 1) * 160 + 10).toFixed(1);
          return (
            `<circle cx="${cx}" cy="${cy}" r="9" fill="#d00" fill-opacity="0.85"/>` +
            `<circle cx="${cx}" cy="${cy}" r="15" fill="none" stroke="#d00" stroke-width="2.5"/>`
          );
        })()
      : '';
  return (
    `<svg class="impact" viewBox="0 0 100 180" xmlns="http://www.w3.org/2000/svg">` +
    `<path d="M30 10 Q50 2 70 10 L86 40 L88 150 Q88 170 70 172 L30 172 Q12 170 12 150 L14 40 Z" fill="${c.fill}" stroke="${c.stroke}" stroke-width="3"/>` +
    `<path d="M24 52 L76 52 L70 72 L30 72 Z M28 128 L72 128 L76 146 L24 146 Z" fill="#fff" stroke="${c.stroke}" stroke-width="2"/>` +
    mark +
    `</svg>`
  );
}
