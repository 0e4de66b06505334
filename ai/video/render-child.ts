/**
 * The renderer's child process (forked by renderer.ts, one per video): receives a plan, draws
 * every frame with @napi-rs/canvas and pipes the raw RGBA frames into ffmpeg, which encodes
 * H.264 into an MP4 with its index at the front (+faststart); writes the poster (the impact
 * frame, or the still) as PNG. A separate process so a slow or huge render never blocks the
 * AI service's event loop, and so the parent can kill it (with ffmpeg) at its limits.
 */
import { spawn } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createCanvas, GlobalFonts } from '@napi-rs/canvas';
import { drawFrame } from './draw.js';
import type { VideoPlan } from './plan.js';

export interface RenderJob {
  plan: VideoPlan;
  ffmpeg: string;
  outDir: string;
  /** ffmpeg's encoder threads. */
  threads: number;
}

export type RenderReply =
  { ok: true; frames: number; video: string; poster: string } | { ok: false; error: string };

/** Fonts with Latin and Arabic glyphs, from the Debian packages scripts/system-packages.ts installs. */
const FONTS: Array<[string, string]> = [
  ['/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf', 'Noto Sans'],
  ['/usr/share/fonts/truetype/noto/NotoSans-Bold.ttf', 'Noto Sans'],
  ['/usr/share/fonts/truetype/noto/NotoNaskhArabic-Regular.ttf', 'Noto Naskh Arabic'],
  ['/usr/share/fonts/opentype/fonts-hosny-amiri/Amiri-Regular.ttf', 'Amiri'],
];

function registerFonts(): void {
  for (const [file, family] of FONTS)
    if (existsSync(file)) GlobalFonts.registerFromPath(file, family);
}

async function render(job: RenderJob): Promise<RenderReply> {
  registerFonts();
  const { plan } = job;
  const canvas = createCanvas(plan.width, plan.height);
  const ctx = canvas.getContext('2d');
  const video = path.join(job.outDir, 'video.mp4');
  const poster = path.join(job.outDir, 'poster.png');
  const ffmpeg = spawn(
    job.ffmpeg,
    [
      ...['-hide_banner', '-loglevel', 'error', '-nostdin', '-y'],
      ...['-f', 'rawvideo', '-pix_fmt', 'rgba', '-s', `${plan.width}x${plan.height}`],
      ...['-r', String(plan.fps), '-i', 'pipe:0'],
      ...['-c:v', 'libx264', '-preset', 'veryfast', '-crf', '23', '-pix_fmt', 'yuv420p'],
      ...['-threads', String(job.threads), '-movflags', '+faststart', '-an', video],
    ],
    { stdio: ['pipe', 'ignore', 'pipe'] },
  );
  let stderr = '';
  ffmpeg.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
  const exited = new Promise<number | null>((resolve, reject) => {
    ffmpeg.once('error', reject);
    ffmpeg.once('close', resolve);
  });
  ffmpeg.stdin.on('error', () => undefined); // ffmpeg gone: its exit code tells why
  const frames = Math.round(plan.durationSeconds * plan.fps);
  const posterAt = plan.still ? 0 : plan.timeline.impactSeconds + 0.6;
  let posterPng: Buffer | undefined;
  let still: Buffer | undefined;
  for (let i = 0; i < frames; i++) {
    const seconds = i / plan.fps;
    if (!still) drawFrame(ctx, plan, seconds);
    // A still is drawn once; every frame is the same picture.
    const pixels = still ?? Buffer.from(canvas.data());
    if (plan.still) still = pixels;
    if (!posterPng && seconds >= posterAt) posterPng = await canvas.encode('png');
    if (!ffmpeg.stdin.write(pixels)) {
      await new Promise<void>((resolve) => {
        ffmpeg.stdin.once('drain', resolve);
        ffmpeg.once('close', () => resolve());
      });
    }
    if (ffmpeg.exitCode !== null) break;
  }
  ffmpeg.stdin.end();
  const code = await exited;
  if (code !== 0) return { ok: false, error: `ffmpeg exited ${code}: ${stderr.trim()}` };
  await writeFile(poster, posterPng ?? (await canvas.encode('png')));
  return { ok: true, frames, video, poster };
}

process.once('message', (job: RenderJob) => {
  // The service went away (stopped, killed): nobody will read the result, so stop and clean up.
  process.once('disconnect', () => {
    rmSync(job.outDir, { recursive: true, force: true });
    process.exit(1);
  });
  void render(job)
    .catch((err: unknown): RenderReply => ({ ok: false, error: String(err) }))
    .then((reply) => process.send?.(reply, () => process.exit(0)));
});
