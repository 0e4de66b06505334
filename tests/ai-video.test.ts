/**
 * The reconstruction video end to end on a real PostgreSQL (the AI store) and a file media
 * store: for each sketch + circumstance fixture the pipeline's video lane renders an MP4 that
 * ffprobe reads as 1280×720 H.264, yuv420p, 30 fps, of the planned duration, with its index
 * first (+faststart); frames extracted to PNG show each vehicle's colour at its computed start
 * position and at the impact, and the impact mark. A degenerate sketch gives a still with its
 * note. A constat delivered twice is rendered once. The render limits (time, memory) kill the
 * child and fail the function; a missing encoder turns the function off. Embedded in
 * `constat serve`, a constat finalized through the whole flow gets its video on the timeline
 * (through core's checks of ai-results), and `/readyz` says video is available.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { loadImage, createCanvas } from '@napi-rs/canvas';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { createTestDatabase, type TestDatabase } from '../persistence/test-database.js';
import { createAiStore, migrateAiStore, type AiStore } from '../ai/store.js';
import { AiPipeline } from '../ai/pipeline.js';
import { AiMetrics } from '../ai/metrics.js';
import { openAiMedia, sha256Hex, type AiMedia } from '../ai/media.js';
import { viewOf } from '../ai/constat-view.js';
import { findEncoder } from '../ai/video/encoder.js';
import { setUpVideo } from '../ai/video/setup.js';
import { RenderLimitError, VideoRenderer } from '../ai/video/renderer.js';
import { loadTemplates } from '../ai/video/templates.js';
import {
  planVideo,
  ROLE_COLOURS,
  toVideo,
  VEHICLE_LENGTH,
  vehiclePoseAt,
  type VideoPlan,
} from '../ai/video/plan.js';
import { createEventValidator } from '../integrations/event-validator.js';
import { cloudEvent, type CloudEvent } from '../integrations/events.js';
import { finalizedData, type FinalizedOverrides } from './fixtures/finalized.js';
import { setUp } from './support/suite.js';
import { gql, startTestServer, token, type TestServer } from './support/server.js';
import { eventually, finalizeConstat } from './support/signing.js';

interface Ctx {
  db: TestDatabase;
  store: AiStore;
  root: string;
  media: AiMedia;
  pipeline: AiPipeline;
  metrics: AiMetrics;
  work: string;
}

const logger = pino({ level: 'silent' });
const test = suite<Ctx>('AI reconstruction video', {} as Ctx);
const templates = loadTemplates();
const encoder = findEncoder();

setUp(test, async (ctx) => {
  ctx.db = await createTestDatabase();
  await migrateAiStore(ctx.db.sql, logger);
  ctx.store = createAiStore(ctx.db.sql);
  ctx.root = await mkdtemp(path.join(os.tmpdir(), 'constat-ai-video-media-'));
  ctx.work = await mkdtemp(path.join(os.tmpdir(), 'constat-ai-video-'));
  ctx.media = await openAiMedia({
    kind: 'files',
    root: ctx.root,
    urlSecret: randomBytes(32).toString('hex'),
  });
  ctx.metrics = new AiMetrics(new Registry());
  const video = setUpVideo(
    { enabled: true, concurrency: 2, timeoutMs: 300_000, maxMemoryMb: 1024 },
    ctx.media,
    logger,
    ctx.metrics.registry,
  );
  if (!video.fn) throw new Error(`video is off: ${video.status}`);
  ctx.pipeline = new AiPipeline({
    functions: [video.fn],
    store: ctx.store,
    validator: createEventValidator(),
    metrics: ctx.metrics,
    logger,
  });
});
test.after(async (ctx) => {
  await ctx.media?.close();
  await ctx.db?.drop();
  if (ctx.root) await rm(ctx.root, { recursive: true, force: true });
  if (ctx.work) await rm(ctx.work, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------
// Fixtures: sketch + circumstances. Each names the frames and positions the test checks.

interface Fixture {
  name: string;
  overrides: FinalizedOverrides;
}

const FIXTURES: Fixture[] = [
  {
    // A turns left at a crossing into B going straight.
    name: 'crossing, A turns left (dz 16), B straight (dz 2)',
    overrides: {
      vehicleA: { circumstances: { '16': true }, impactPoint: { x: 0.5, y: 0 } },
      vehicleB: { circumstances: { '2': true }, impactPoint: null },
      sketch: {
        elements: {
          r1: { kind: 'road', x: 0, y: 0.5, points: [0, 0.5, 1, 0.5] },
          r2: { kind: 'road', x: 0.5, y: 0, points: [0.5, 0, 0.5, 1] },
          a: { kind: 'vehicle', vehicle: 'A', x: 0.47, y: 0.4, rotation: 0 },
          b: { kind: 'vehicle', vehicle: 'B', x: 0.62, y: 0.3, rotation: 270 },
        },
      },
    },
  },
  {
    // Both vehicles facing right (as the reference app places them): A reverses into B, parked.
    name: 'car park, A reversing (dz 11), B parked (dz 8)',
    overrides: {
      vehicleA: { circumstances: { '11': true }, impactPoint: { x: 0.5, y: 1 } },
      vehicleB: { circumstances: { '8': true }, impactPoint: null },
      sketch: {
        elements: {
          r: { kind: 'road', x: 0.1, y: 0.5, points: [0.1, 0.5, 0.9, 0.5] },
          a: { kind: 'vehicle', vehicle: 'A', x: 0.42, y: 0.5, rotation: 90 },
          b: { kind: 'vehicle', vehicle: 'B', x: 0.3, y: 0.5, rotation: 90 },
          s: { kind: 'sign', x: 0.7, y: 0.3, text: 'P' },
        },
      },
    },
  },
  {
    // EU form, an arrow shows where A came from; B changes lane.
    name: 'eu form, A straight along an arrow (eu 9), B changing lanes (eu 10)',
    overrides: {
      formVersion: 'eu',
      vehicleA: { circumstances: { '9': true }, impactPoint: null },
      vehicleB: { circumstances: { '10': true }, impactPoint: null },
      sketch: {
        elements: {
          a: { kind: 'vehicle', vehicle: 'A', x: 0.52, y: 0.55, rotation: 90 },
          b: { kind: 'vehicle', vehicle: 'B', x: 0.65, y: 0.43, rotation: 90 },
          w: { kind: 'arrow', x: 0.52, y: 0.38, points: [0.52, 0.38, 0.52, 0.48] },
          l: { kind: 'label', x: 0.5, y: 0.87, text: 'Rue Didouche Mourad' },
        },
      },
    },
  },
];

// ---------------------------------------------------------------------------------------------
// Helpers: the event, ffprobe, frames to pixels.

const envelope = (data: ReturnType<typeof finalizedData>) =>
  JSON.stringify(cloudEvent('dz.constat.finalized.v1', data.constatId, data));

interface VideoData {
  url: string;
  mediaKey: string;
  sha256: string;
  byteSize: number;
  contentType: string;
  durationSeconds: number;
  still: boolean;
  advisory: boolean;
  notes: Array<{ code: string; fr: string; ar: string }>;
  poster: { mediaKey: string; sha256: string; byteSize: number; contentType: string };
}

async function generate(ctx: Ctx, data: ReturnType<typeof finalizedData>): Promise<CloudEvent> {
  const outcome = await ctx.pipeline.process(envelope(data));
  if (outcome.kind !== 'processed') throw new Error(`dead letter: ${outcome.error}`);
  assert.equal(outcome.failures, []);
  assert.is(outcome.results.length, 1);
  return outcome.results[0]!;
}

async function fetchVideo(ctx: Ctx, d: VideoData, name: string): Promise<string> {
  const bytes = await ctx.media.read({ key: d.mediaKey, sha256: d.sha256, size: d.byteSize });
  const file = path.join(ctx.work, `${name}.mp4`);
  await writeFile(file, bytes);
  return file;
}

function probe(file: string) {
  const out = execFileSync(
    'ffprobe',
    [
      ...['-v', 'error', '-select_streams', 'v:0', '-count_frames'],
      ...['-show_entries', 'stream=codec_name,width,height,pix_fmt,avg_frame_rate,nb_read_frames'],
      ...['-show_entries', 'format=duration,format_name', '-of', 'json', file],
    ],
    { encoding: 'utf8' },
  );
  return JSON.parse(out) as {
    streams: Array<{
      codec_name: string;
      width: number;
      height: number;
      pix_fmt: string;
      avg_frame_rate: string;
      nb_read_frames: string;
    }>;
    format: { duration: string; format_name: string };
  };
}

/** Frame `n` of `file` as RGBA pixels. */
async function frame(file: string, n: number, work: string) {
  const png = path.join(work, `${path.basename(file)}-${n}.png`);
  execFileSync('ffmpeg', [
    ...['-v', 'error', '-y', '-i', file, '-vf', `select=eq(n\\,${n})`],
    ...['-vframes', '1', png],
  ]);
  const image = await loadImage(png);
  const canvas = createCanvas(image.width, image.height);
  const ctx = canvas.getContext('2d');
  ctx.drawImage(image, 0, 0);
  const data = ctx.getImageData(0, 0, image.width, image.height).data;
  return (x: number, y: number): [number, number, number] => {
    const i = (Math.round(y) * image.width + Math.round(x)) * 4;
    return [data[i]!, data[i + 1]!, data[i + 2]!];
  };
}

