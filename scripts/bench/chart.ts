/**
 * The cost curves as a PNG drawn by the benchmark itself: a grid of small line charts, one per
 * figure and axis (CPU per update, heap per session, finalization time; against sessions and
 * against document size), one line per setup. `layoutChart` is pure (data → pixel positions,
 * axes, ticks, labels) and unit-tested; `renderChart` only paints a layout with
 * @napi-rs/canvas.
 */
import { existsSync } from 'node:fs';
import { createCanvas, GlobalFonts } from '@napi-rs/canvas';

export type AxisFormat = 'count' | 'bytes' | 'ms' | 'kib';

export interface PanelSpec {
  title: string;
  xLabel: string;
  xFormat: AxisFormat;
  yLabel: string;
  yFormat: AxisFormat;
  series: Array<{ name: string; points: Array<[x: number, y: number]> }>;
}

export interface ChartSpec {
  title: string;
  subtitle: string;
  panels: PanelSpec[];
  columns: number;
  panelWidth: number;
  panelHeight: number;
}

export interface Tick {
  value: number;
  /** Pixel position along the axis (x for the x axis, y for the y axis). */
  pos: number;
  label: string;
}

export interface PanelLayout {
  title: string;
  xLabel: string;
  yLabel: string;
  /** The plot area inside the panel, in pixels of the whole image. */
  plot: { x: number; y: number; width: number; height: number };
  xTicks: Tick[];
  yTicks: Tick[];
  lines: Array<{ name: string; color: string; points: Array<[number, number]> }>;
}

