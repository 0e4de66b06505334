/**
 * The reconstruction video as an AI function (`constat-ai-video`, `dz.ai.video_generated.v1`):
 * plan from the signed content, render off the event loop, store the MP4 and the poster in the
 * media store under their SHA-256, and describe both in the result. The pipeline stores the
 * result the first time, so a redelivered constat republishes it and renders nothing.
 */
import { Histogram, type Registry } from 'prom-client';
import type { AiFunction } from '../functions.js';
import type { AiMedia, StoredMedia } from '../media.js';
import { planVideo } from './plan.js';
import type { VideoRenderer } from './renderer.js';
import type { MotionTemplates } from './templates.js';

export const VIDEO_SERVICE = 'constat-ai-video';

/** A stable name for an object of the media store (not a download link: core signs those). */
export function mediaUri(key: string): string {
  return `urn:constat:media:${key}`;
}

function described(stored: StoredMedia, contentType: string) {
  return {
    url: mediaUri(stored.key),
    mediaKey: stored.key,
    sha256: stored.sha256,
    byteSize: stored.size,
    contentType,
  };
}

export interface VideoFunctionOptions {
  templates: MotionTemplates;
  renderer: VideoRenderer;
  media: AiMedia;
  /** The encoder's version line, kept in every result. */
  encoder: string;
  registry?: Registry;
}

export function videoFunction(opts: VideoFunctionOptions): AiFunction {
  const renderSeconds = new Histogram({
    name: 'constat_ai_video_render_seconds',
    help: 'Wall time to render and encode one reconstruction video',
    buckets: [1, 2, 5, 10, 20, 40, 80, 160],
    registers: opts.registry ? [opts.registry] : [],
  });
  const peakMemory = new Histogram({
    name: 'constat_ai_video_peak_memory_bytes',
    help: 'Peak resident memory of one render (renderer process and ffmpeg together)',
    buckets: [64, 128, 256, 384, 512, 768, 1024].map((mb) => mb * 1024 * 1024),
    registers: opts.registry ? [opts.registry] : [],
  });
  return {
    name: 'video',
    service: VIDEO_SERVICE,
    eventType: 'dz.ai.video_generated.v1',
    async run({ view }) {
      const plan = planVideo(view, opts.templates);
      const rendered = await opts.renderer.render(plan);
      renderSeconds.observe(rendered.seconds);
      if (rendered.peakRssBytes > 0) peakMemory.observe(rendered.peakRssBytes);
      const video = await opts.media.put(rendered.video, 'video/mp4');
      const poster = await opts.media.put(rendered.poster, 'image/png');
      return {
        ...described(video, 'video/mp4'),
        durationSeconds: plan.durationSeconds,
        width: plan.width,
        height: plan.height,
        fps: plan.fps,
        codec: 'h264',
        poster: described(poster, 'image/png'),
        advisory: true,
        still: plan.still,
        notes: plan.notes,
        motions: plan.vehicles.map((v) => ({
          vehicle: v.role,
          template: v.template,
          assumed: v.assumed,
          arrow: v.arrow,
          circumstances: v.boxes,
        })),
        ...(plan.impact ? { impact: plan.impact } : {}),
        templates: plan.templatesVersion,
        encoder: opts.encoder,
      };
    },
  };
}