const rgb = (hex: string): [number, number, number] => [
  parseInt(hex.slice(1, 3), 16),
  parseInt(hex.slice(3, 5), 16),
  parseInt(hex.slice(5, 7), 16),
];

function assertColour(got: [number, number, number], hex: string, what: string): void {
  const want = rgb(hex);
  const diff = Math.max(...got.map((v, i) => Math.abs(v - want[i]!)));
  assert.ok(diff <= 32, `${what}: got rgb(${got.join(',')}), want ${hex} (off by ${diff})`);
}

/** A point in the rear half of a vehicle's body (clear of the windscreen, the letter, the mark). */
function bodyPoint(plan: VideoPlan, role: 'A' | 'B', seconds: number): [number, number] {
  const v = plan.vehicles.find((x) => x.role === role)!;
  const pose = vehiclePoseAt(plan, v, seconds);
  const h = (pose.heading * Math.PI) / 180;
  const back = 0.22 * VEHICLE_LENGTH;
  return toVideo(plan, { x: pose.x - Math.cos(h) * back, y: pose.y - Math.sin(h) * back });
}

// ---------------------------------------------------------------------------------------------

for (const fixture of FIXTURES) {
  test(`video: ${fixture.name}`, async (ctx) => {
    const data = finalizedData(fixture.overrides);
    const event = await generate(ctx, data);
    assert.is(event.type, 'dz.ai.video_generated.v1');
    assert.is(event.source, 'constat-ai-video');
    // The result passes the checks core applies to ai-results (schema included).
    createEventValidator().parse(Buffer.from(JSON.stringify(event)));
    const d = event.data as unknown as VideoData;
    assert.is(d.contentType, 'video/mp4');
    assert.is(d.advisory, true);
    assert.is(d.still, false);
    assert.is(d.url, `urn:constat:media:ai/sha256/${d.sha256}`);
    const file = await fetchVideo(ctx, d, data.constatId);

    const info = probe(file);
    const s = info.streams[0]!;
    assert.is(s.codec_name, 'h264');
    assert.is(s.width, 1280);
    assert.is(s.height, 720);
    assert.is(s.pix_fmt, 'yuv420p');
    assert.is(s.avg_frame_rate, '30/1');
    assert.is(Number(s.nb_read_frames), 300);
    assert.ok(Math.abs(Number(info.format.duration) - 10) < 0.05, info.format.duration);
    assert.is(d.durationSeconds, 10);
    // +faststart: the index (moov) comes before the media data (mdat).
    const head = (await ctx.media.read({ key: d.mediaKey, sha256: d.sha256 })).subarray(0, 4096);
    const text = Buffer.from(head).toString('latin1');
    assert.ok(text.indexOf('moov') >= 0 && text.indexOf('moov') < text.indexOf('mdat') >>> 0);

    const poster = await ctx.media.read({ key: d.poster.mediaKey, sha256: d.poster.sha256 });
    assert.is(d.poster.contentType, 'image/png');
    assert.equal([...poster.subarray(1, 4)], [0x50, 0x4e, 0x47]);

    // Expected positions come from the same plan the service made.
    const plan = planVideo(viewOf(data), templates);
    const start = plan.timeline.startSeconds;
    const impact = plan.timeline.impactSeconds;
    const atStart = await frame(file, Math.round(start * plan.fps), ctx.work);
    const atImpact = await frame(file, Math.round((impact + 0.5) * plan.fps), ctx.work);
    for (const role of ['A', 'B'] as const) {
      const colour = ROLE_COLOURS[role].body;
      assertColour(atStart(...bodyPoint(plan, role, start)), colour, `${role} at its start`);
      assertColour(atImpact(...bodyPoint(plan, role, impact)), colour, `${role} at the impact`);
    }
    // A vehicle that moved more than its length is no longer where it started.
    for (const v of plan.vehicles) {
      const [sx, sy] = bodyPoint(plan, v.role, start);
      const [ex, ey] = bodyPoint(plan, v.role, impact);
      if (Math.hypot(sx - ex, sy - ey) <= VEHICLE_LENGTH * plan.view.scale) continue;
      const want = rgb(ROLE_COLOURS[v.role].body);
      const left = atImpact(sx, sy).some((c, i) => Math.abs(c - want[i]!) > 32);
      assert.ok(left, `${v.role} left its start`);
    }
    // The impact mark (a red dot) at the impact point, after the impact only.
    const [ix, iy] = toVideo(plan, plan.impact!);
    assertColour(atImpact(ix, iy), '#d10000', 'impact mark');
    const before = atStart(ix, iy);
    assert.ok(Math.abs(before[0] - 0xd1) + before[1] > 60, 'no impact mark before the impact');
  });
}

