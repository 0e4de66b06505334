/**
 * Runs renders off the event loop: each video in a child process of its own (render-child.ts,
 * which drives ffmpeg), at most `concurrency` at once, the others queued. A render that runs
 * past `timeoutMs`, or whose processes together hold more than `maxMemoryMb` resident (polled
 * from /proc on Linux), is killed with its ffmpeg, and the call fails naming the limit.
 */
import { fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { VideoPlan } from './plan.js';
import type { RenderJob, RenderReply } from './render-child.js';

export interface RendererOptions {
  ffmpeg: string;
  concurrency: number;
  timeoutMs: number;
  maxMemoryMb: number;
  /** ffmpeg threads per video (default 1: a 2-core host shares them with everything else). */
  threads?: number;
}

export interface Rendered {
  video: Uint8Array;
  poster: Uint8Array;
  frames: number;
  seconds: number;
  /** Highest resident memory of the child and ffmpeg together, in bytes (0 off Linux). */
  peakRssBytes: number;
}

export class RenderLimitError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RenderLimitError';
  }
}

const CHILD = fileURLToPath(new URL('./render-child.ts', import.meta.url));
const POLL_MS = 100;
/** Nothing legitimate comes near this; refuse to load more into the service. */
const MAX_OUTPUT_BYTES = 64 * 1024 * 1024;

/** Resident bytes of `pid` and every process below it (Linux /proc; 0 elsewhere). */
export function treeRss(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
    const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .split(' ')
      .filter(Boolean)
      .map(Number);
    return kb * 1024 + children.reduce((sum, c) => sum + treeRss(c), 0);
  } catch {
    return 0;
  }
}

export class VideoRenderer {
  readonly #opts: RendererOptions;
  #running = 0;
  readonly #waiting: Array<() => void> = [];

  constructor(opts: RendererOptions) {
    this.#opts = opts;
  }

  /** Renders waiting for a slot (for metrics). */
  get queued(): number {
    return this.#waiting.length;
  }

  async render(plan: VideoPlan): Promise<Rendered> {
    if (this.#running >= this.#opts.concurrency)
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
    this.#running++;
    try {
      return await this.#renderNow(plan);
    } finally {
      this.#running--;
      this.#waiting.shift()?.();
    }
  }

  async #renderNow(plan: VideoPlan): Promise<Rendered> {
    const outDir = await mkdtemp(path.join(os.tmpdir(), 'constat-video-'));
    const started = performance.now();
    try {
      const { reply, peakRssBytes } = await this.#child({
        plan,
        ffmpeg: this.#opts.ffmpeg,
        outDir,
        threads: this.#opts.threads ?? 1,
      });
      if (!reply.ok) throw new Error(`video render failed: ${reply.error}`);
      const [video, poster] = await Promise.all([readFile(reply.video), readFile(reply.poster)]);
      if (video.byteLength > MAX_OUTPUT_BYTES || video.byteLength === 0)
        throw new Error(`video render produced ${video.byteLength} bytes`);
      return {
        video,
        poster,
        frames: reply.frames,
        seconds: (performance.now() - started) / 1000,
        peakRssBytes,
      };
    } finally {
      await rm(outDir, { recursive: true, force: true });
    }
  }

  #child(job: RenderJob): Promise<{ reply: RenderReply; peakRssBytes: number }> {
    const { timeoutMs, maxMemoryMb } = this.#opts;
    const child = fork(CHILD, [], {
      execArgv: ['--import', 'tsx', `--max-old-space-size=${Math.max(64, maxMemoryMb)}`],
      // Its own process group, so ffmpeg goes down with it.
      detached: true,
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      serialization: 'advanced',
    });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
    let peakRssBytes = 0;
    let limit: string | undefined;
    const kill = (why: string) => {
      limit ??= why;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    };
    const timer = setTimeout(() => kill(`took longer than ${timeoutMs} ms`), timeoutMs);
    const poll = setInterval(() => {
      const rss = treeRss(child.pid!);
      peakRssBytes = Math.max(peakRssBytes, rss);
      if (rss > maxMemoryMb * 1024 * 1024)
        kill(`used ${Math.round(rss / 1048576)} MB, more than ${maxMemoryMb} MB`);
    }, POLL_MS);
    return new Promise((resolve, reject) => {
      let reply: RenderReply | undefined;
      child.once('message', (m) => (reply = m as RenderReply));
      child.once('error', (err) => kill(String(err)));
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        clearInterval(poll);
        if (limit) reject(new RenderLimitError(`video render stopped: it ${limit}`));
        else if (reply) resolve({ reply, peakRssBytes });
        else
          reject(
            new Error(
              `video renderer exited (${signal ?? code}) without an answer: ${stderr.trim()}`,
            ),
          );
      });
      child.send(job);
    });
  }
}
