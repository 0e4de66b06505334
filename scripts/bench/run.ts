/**
 * `npm run bench`: figures for this server, side by side, in one run. `--quick` runs a small
 * version of every measurement (CI checks the harness produces figures).
 */
import { parseArgs } from 'node:util';
import os from 'node:os';
import { measureFanout, type FanoutResult } from './fanout.js';
import { progress } from './progress.js';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
  },
});
const updates = values.quick ? 60 : 1_000;
const rate = 50;

const results: FanoutResult[] = [];
for (const setup of ['embedded', 'redis-two-instances'] as const) {
  const bar = progress(`fan-out ${setup}`, updates);
  try {
    results.push(await measureFanout(setup, { updates, ratePerSecond: rate, progress: bar }));
  } finally {
    bar.stop();
  }
}

const [embedded, redis] = results;
const summary = {
  date: new Date().toISOString(),
  machine: `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}`,
  fanout: results,
  ratios: {
    redisTwoInstancesOverEmbedded: {
      p50: redis!.latencyMs.p50 / embedded!.latencyMs.p50,
      p99: redis!.latencyMs.p99 / embedded!.latencyMs.p99,
    },
  },
};
if (values.json) {
  process.stdout.write(JSON.stringify(summary, null, 2) + '\n');
} else {
  process.stdout.write(`\n${summary.machine} — ${summary.date}\n`);
  process.stdout.write(`fan-out latency, ${rate} updates/s, ${updates} updates (ms):\n`);
  for (const r of results) {
    const l = r.latencyMs;
    process.stdout.write(
      `  ${r.setup.padEnd(22)} p50 ${l.p50.toFixed(2)}  p95 ${l.p95.toFixed(2)}  p99 ${l.p99.toFixed(2)}  max ${l.max.toFixed(2)}\n`,
    );
  }
  const q = summary.ratios.redisTwoInstancesOverEmbedded;
  process.stdout.write(
    `  ratio redis/embedded    p50 ${q.p50.toFixed(2)}×  p99 ${q.p99.toFixed(2)}×\n`,
  );
}