test('a degenerate sketch gives a still with a note, not a crash', async (ctx) => {
  const data = finalizedData({
    sketch: {
      elements: {
        r: { kind: 'road', x: 0, y: 0.5, points: [0, 0.5, 1, 0.5] },
        a: { kind: 'vehicle', vehicle: 'A', x: 0.3, y: 0.5, rotation: 90 },
        junk: { kind: 'vehicle', vehicle: 'B', x: 'left', y: {} },
      },
    },
  });
  const event = await generate(ctx, data);
  const d = event.data as unknown as VideoData;
  assert.is(d.still, true);
  assert.is(d.advisory, true);
  const note = d.notes.find((n) => n.code === 'sketch_without_vehicles');
  assert.ok(note, 'the still says why');
  assert.match(note.fr, /véhicule B absent du croquis/);
  const file = await fetchVideo(ctx, d, `${data.constatId}-still`);
  const info = probe(file);
  assert.is(info.streams[0]!.codec_name, 'h264');
  assert.ok(Math.abs(Number(info.format.duration) - 4) < 0.05, info.format.duration);
  // Every frame is the same picture: first and last agree, A stands where sketched.
  const plan = planVideo(viewOf(data), templates);
  const first = await frame(file, 0, ctx.work);
  const last = await frame(file, 119, ctx.work);
  const [ax, ay] = bodyPoint(plan, 'A', 0);
  assertColour(first(ax, ay), ROLE_COLOURS.A.body, 'A in the still');
  assertColour(last(ax, ay), ROLE_COLOURS.A.body, 'A in the still, last frame');
  // The note's panel (white) is drawn over the sketch.
  assertColour(first(640, 80), '#ffffff', 'note panel');
});

