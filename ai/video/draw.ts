/**
 * Draws one frame of a plan on a 2D canvas (@napi-rs/canvas, Skia): the sketch, the vehicles
 * at their pose for that moment, the impact mark once it happened, the advisory line, the
 * place and time, and the captions in French (left to right) and Arabic (right to left, shaped
 * by Skia). Runs in the renderer's child process only.
 */
import type { SKRSContext2D } from '@napi-rs/canvas';
import {
  ADVISORY,
  BOTTOM_BAND,
  ROLE_COLOURS,
  TOP_BAND,
  VEHICLE_LENGTH,
  VEHICLE_WIDTH,
  toVideo,
  vehiclePoseAt,
  type VideoPlan,
} from './plan.js';
import { SKETCH_HEIGHT, SKETCH_WIDTH } from './scene.js';

export const LATIN_FONT = '"Noto Sans", "DejaVu Sans", sans-serif';
export const ARABIC_FONT = '"Noto Naskh Arabic", "Amiri", "Noto Sans Arabic", sans-serif';
const BACKGROUND = '#e9ecef';
const PAPER = '#fafafa';
const IMPACT = '#d10000';

/** Text cut with an ellipsis to fit `width` pixels. */
function fit(ctx: SKRSContext2D, text: string, width: number): string {
  if (ctx.measureText(text).width <= width) return text;
  let lo = 0;
  let hi = text.length;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (ctx.measureText(`${text.slice(0, mid)}…`).width <= width) lo = mid;
    else hi = mid - 1;
  }
  return `${text.slice(0, lo)}…`;
}

function line(ctx: SKRSContext2D, text: string, x: number, y: number, rtl: boolean, size: number) {
  ctx.direction = rtl ? 'rtl' : 'ltr';
  ctx.textAlign = rtl ? 'right' : 'left';
  ctx.font = `${size}px ${rtl ? ARABIC_FONT : LATIN_FONT}`;
  ctx.fillText(fit(ctx, text, ctx.canvas.width - 48), x, y);
}

function drawScene(ctx: SKRSContext2D, plan: VideoPlan): void {
  const { scale } = plan.view;
  const [x0, y0] = toVideo(plan, { x: 0, y: 0 });
  ctx.fillStyle = PAPER;
  ctx.fillRect(x0, y0, SKETCH_WIDTH * scale, SKETCH_HEIGHT * scale);
  const poly = (pts: ReadonlyArray<readonly [number, number]>) => {
    ctx.beginPath();
    pts.forEach(([x, y], i) => {
      const [vx, vy] = toVideo(plan, { x, y });
      if (i === 0) ctx.moveTo(vx, vy);
      else ctx.lineTo(vx, vy);
    });
  };
  const layers = ['road', 'stroke', 'arrow', 'sign', 'label'] as const;
  for (const kind of layers) {
    for (const e of plan.scene.elements.filter((x) => x.kind === kind)) {
      ctx.save();
      if (kind === 'road' && e.points) {
        poly(e.points);
        ctx.strokeStyle = '#b9bec4';
        ctx.lineWidth = 70 * scale;
        ctx.stroke();
        ctx.setLineDash([22 * scale, 16 * scale]);
        ctx.strokeStyle = '#ffffff';
        ctx.lineWidth = 3;
        ctx.stroke();
      } else if (kind === 'stroke' && e.points) {
        poly(e.points);
        ctx.strokeStyle = '#333333';
        ctx.lineWidth = 3;
        ctx.lineJoin = 'round';
        ctx.stroke();
      } else if (kind === 'arrow' && e.points) {
        poly(e.points);
        ctx.strokeStyle = '#444444';
        ctx.lineWidth = 4;
        ctx.stroke();
        arrowHead(ctx, plan, e.points);
      } else if (kind === 'sign') {
        const [x, y] = toVideo(plan, e);
        ctx.beginPath();
        ctx.arc(x, y, 20, 0, Math.PI * 2);
        ctx.fillStyle = '#ffffff';
        ctx.fill();
        ctx.lineWidth = 5;
        ctx.strokeStyle = '#c00000';
        ctx.stroke();
        ctx.fillStyle = '#111111';
        ctx.textAlign = 'center';
        ctx.font = `16px ${LATIN_FONT}`;
        ctx.fillText((e.text ?? '').slice(0, 6), x, y + 6);
      } else if (kind === 'label') {
        const [x, y] = toVideo(plan, e);
        ctx.fillStyle = '#111111';
        ctx.textAlign = 'center';
        ctx.font = `22px ${LATIN_FONT}, ${ARABIC_FONT}`;
        ctx.fillText(e.text ?? '', x, y);
      }
      ctx.restore();
    }
  }
}

function arrowHead(
  ctx: SKRSContext2D,
  plan: VideoPlan,
  pts: ReadonlyArray<readonly [number, number]>,
): void {
  const [ax, ay] = toVideo(plan, { x: pts[pts.length - 2]![0], y: pts[pts.length - 2]![1] });
  const [bx, by] = toVideo(plan, { x: pts[pts.length - 1]![0], y: pts[pts.length - 1]![1] });
  const a = Math.atan2(by - ay, bx - ax);
  ctx.beginPath();
  ctx.moveTo(bx, by);
  ctx.lineTo(bx - 16 * Math.cos(a - 0.45), by - 16 * Math.sin(a - 0.45));
  ctx.lineTo(bx - 16 * Math.cos(a + 0.45), by - 16 * Math.sin(a + 0.45));
  ctx.closePath();
  ctx.fillStyle = '#444444';
  ctx.fill();
}

