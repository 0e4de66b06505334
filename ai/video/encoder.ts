/**
 * Which ffmpeg encodes the videos. In order: the one `AI_VIDEO_FFMPEG` names; Debian's
 * `ffmpeg` on the PATH (maintained, security updates: preferred); the static build shipped in
 * the optional npm package `@ffmpeg-installer/ffmpeg` (ffmpeg 4.1 from 2018, so video works
 * after `npm install` alone). A candidate counts only if it runs and has the libx264 encoder.
 * Nothing is downloaded: without any, video is off and `/readyz` says why.
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

export type Encoder =
  | { available: true; path: string; source: 'configured' | 'system' | 'npm'; version: string }
  | { available: false; reason: string };

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const file = path.join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  return undefined;
}

function npmShipped(): string | undefined {
  try {
    const require = createRequire(import.meta.url);
    return (require('@ffmpeg-installer/ffmpeg') as { path: string }).path;
  } catch {
    return undefined; // not installed, or no build for this platform
  }
}

/** The version line if `file` is an ffmpeg with libx264, else why not. */
export function probe(file: string): { version: string } | { reason: string } {
  const out = spawnSync(file, ['-hide_banner', '-encoders'], { encoding: 'utf8', timeout: 10_000 });
  if (out.error || out.status !== 0)
    return { reason: `${file} does not run: ${out.error?.message ?? `exit ${out.status}`}` };
  if (!/\blibx264\b/.test(out.stdout)) return { reason: `${file} has no libx264 encoder` };
  const version = spawnSync(file, ['-version'], { encoding: 'utf8', timeout: 10_000 });
  const number = /^ffmpeg version (\S+)/.exec(version.stdout ?? '')?.[1];
  return { version: number ? `ffmpeg ${number} libx264` : 'ffmpeg libx264' };
}

export function findEncoder(configured?: string): Encoder {
  const candidates: Array<[string | undefined, 'configured' | 'system' | 'npm']> = configured
    ? [[configured, 'configured']]
    : [
        [onPath('ffmpeg'), 'system'],
        [npmShipped(), 'npm'],
      ];
  const reasons: string[] = [];
  for (const [file, source] of candidates) {
    if (!file) continue;
    const found = probe(file);
    if ('version' in found) return { available: true, path: file, source, version: found.version };
    reasons.push(found.reason);
  }
  return {
    available: false,
    reason:
      reasons.join('; ') ||
      'no ffmpeg: install the Debian package ffmpeg, or the npm package @ffmpeg-installer/ffmpeg',
  };
}
