/**
 * Turns the video function on when it can work: enabled, a media store to put the videos in,
 * and an ffmpeg with libx264 (encoder.ts). Otherwise it stays off with one log line, and the
 * reason is what `/readyz` shows under `features.video`.
 */
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { AiFunction } from '../functions.js';
import type { AiMedia } from '../media.js';
import { findEncoder } from './encoder.js';
import { videoFunction } from './function.js';
import { VideoRenderer } from './renderer.js';
import { loadTemplates } from './templates.js';

export interface VideoSettings {
  enabled: boolean;
  /** An ffmpeg to use instead of looking for one. */
  ffmpeg?: string;
  concurrency: number;
  timeoutMs: number;
  maxMemoryMb: number;
}

export interface VideoSetup {
  fn?: AiFunction;
  /** `available (…)` or `unavailable: why`, for /readyz. */
  status: string;
}

export function setUpVideo(
  settings: VideoSettings | undefined,
  media: AiMedia | undefined,
  logger: Logger,
  registry?: Registry,
): VideoSetup {
  // The templates are checked even when video is off: a bad edit fails the start.
  const templates = loadTemplates();
  const off = (why: string): VideoSetup => {
    logger.info(`reconstruction video off: ${why}`);
    return { status: `unavailable: ${why}` };
  };
  if (!settings?.enabled) return off('disabled (AI_VIDEO=false)');
  if (!media) return off('no media store to keep the videos in');
  const encoder = findEncoder(settings.ffmpeg);
  if (!encoder.available) return off(encoder.reason);
  const renderer = new VideoRenderer({
    ffmpeg: encoder.path,
    concurrency: settings.concurrency,
    timeoutMs: settings.timeoutMs,
    maxMemoryMb: settings.maxMemoryMb,
  });
  const status = `available (${encoder.version}, ${encoder.source})`;
  logger.info(
    { encoder: encoder.path, source: encoder.source, templates: templates.version },
    `reconstruction video on: ${encoder.version}`,
  );
  return {
    fn: videoFunction({
      templates,
      renderer,
      media,
      encoder: encoder.version,
      ...(registry ? { registry } : {}),
    }),
    status,
  };
}
