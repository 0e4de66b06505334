/**
 * The benchmark harness (`npm run bench`) in its --quick mode: every setup starts, every
 * measurement produces figures, ratios to the reference are computed, targets are judged, and
 * the generated part of the benchmarks document is written without touching the prose around
 * it; the PDF report gives its PDFs per second and finalization → PDF ready. The figures themselves are not asserted: a quick run on a shared machine says nothing
 * about them.
 */
// test-run: time limit 10 min
// (The quick run takes 3-4 minutes alone; beside the rest of the suite on two cores it has
// taken over five.)
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { runBench } from '../scripts/bench/run.js';
import {
  BEGIN,
  END,
  formatText,
  writeBenchmarksDoc,
  type BenchReport,
} from '../scripts/bench/report.js';
import { TARGETS } from '../scripts/bench/targets.js';
import { setUp } from './support/suite.js';

interface Ctx {
  report?: BenchReport;
  dir?: string;
}

const test = suite<Ctx>('bench', {});

setUp(test, async (ctx) => {
  ctx.dir = await mkdtemp(path.join(os.tmpdir(), 'constat-bench-test-'));
  ctx.report = await runBench({ quick: true, showProgress: false, log: () => {} });
});
test.after(async (ctx) => {
  if (ctx.dir) await rm(ctx.dir, { recursive: true, force: true });
});

const finite = (v: number | undefined, what: string) =>
  assert.ok(v !== undefined && Number.isFinite(v), `${what}: ${v}`);

test('every setup produces fan-out and capacity figures', (ctx) => {
  const report = ctx.report!;
  assert.equal(
    report.targets.map((t) => t.id),
    [...TARGETS],
  );
  for (const t of report.targets) {
    assert.is(t.error, undefined, `${t.id}: ${t.error}`);
    finite(t.fanout?.latencyMs.p50, `${t.id} fan-out p50`);
    finite(t.fanout?.latencyMs.p99, `${t.id} fan-out p99`);
    assert.is(t.fanout!.updates, report.config.fanout.updates);
    const capacity = t.capacity!;
    assert.ok(capacity.steps.length >= 1, `${t.id} ran a capacity step`);
    for (const step of capacity.steps) {
      assert.ok(step.samples > 0, `${t.id} step ${step.sessions} has samples`);
      assert.is(step.failedToConnect, 0, `${t.id} step ${step.sessions} connected every session`);
      assert.is(step.rssKiB.length, t.id.endsWith('redis') ? 2 : 1);
      for (const kib of step.rssKiB) assert.ok(kib > 10_000, `${t.id} RSS read: ${kib}`);
    }
  }
});

test('every server is probed from inside: event loop and GC per window, heap per idle session', (ctx) => {
  const report = ctx.report!;
  assert.is(report.rounds, 1);
  assert.match(report.commit, /^([0-9a-f]{7,}(\+dirty)?|unknown)$/);
  for (const t of report.targets) {
    const instances = t.id.endsWith('redis') ? 2 : 1;
    const fanout = t.loop?.['fan-out'];
    assert.is(fanout?.length, instances, `${t.id} fan-out window read on every instance`);
    for (const r of fanout!) {
      finite(r.p99Ms, `${t.id} event-loop p99`);
      assert.ok(r.maxMs >= r.p99Ms && r.p99Ms >= r.p50Ms, `${t.id} delay percentiles ordered`);
      assert.ok(r.windowMs > 0 && r.gc.count >= 0 && r.gc.totalMs >= 0, `${t.id} GC read`);
    }
    for (const step of t.capacity!.steps) assert.is(step.loop.length, instances);
    finite(t.capacity!.heapPerSessionBytes, `${t.id} heap per idle session`);
    assert.is(t.rounds?.length, 1);
    finite(t.rounds![0]!.loadBefore, `${t.id} load before its round`);
    assert.ok(t.spread && t.spread['fan-out p99 (ms)'], `${t.id} spread of fan-out p99`);
  }
  const text = formatText(report);
  assert.match(text, new RegExp(`commit ${report.commit.replace('+', '\\+')}`));
  assert.match(text, /round 1, load before each setup: ours-redis [\d.]+/);
  assert.match(text, /Event loop and GC/);
  assert.match(text, /Spread over 1 round/);
});

test('this server is measured end to end: finalizations committed and on Kafka', (ctx) => {
  const report = ctx.report!;
  for (const id of ['ours-redis', 'ours-embedded']) {
    const f = report.targets.find((t) => t.id === id)!.finalize!;
    assert.is(f.failures, 0, id);
    assert.ok(f.committedPerSecond > 0, `${id} committed/s`);
    finite(f.serverCpuMsPerConstat, `${id} server CPU per constat`);
    assert.ok(f.sqlStatementsPerConstat > 0, `${id} SQL statements counted`);
    if (process.env.KAFKA_BROKERS) assert.ok(f.kafkaPerSecond! > 0, `${id} on Kafka`);
  }
  for (const id of ['reference', 'hocuspocus-redis']) {
    assert.is(report.targets.find((t) => t.id === id)!.finalize, undefined);
  }
});