test('a constat delivered twice is rendered once and gives the same event', async (ctx) => {
  const data = finalizedData(FIXTURES[1]!.overrides);
  const rendersBefore = await renders(ctx);
  const objects = () => readdir(path.join(ctx.root, 'objects', 'ai', 'sha256'));
  const first = await generate(ctx, data);
  const stored = await objects();
  const again = await generate(ctx, data);
  assert.equal(again, first);
  assert.is((await renders(ctx)) - rendersBefore, 1);
  // Nothing new in the store: the second delivery wrote nothing.
  assert.equal(await objects(), stored);
  const d = first.data as unknown as VideoData;
  assert.ok(stored.includes(d.sha256) && stored.includes(d.poster.sha256));
  // One stored result per constat and function.
  const rows = await ctx.db
    .sql`select count(*)::int as n from ai.results where constat_id = ${data.constatId}`;
  assert.is(rows[0]!.n, 1);
  // The stored object is the published one.
  const bytes = await ctx.media.read({ key: d.mediaKey, sha256: d.sha256 });
  assert.is(sha256Hex(bytes), d.sha256);
});

async function limitError(p: Promise<unknown>): Promise<RenderLimitError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof RenderLimitError) return err;
    throw err;
  }
  throw new Error('the render was not stopped');
}