export interface ChartLayout {
  width: number;
  height: number;
  title: string;
  subtitle: string;
  panels: PanelLayout[];
  legend: Array<{ name: string; color: string }>;
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e'];
const HEADER = 64;
const LEGEND = 36;
const MARGIN = { left: 72, right: 32, top: 34, bottom: 52 };

/** Round steps (1, 2, 5 × 10^k) from 0 to at least `max`, about `count` of them. */
export function niceTicks(max: number, count = 5): number[] {
  if (!(max > 0) || !Number.isFinite(max)) return [0, 1];
  const rough = max / count;
  const magnitude = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= rough)!;
  const ticks: number[] = [];
  for (let v = 0; v < max + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  if (ticks.at(-1)! < max) ticks.push(Number((ticks.at(-1)! + step).toPrecision(12)));
  return ticks;
}

export function formatValue(v: number, format: AxisFormat): string {
  const trim = (x: number) => Number(x.toPrecision(3)).toString();
  switch (format) {
    case 'count':
      return v >= 1000 ? `${trim(v / 1000)}k` : trim(v);
    case 'bytes':
      return v >= 1e6 ? `${trim(v / 1e6)} MB` : v >= 1e3 ? `${trim(v / 1e3)} KB` : `${trim(v)} B`;
    case 'ms':
      return `${trim(v)}`;
    case 'kib':
      return `${trim(v)}`;
  }
}

/**
 * Pixel positions for every panel: x on a log scale through the measured points (sessions and
 * sizes grow by factors), ticked at them; y linear from 0 with round ticks.
 */
export function layoutChart(spec: ChartSpec): ChartLayout {
  const names = [...new Set(spec.panels.flatMap((p) => p.series.map((s) => s.name)))];
  const color = (name: string) => COLORS[names.indexOf(name) % COLORS.length]!;
  const rows = Math.ceil(spec.panels.length / spec.columns);
  const panels = spec.panels.map((p, i): PanelLayout => {
    const left = (i % spec.columns) * spec.panelWidth;
    const top = HEADER + LEGEND + Math.floor(i / spec.columns) * spec.panelHeight;
    const plot = {
      x: left + MARGIN.left,
      y: top + MARGIN.top,
      width: spec.panelWidth - MARGIN.left - MARGIN.right,
      height: spec.panelHeight - MARGIN.top - MARGIN.bottom,
    };
    const points = p.series
      .flatMap((s) => s.points)
      .filter(([x, y]) => x > 0 && Number.isFinite(y));
    const xs = [...new Set(points.map(([x]) => x))].sort((a, b) => a - b);
    const lo = Math.log(xs[0] ?? 1);
    const hi = Math.log(xs.at(-1) ?? 10);
    const xPos = (x: number) =>
      hi === lo ? plot.x + plot.width / 2 : plot.x + ((Math.log(x) - lo) / (hi - lo)) * plot.width;
    const yTickValues = niceTicks(Math.max(0, ...points.map(([, y]) => y)));
    const yMax = yTickValues.at(-1)!;
    const yPos = (y: number) => plot.y + plot.height - (y / yMax) * plot.height;
    return {
      title: p.title,
      xLabel: p.xLabel,
      yLabel: p.yLabel,
      plot,
      xTicks: xs.map((x) => ({ value: x, pos: xPos(x), label: formatValue(x, p.xFormat) })),
      yTicks: yTickValues.map((y) => ({
        value: y,
        pos: yPos(y),
        label: formatValue(y, p.yFormat),
      })),
      lines: p.series.map((s) => ({
        name: s.name,
        color: color(s.name),
        points: s.points
          .filter(([x, y]) => x > 0 && Number.isFinite(y))
          .sort((a, b) => a[0] - b[0])
          .map(([x, y]) => [xPos(x), yPos(Math.max(0, y))]),
      })),
    };
  });
  return {
    width: spec.columns * spec.panelWidth,
    height: HEADER + LEGEND + rows * spec.panelHeight,
    title: spec.title,
    subtitle: spec.subtitle,
    panels,
    legend: names.map((name) => ({ name, color: color(name) })),
  };
}

const FONT_FILES: Array<[string, string]> = [
  ['/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf', 'Noto Sans'],
  ['/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf', 'DejaVu Sans'],
];

/** Paints a layout; returns the PNG. */
export async function renderChart(layout: ChartLayout): Promise<Buffer> {
  for (const [file, family] of FONT_FILES)
    if (existsSync(file)) GlobalFonts.registerFromPath(file, family);
  const font = (px: number, bold = false) =>
    `${bold ? 'bold ' : ''}${px}px "Noto Sans", "DejaVu Sans", sans-serif`;
  const canvas = createCanvas(layout.width, layout.height);
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = '#ffffff';
  ctx.fillRect(0, 0, layout.width, layout.height);
  ctx.fillStyle = '#111111';
  ctx.font = font(20, true);
  ctx.fillText(layout.title, 16, 30);
  ctx.font = font(13);
  ctx.fillStyle = '#555555';
  ctx.fillText(layout.subtitle, 16, 52);
  let lx = 16;
  for (const item of layout.legend) {
    ctx.fillStyle = item.color;
    ctx.fillRect(lx, HEADER + 10, 22, 4);
    ctx.fillStyle = '#111111';
    ctx.font = font(13);
    ctx.fillText(item.name, lx + 30, HEADER + 17);
    lx += 40 + ctx.measureText(item.name).width;
  }
  for (const p of layout.panels) {
    const { plot } = p;
    ctx.fillStyle = '#111111';
    ctx.font = font(14, true);
    ctx.fillText(p.title, plot.x, plot.y - 14);
    ctx.font = font(11);
    ctx.strokeStyle = '#e5e5e5';
    ctx.lineWidth = 1;
    ctx.textAlign = 'right';
    for (const t of p.yTicks) {
      ctx.beginPath();
      ctx.moveTo(plot.x, t.pos);
      ctx.lineTo(plot.x + plot.width, t.pos);
      ctx.stroke();
      ctx.fillStyle = '#444444';
      ctx.fillText(t.label, plot.x - 6, t.pos + 4);
    }
    ctx.textAlign = 'center';
    for (const t of p.xTicks) {
      ctx.beginPath();
      ctx.moveTo(t.pos, plot.y);
      ctx.lineTo(t.pos, plot.y + plot.height);
      ctx.stroke();
      ctx.fillStyle = '#444444';
      ctx.fillText(t.label, t.pos, plot.y + plot.height + 16);
    }
    ctx.fillText(p.xLabel, plot.x + plot.width / 2, plot.y + plot.height + 36);
    ctx.save();
    ctx.translate(plot.x - 56, plot.y + plot.height / 2);
    ctx.rotate(-Math.PI / 2);
    ctx.fillText(p.yLabel, 0, 0);
    ctx.restore();
    ctx.textAlign = 'left';
    ctx.strokeStyle = '#888888';
    ctx.strokeRect(plot.x, plot.y, plot.width, plot.height);
    for (const line of p.lines) {
      ctx.strokeStyle = line.color;
      ctx.fillStyle = line.color;
      ctx.lineWidth = 2;
      ctx.beginPath();
      line.points.forEach(([x, y], i) => (i === 0 ? ctx.moveTo(x, y) : ctx.lineTo(x, y)));
      ctx.stroke();
      for (const [x, y] of line.points) {
        ctx.beginPath();
        ctx.arc(x, y, 3.5, 0, Math.PI * 2);
        ctx.fill();
      }
    }
  }
  return canvas.encode('png');
}
