/**
 * The reconstruction video: `videos` constats with the simulator's content (a road, both
 * vehicles, an arrow, finger strokes, a label, ticked boxes) planned and rendered one after the
 * other, as the service does with `AI_VIDEO_CONCURRENCY=1`. Measured per video: wall seconds
 * (frames drawn in the child process and encoded by ffmpeg), the peak resident memory of the
 * renderer and ffmpeg together, and the MP4's size. The media store is left out: a put is a
 * file write. `AI_VIDEO_FFMPEG` picks the ffmpeg, as it does for the service.
 */
import { randomUUID } from 'node:crypto';
import { viewOf } from '../../ai/constat-view.js';
import { findEncoder } from '../../ai/video/encoder.js';
import { planVideo } from '../../ai/video/plan.js';
import { VideoRenderer } from '../../ai/video/renderer.js';
import { loadTemplates } from '../../ai/video/templates.js';
import type { ConstatFinalizedData } from '../../integrations/events.js';
import { pairContent } from '../sim/content.js';
import { seededRandom } from '../sim/random.js';
import { percentiles, type Percentiles } from './stats.js';

export interface VideoBenchResult {
  videos: number;
  encoder: string;
  frames: number;
  secondsPerVideo: Percentiles;
  /** Highest peak over the videos: renderer process and ffmpeg together, MiB. */
  peakMemoryMiB: number;
  meanBytes: number;
}

export async function measureVideo(opts: {
  videos: number;
  progress?: { tick(n?: number): void };
}): Promise<VideoBenchResult> {
  // AI_VIDEO_FFMPEG measures another build (e.g. the npm-shipped one) than the one found.
  const encoder = findEncoder(process.env.AI_VIDEO_FFMPEG || undefined);
  if (!encoder.available) throw new Error(encoder.reason);
  const templates = loadTemplates();
  const renderer = new VideoRenderer({
    ffmpeg: encoder.path,
    concurrency: 1,
    timeoutMs: 600_000,
    maxMemoryMb: 4096,
  });
  const rng = seededRandom('bench-video');
  const seconds: number[] = [];
  let peak = 0;
  let bytes = 0;
  let frames = 0;
  for (let i = 0; i < opts.videos; i++) {
    const { content } = await pairContent(rng.fork(i), ['saa', 'trust']);
    const data = {
      constatId: randomUUID(),
      sessionId: randomUUID(),
      formVersion: 'dz',
      contentHash: '0'.repeat(64),
      content,
      signatures: [],
      parties: { A: { userId: 'a', insurer: 'saa' }, B: { userId: 'b', insurer: 'trust' } },
      finalizedAt: new Date().toISOString(),
    } as unknown as ConstatFinalizedData;
    const rendered = await renderer.render(planVideo(viewOf(data), templates));
    seconds.push(rendered.seconds);
    peak = Math.max(peak, rendered.peakRssBytes);
    bytes += rendered.video.byteLength;
    frames = rendered.frames;
    opts.progress?.tick();
  }
  return {
    videos: opts.videos,
    encoder: `${encoder.version} (${encoder.source})`,
    frames,
    secondsPerVideo: percentiles(seconds),
    peakMemoryMiB: peak / 2 ** 20,
    meanBytes: bytes / Math.max(1, opts.videos),
  };
}