test('the PDF report is measured: PDFs per second and finalization → PDF ready', (ctx) => {
  const r = ctx.report!.reports;
  assert.ok(r && !('error' in r), `reports: ${r && 'error' in r ? r.error : 'missing'}`);
  assert.ok(r.pdfsPerSecond > 0, 'PDFs per second');
  finite(r.renderMs.p50, 'one PDF p50');
  finite(r.readyMs.p50, 'finalization → PDF p50');
  assert.ok(r.readyMs.p50 >= 0, 'the PDF is recorded after the constat');
  assert.match(formatText(ctx.report!), /PDFs\/s from one warm browser/);
});

test('photos: uploads through the server and to presigned URLs, finalization with 8 photos', (ctx) => {
  const media = ctx.report!.media;
  assert.ok(media && !('error' in media), `media: ${JSON.stringify(media)}`);
  assert.equal(
    media.stores.map((s) => `${s.store}/${s.path}`),
    ['files/server', 's3/presigned'],
  );
  for (const s of media.stores) {
    assert.is(s.failures, 0, s.store);
    assert.ok(s.uploadMBPerSecond > 0, `${s.store} upload MB/s`);
    finite(s.uploadMs.p50, `${s.store} PUT p50`);
    finite(s.finalizeMs.none, `${s.store} finalize without photos`);
    finite(s.finalizeMs.eight, `${s.store} finalize with 8 photos`);
  }
  assert.match(formatText(ctx.report!), /S3, presigned upload\s+[\d.]+ MB\/s/);
});

test('large documents: this server and the reference, next to a large one and at each size', (ctx) => {
  const report = ctx.report!;
  for (const id of ['ours-redis', 'ours-embedded', 'reference']) {
    const b = report.targets.find((t) => t.id === id)!.bigdoc!;
    assert.ok(b, `${id} measured`);
    assert.ok(b.neighbour.documentBytes >= report.config.bigdoc.neighbourBytes, `${id} neighbour`);
    assert.is(b.neighbour.updates, report.config.bigdoc.updates);
    finite(b.neighbour.latencyMs.p99, `${id} neighbour p99`);
    finite(b.neighbour.eventLoopP99Ms, `${id} event-loop delay`);
    assert.is(b.own.length, report.config.bigdoc.ownBytes.length);
    for (const [i, m] of b.own.entries()) {
      assert.ok(m.documentBytes >= report.config.bigdoc.ownBytes[i]!, `${id} own ${i} size`);
      finite(m.latencyMs.p99, `${id} own ${i} p99`);
    }
  }
  assert.is(report.targets.find((t) => t.id === 'hocuspocus-redis')!.bigdoc, undefined);
  assert.match(formatText(report), /Large documents/);
  assert.ok(report.verdicts.some((v) => v.target.startsWith("small session's fan-out p99")));
});

test('figures are printed with their ratio to the reference, and targets judged', (ctx) => {
  const report = ctx.report!;
  const text = formatText(report);
  assert.match(text, /fan-out latency/);
  assert.match(text, /constat, 2 instances via Redis\s+p50\s+[\d.]+\s+[\d.]+×/);
  assert.match(text, /@y\/websocket-server \(reference\)\s+p50\s+[\d.]+\s+1\.00×/);
  assert.match(text, /finalizations per second/);
  assert.ok(report.verdicts.length >= 6);
  const fanout = report.verdicts.find((v) => v.target.startsWith('fan-out p99 through Redis ≤'));
  assert.type(fanout!.met, 'boolean');
  assert.ok(report.machine.cores > 0 && report.machine.node.startsWith('v'));
});

test('--write replaces only the generated block of the benchmarks document', async (ctx) => {
  const file = path.join(ctx.dir!, 'benchmarks.md');
  await writeFile(
    file,
    `# Benchmarks\n\nProse before.\n\n${BEGIN}\nold figures\n${END}\n\nProse after.\n`,
  );
  await writeBenchmarksDoc(file, ctx.report!);
  await writeBenchmarksDoc(file, ctx.report!);
  const text = await readFile(file, 'utf8');
  assert.ok(text.startsWith('# Benchmarks\n\nProse before.'));
  assert.ok(text.trimEnd().endsWith('Prose after.'));
  assert.not.match(text, /old figures/);
  assert.is(text.split(BEGIN).length, 2, 'one generated block');
  assert.match(text, /\| constat, 2 instances via Redis\s+\|/);
  assert.match(text, /Machine: \d+ × /);
});

test.run();
