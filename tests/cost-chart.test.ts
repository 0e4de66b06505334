/**
 * The cost-curve chart (scripts/bench/chart.ts, curves.ts), without a server: round ticks,
 * labels, where each point lands in its panel (x on a log scale through the measured points,
 * y linear from 0), one colour per setup across panels, and a PNG of the layout's size.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { formatValue, layoutChart, niceTicks, renderChart } from '../scripts/bench/chart.js';
import { curvesChart, type CurvesReport } from '../scripts/bench/curves.js';

const test = suite('cost chart');

const close = (a: number, b: number, what: string) =>
  assert.ok(Math.abs(a - b) < 1e-6, `${what}: ${a} ≠ ${b}`);

test('niceTicks: round steps from 0 that cover the maximum', () => {
  assert.equal(niceTicks(9.3), [0, 2, 4, 6, 8, 10]);
  assert.equal(niceTicks(0.042), [0, 0.01, 0.02, 0.03, 0.04, 0.05]);
  assert.equal(niceTicks(100), [0, 20, 40, 60, 80, 100]);
  assert.equal(niceTicks(0), [0, 1]);
  assert.equal(niceTicks(NaN), [0, 1]);
});

test('formatValue: sessions and sizes read as people write them', () => {
  assert.is(formatValue(1_000, 'count'), '1k');
  assert.is(formatValue(5_000, 'count'), '5k');
  assert.is(formatValue(120, 'count'), '120');
  assert.is(formatValue(10_000, 'bytes'), '10 KB');
  assert.is(formatValue(1_048_576, 'bytes'), '1.05 MB');
  assert.is(formatValue(0.125, 'ms'), '0.125');
});

const report: CurvesReport = {
  date: '2026-12-01T08:00:00.000Z',
  config: {
    setups: ['ours-embedded', 'ours-redis'],
    sessions: [1_000, 5_000, 10_000],
    documentBytes: [10_000, 100_000, 1_000_000],
    settleMs: 0,
    windowMs: 0,
    finalizations: 1,
    sizeUpdates: 1,
  },
  series: [
    {
      setup: 'ours-embedded',
      label: 'one',
      bySessions: [
        { x: 1_000, cpuMsPerUpdate: 0.1, heapBytesPerSession: 10_240, finalizeMs: 50 },
        { x: 5_000, cpuMsPerUpdate: 0.2, heapBytesPerSession: 10_240, finalizeMs: 60 },
        { x: 10_000, cpuMsPerUpdate: 0.4, heapBytesPerSession: 20_480, finalizeMs: 90 },
      ],
      bySize: [
        { x: 10_000, cpuMsPerUpdate: 0.1, heapBytesPerSession: 50_000, finalizeMs: 40 },
        { x: 1_000_000, cpuMsPerUpdate: 3, heapBytesPerSession: 4_000_000, finalizeMs: 400 },
      ],
    },
    {
      setup: 'ours-redis',
      label: 'two',
      bySessions: [{ x: 1_000, cpuMsPerUpdate: 0.3, heapBytesPerSession: 30_720, finalizeMs: 70 }],
      bySize: [],
    },
  ],
  loadAverage: { before: 1, after: 2 },
  durationSeconds: 1,
};

test('layout: six panels; points on a log x axis and a linear y axis from 0', () => {
  const layout = layoutChart(curvesChart(report));
  assert.is(layout.panels.length, 6);
  assert.equal(
    layout.legend.map((l) => l.name),
    ['one', 'two'],
  );
  const cpu = layout.panels[0]!;
  const { plot } = cpu;
  assert.equal(
    cpu.xTicks.map((t) => t.label),
    ['1k', '5k', '10k'],
  );
  close(cpu.xTicks[0]!.pos, plot.x, '1k at the left edge');
  close(cpu.xTicks[2]!.pos, plot.x + plot.width, '10k at the right edge');
  close(cpu.xTicks[1]!.pos, plot.x + Math.log10(5) * plot.width, '5k where log10(5) puts it');
  assert.equal(
    cpu.yTicks.map((t) => t.value),
    [0, 0.1, 0.2, 0.3, 0.4],
  );
  close(cpu.yTicks[0]!.pos, plot.y + plot.height, 'y = 0 at the bottom');
  const [one, two] = cpu.lines as [(typeof cpu.lines)[0], (typeof cpu.lines)[0]];
  close(one.points[2]![1], plot.y, 'the largest value at the top of its ticks');
  close(one.points[0]![1], plot.y + plot.height * 0.75, '0.1 of 0.4 is a quarter up');
  close(two.points[0]![1], plot.y + plot.height * 0.25, '0.3 of 0.4');
  for (const p of layout.panels) {
    for (const line of p.lines) {
      for (const [x, y] of line.points) {
        assert.ok(x >= p.plot.x - 1e-6 && x <= p.plot.x + p.plot.width + 1e-6, `${p.title} x`);
        assert.ok(y >= p.plot.y - 1e-6 && y <= p.plot.y + p.plot.height + 1e-6, `${p.title} y`);
      }
    }
    // One colour per setup, the same in every panel.
    assert.equal(
      p.lines.map((l) => l.color),
      layout.legend.map((l) => l.color),
    );
  }
  const heap = layout.panels[1]!;
  close(
    heap.lines[0]!.points[2]![1],
    heap.plot.y + heap.plot.height * (1 - 20 / 30),
    '20 of 30 KiB',
  );
  const size = layout.panels[3]!;
  assert.equal(
    size.xTicks.map((t) => t.label),
    ['10 KB', '1 MB'],
  );
  assert.is(size.lines[1]!.points.length, 0, 'a setup without points draws nothing');
  // Panels do not overlap: three per row.
  assert.ok(layout.panels[1]!.plot.x > cpu.plot.x + cpu.plot.width);
  assert.ok(layout.panels[3]!.plot.y > cpu.plot.y + cpu.plot.height);
  assert.is(layout.width, 1200);
});

test('render: a PNG of the layout size', async () => {
  const layout = layoutChart(curvesChart(report));
  const png = await renderChart(layout);
  assert.equal([...png.subarray(1, 4)], [0x50, 0x4e, 0x47]);
  assert.is(png.readUInt32BE(16), layout.width);
  assert.is(png.readUInt32BE(20), layout.height);
});

test.run();