function drawVehicles(ctx: SKRSContext2D, plan: VideoPlan, seconds: number): void {
  const { scale } = plan.view;
  const impacted = seconds >= plan.timeline.impactSeconds || plan.still;
  for (const v of plan.vehicles) {
    const pose = vehiclePoseAt(plan, v, seconds);
    const [x, y] = toVideo(plan, pose);
    const l = VEHICLE_LENGTH * scale;
    const w = VEHICLE_WIDTH * scale;
    const colours = ROLE_COLOURS[v.role];
    ctx.save();
    ctx.translate(x, y);
    ctx.rotate((pose.heading * Math.PI) / 180);
    ctx.fillStyle = colours.body;
    ctx.strokeStyle = '#111111';
    ctx.lineWidth = 2;
    ctx.beginPath();
    ctx.roundRect(-l / 2, -w / 2, l, w, 8);
    ctx.fill();
    ctx.stroke();
    // Windscreen: shows which end is the front.
    ctx.fillStyle = '#dfe9f3';
    ctx.fillRect(l / 2 - 0.3 * l, -w / 2 + 5, 0.12 * l, w - 10);
    if (v.door && impacted) {
      ctx.fillStyle = colours.body;
      ctx.fillRect(0, -w / 2 - 0.32 * l, 5, 0.32 * l);
    }
    ctx.rotate((-pose.heading * Math.PI) / 180);
    ctx.fillStyle = colours.text;
    ctx.textAlign = 'center';
    ctx.font = `bold 24px ${LATIN_FONT}`;
    ctx.fillText(v.role, 0, 9);
    ctx.restore();
  }
}

function drawImpact(ctx: SKRSContext2D, plan: VideoPlan, seconds: number): void {
  if (!plan.impact || seconds < plan.timeline.impactSeconds) return;
  const [x, y] = toVideo(plan, plan.impact);
  // A pulse for half a second, then a steady mark.
  const since = seconds - plan.timeline.impactSeconds;
  const r = since < 0.5 ? 14 + 30 * since : 20;
  ctx.save();
  ctx.beginPath();
  ctx.arc(x, y, r, 0, Math.PI * 2);
  ctx.lineWidth = 5;
  ctx.strokeStyle = IMPACT;
  ctx.stroke();
  ctx.beginPath();
  ctx.arc(x, y, 7, 0, Math.PI * 2);
  ctx.fillStyle = IMPACT;
  ctx.fill();
  ctx.restore();
}

function drawBands(ctx: SKRSContext2D, plan: VideoPlan): void {
  const { width, height } = ctx.canvas;
  ctx.fillStyle = '#202428';
  ctx.fillRect(0, 0, width, TOP_BAND);
  ctx.fillRect(0, height - BOTTOM_BAND, width, BOTTOM_BAND);
  ctx.fillStyle = '#ffd54a';
  line(ctx, ADVISORY.fr, 24, 21, false, 16);
  line(ctx, ADVISORY.ar, width - 24, 42, true, 17);
  ctx.fillStyle = '#ffffff';
  const top = height - BOTTOM_BAND;
  line(ctx, plan.captions.A.fr, 24, top + 27, false, 20);
  line(ctx, plan.captions.A.ar, width - 24, top + 56, true, 21);
  line(ctx, plan.captions.B.fr, 24, top + 88, false, 20);
  line(ctx, plan.captions.B.ar, width - 24, top + 117, true, 21);
}

/** The opening card and the still's notes, over the sketch. */
function drawPanel(ctx: SKRSContext2D, plan: VideoPlan, lines: Array<[string, boolean]>): void {
  const { width } = ctx.canvas;
  const h = 40 + lines.length * 34;
  const y0 = TOP_BAND + 20;
  ctx.save();
  ctx.globalAlpha = 0.9;
  ctx.fillStyle = '#ffffff';
  ctx.fillRect(120, y0, width - 240, h);
  ctx.globalAlpha = 1;
  ctx.strokeStyle = '#202428';
  ctx.lineWidth = 2;
  ctx.strokeRect(120, y0, width - 240, h);
  ctx.fillStyle = '#111111';
  lines.forEach(([text, rtl], i) => {
    const y = y0 + 38 + i * 34;
    if (rtl) line(ctx, text, width - 144, y, true, 21);
    else line(ctx, text, 144, y, false, 20);
  });
  ctx.restore();
  void plan;
}

export function drawFrame(ctx: SKRSContext2D, plan: VideoPlan, seconds: number): void {
  const { width, height } = ctx.canvas;
  ctx.fillStyle = BACKGROUND;
  ctx.fillRect(0, 0, width, height);
  drawScene(ctx, plan);
  drawVehicles(ctx, plan, seconds);
  drawImpact(ctx, plan, seconds);
  drawBands(ctx, plan);
  if (plan.still) {
    const notes = plan.notes.filter((n) => n.code !== 'advisory');
    drawPanel(
      ctx,
      plan,
      notes.flatMap((n): Array<[string, boolean]> => [
        [n.fr, false],
        [n.ar, true],
      ]),
    );
  } else if (seconds < plan.timeline.startSeconds) {
    drawPanel(ctx, plan, [
      ['Reconstitution indicative — avis automatique, pas une preuve', false],
      ['إعادة بناء تقريبية — رأي آلي، ليست دليلا', true],
      ...(plan.placeLine ? [[plan.placeLine, false] as [string, boolean]] : []),
    ]);
  }
}