async function renders(ctx: Ctx): Promise<number> {
  const text = await ctx.metrics.registry.metrics();
  return Number(/constat_ai_video_render_seconds_count (\d+)/.exec(text)?.[1] ?? 0);
}

test('a render past its time or memory limit is killed and the function fails', async () => {
  if (!encoder.available) throw new Error(`no encoder: ${encoder.reason}`);
  const plan = planVideo(viewOf(finalizedData(FIXTURES[0]!.overrides)), templates);
  const slow = new VideoRenderer({
    ffmpeg: encoder.path,
    concurrency: 1,
    timeoutMs: 300,
    maxMemoryMb: 2048,
  });
  assert.match((await limitError(slow.render(plan))).message, /longer than 300 ms/);
  const small = new VideoRenderer({
    ffmpeg: encoder.path,
    concurrency: 1,
    timeoutMs: 300_000,
    maxMemoryMb: 40,
  });
  assert.match((await limitError(small.render(plan))).message, /more than 40 MB/);
});

test('without a usable ffmpeg the function is off and says why', async (ctx) => {
  const off = setUpVideo(
    { enabled: true, ffmpeg: '/bin/true', concurrency: 1, timeoutMs: 10_000, maxMemoryMb: 512 },
    ctx.media,
    logger,
  );
  assert.is(off.fn, undefined);
  assert.match(off.status, /^unavailable: \/bin\/true has no libx264 encoder/);
  const disabled = setUpVideo(undefined, ctx.media, logger);
  assert.match(disabled.status, /^unavailable: disabled/);
  const noMedia = setUpVideo(
    { enabled: true, concurrency: 1, timeoutMs: 10_000, maxMemoryMb: 512 },
    undefined,
    logger,
  );
  assert.match(noMedia.status, /^unavailable: no media store/);
});

test.run();

const embedded = suite<{ server: TestServer }>('embedded video', {} as { server: TestServer });
setUp(embedded, async (ctx) => {
  ctx.server = await startTestServer({
    database: 'pglite',
    hub: 'memory',
    env: { AI_VIDEO: 'true' },
  });
});
embedded.after(async (ctx) => {
  await ctx.server?.stop();
});

embedded(
  'a finalized constat gets its video on the timeline; /readyz reports video',
  async (ctx) => {
    const ready = (await (await fetch(`${ctx.server.url}/readyz`)).json()) as {
      features: Record<string, string>;
    };
    assert.match(
      ready.features.video!,
      /^available \(ffmpeg .* libx264, (system|npm|configured)\)$/,
    );
    const constat = await finalizeConstat(ctx.server);
    const insurer = await token('staff-saa', 'desk-v', { roles: ['insurer:saa'] });
    const query = `query C($id: ID!) { constat(id: $id) { aiFindings { type source } } }`;
    const findings = await eventually(async () => {
      const res = await gql(ctx.server.url, insurer, query, { id: constat.constatId });
      const list = (res.data?.constat?.aiFindings ?? []) as Array<{ type: string; source: string }>;
      return list.some((f) => f.type === 'dz.ai.video_generated.v1') ? list : undefined;
    }, 240_000);
    assert.ok(findings.some((f) => f.source === 'constat-ai-video'));
    // The other functions' results are there too (their own lane).
    assert.ok(findings.some((f) => f.type === 'dz.ai.cost_estimated.v1'));
  },
);

embedded.run();
