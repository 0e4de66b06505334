/**
 * Capacity ramp: how many concurrent sessions (two clients each) an instance carries before
 * fan-out p99 passes the limit. Sessions are added in steps; at each step every session is
 * live (both clients renew their awareness every 15 s, as stock clients do) and edits at a
 * low rate (`ratePerSession`, one update in flight per session), between windows too once the
 * first window ran; the latency of every update in a measurement window is the step's sample.
 * The ramp stops at the first step over the limit, at the time budget, or at the number of
 * sockets the machine allows a process (the file descriptor limit), whichever comes first. The
 * clients run in child processes (capacity-worker.ts) for the same reason.
 *
 * RSS per idle session (`idle`): before the ramp, sessions are connected in two steps and left
 * alone (awareness renewals only) for `settleMs` each time; after each pause every server
 * runs a full garbage collection (through the probe preloaded in it, loop-probe.mjs), its used
 * heap and then its resident memory are read, and the figures are the slopes between the two
 * readings, per instance. Those sessions are then closed, and the ramp starts once the
 * servers are quiet again. (The ramp's own steps also record RSS, after their sessions
 * edited: that is memory after activity, not idle.)
 */
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sleep } from '../../client/device.js';
import { percentiles } from './stats.js';
import type { Progress } from './progress.js';
import { machineTicks, redisCpuSeconds, type BenchSession, type Target } from './targets.js';
import type { WorkerCommand, WorkerReply } from './capacity-worker.js';
import type { LoopReading } from './probe.js';
import { monotonicUs, type ProfileWindow } from './profile.js';

export interface CapacityStep {
  sessions: number;
  p50: number;
  p99: number;
  samples: number;
  lost: number;
  /** Clients the server closed during the step. */
  closed: number;
  failedToConnect: number;
  /** RSS of each instance (KiB) with the step's sessions connected and idle. */
  rssKiB: number[];
  connectSeconds: number;
  /** CPU of each instance during the window, as a share of one core. */
  serverCpu: number[];
  /** CPU of the Redis server during the window (share of one core); setups on Redis only. */
  redisCpu: number | undefined;
  /** Share of the whole machine (every core) busy during the window. */
  machineBusy: number;
  /** Each instance's event-loop delay and GC pauses during the window. */
  loop: LoopReading[];
  /** When the window ran (for a profile's summary of what ran inside it). */
  window: ProfileWindow;
}

export interface CapacityResult {
  steps: CapacityStep[];
  /** The most sessions at which p99 stayed within the limit (0: not even the first step). */
  sessions: number;
  stoppedBy: 'latency' | 'time' | 'fd-limit' | 'errors' | 'end';
  limitMs: number;
  ratePerSession: number;
  /** Sockets per session on one instance (2 on one instance, 1 when A and B are split). */
  socketsPerInstance: number;
  /** How long the servers took to be quiet again after the idle phase, before the ramp. */
  quietAfterIdleSeconds?: number;
  /** Memory per idle session per instance (KiB), from the RSS slope of the idle phase. */
  rssPerSessionKiB: number | undefined;
  /** Used V8 heap per idle session per instance (bytes), after full collections. */
  heapPerSessionBytes: number | undefined;
  /**
   * The idle phase: sessions connected, each instance's RSS (KiB) after the pause and its
   * used heap (bytes) after a full collection.
   */
  idle: Array<{ sessions: number; rssKiB: number[]; heapBytes: number[] }>;
  fdLimit: number;
}

export interface CapacityOptions {
  /** The idle-memory phase: two session counts, and the pause before RSS is read. */
  idle: { sessions: [number, number]; settleMs: number };
  steps: number[];
  windowMs: number;
  ratePerSession: number;
  /** Idle pause after a step's sessions connected, before RSS is read and the window opens. */
  settleMs: number;
  /** Updates per second in a window at least (small steps would give too few samples). */
  minRate: number;
  limitMs: number;
  timeBudgetMs: number;
  /** After the idle phase, how long the ramp may wait for the servers to be quiet. */
  quietMaxMs: number;
  progress: Progress;
}

const WORKER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'capacity-worker.ts');
const SOCKETS_PER_WORKER = 7_000;

type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;

/** The open-file limit of this process (children inherit it). */
export function fdLimit(): number {
  try {
    const match = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    return match ? Number(match[1]) : 1024;
  } catch {
    return 1024;
  }
}

export class Worker {
  readonly child: ChildProcess;
  #next = 0;
  readonly #waiting = new Map<number, (reply: WorkerReply) => void>();

  constructor() {
    this.child = fork(WORKER, [], {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.child.on('message', (reply: WorkerReply) => {
      this.#waiting.get(reply.id)?.(reply);
      this.#waiting.delete(reply.id);
    });
    this.child.on('exit', (code) => {
      for (const [, resolve] of this.#waiting) {
        resolve({ id: -1, connected: 0, failed: -1, errors: [`worker exited with ${code}`] });
      }
      this.#waiting.clear();
    });
  }

  send<R extends WorkerReply>(cmd: WithoutId<WorkerCommand>): Promise<R> {
    const id = this.#next++;
    return new Promise((resolve) => {
      this.#waiting.set(id, resolve as (r: WorkerReply) => void);
      this.child.send({ ...cmd, id } as WorkerCommand);
    });
  }

  async close(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise<void>((r) => this.child.once('exit', () => r()));
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((r) => (timer = setTimeout(r, 5_000)));
    await Promise.race([this.send({ cmd: 'close' }), timeout]);
    clearTimeout(timer);
    const force = setTimeout(() => this.child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(force);
    if (this.child.connected) this.child.disconnect();
  }
}

/** One measurement window over every session the workers hold. */
async function measureWindow(
  target: Target,
  workers: Worker[],
  opts: CapacityOptions,
  n: number,
  rss: number[],
  connectSeconds: number,
): Promise<Omit<CapacityStep, 'failedToConnect'>> {
  const cpu0 = target.cpuSeconds();
  const redis0 = target.usesRedis ? await redisCpuSeconds() : NaN;
  const ticks0 = machineTicks();
  await target.loop(); // opens the window
  const windowStarted = performance.now();
  const startUs = monotonicUs();
  const measured = await Promise.all(
    workers.map((w) =>
      w.send<Extract<WorkerReply, { samples: number[] }>>({
        cmd: 'measure',
        durationMs: opts.windowMs,
        ratePerSession: opts.ratePerSession,
        minRate: opts.minRate / workers.length,
      }),
    ),
  );
  const windowSeconds = (performance.now() - windowStarted) / 1000;
  const window = { label: `${n.toLocaleString('en')} sessions`, startUs, endUs: monotonicUs() };
  const loop = await target.loop();
  const cpu1 = target.cpuSeconds();
  const redis1 = target.usesRedis ? await redisCpuSeconds() : NaN;
  const ticks1 = machineTicks();
  const samples = measured.flatMap((m) => m.samples);
  const lost = measured.reduce((s, m) => s + m.lost, 0);
  // A lost update is as late as it gets.
  const p = percentiles([...samples, ...Array<number>(lost).fill(Infinity)]);
  return {
    sessions: n,
    p50: p.p50,
    p99: p.p99,
    samples: samples.length,
    lost,
    closed: measured.reduce((s, m) => s + m.closed, 0),
    rssKiB: rss,
    connectSeconds,
    serverCpu: cpu1.map((c, i) => (c - cpu0[i]!) / windowSeconds),
    redisCpu: target.usesRedis ? (redis1 - redis0) / windowSeconds : undefined,
    machineBusy: (ticks1.busy - ticks0.busy) / Math.max(1, ticks1.total - ticks0.total),
    loop,
    window,
  };
}

/** Below this share of a core per instance, over one sample (`QUIET_SAMPLE_MS` at most), a server is quiet. */
const QUIET_CPU = 0.15;
const QUIET_SAMPLE_MS = 2_000;

/**
 * Waits until every instance is quiet (at most `maxMs`); the seconds it took. When the
 * idle phase's thousands of sessions leave at once, this server unloads each one (through
 * Redis: the document's state merged into its draft under a compaction lease), which kept two
 * instances at 0.6–2.5 cores for 15–19 s here: the ramp's first steps would measure that.
 */
async function untilQuiet(target: Target, maxMs: number): Promise<number> {
  const started = performance.now();
  const sampleMs = Math.min(QUIET_SAMPLE_MS, maxMs);
  let before = target.cpuSeconds();
  while (performance.now() - started < maxMs) {
    await sleep(sampleMs);
    const now = target.cpuSeconds();
    const busiest = Math.max(...now.map((c, i) => (c - before[i]!) / (sampleMs / 1000)));
    before = now;
    if (!(busiest > QUIET_CPU)) break; // NaN (no /proc reading) counts as quiet
  }
  return (performance.now() - started) / 1000;
}

/** Connects sessions in two steps, reads RSS after each idle pause, then lets them go. */
async function measureIdleMemory(
  target: Target,
  idle: CapacityOptions['idle'],
  result: CapacityResult,
): Promise<void> {
  const worker = new Worker();
  try {
    let have = 0;
    for (const n of idle.sessions) {
      const added = await worker.send<Extract<WorkerReply, { connected: number }>>({
        cmd: 'add',
        wire: target.wire,
        sessions: await createSessions(target, have, n, 'idle'),
      });
      if (added.failed > 0)
        throw new Error(
          `idle phase: ${added.failed} sessions failed to connect: ${added.errors[0]}`,
        );
      have = n;
      await sleep(idle.settleMs);
      // The heap is read after a full collection, and RSS after it: garbage the sessions'
      // creation left in the heap would otherwise land in the slope at random (the same code
      // measured 16 and 70 KB per session in two runs).
      const heapBytes = await target.heapBytes();
      result.idle.push({ sessions: n, rssKiB: target.rssKiB(), heapBytes });
    }
    const [first, last] = result.idle as [CapacityResult['idle'][0], CapacityResult['idle'][0]];
    const slope = (a: number[], b: number[]) =>
      a.reduce((sum, x, i) => sum + (b[i]! - x), 0) / a.length / (last.sessions - first.sessions);
    result.rssPerSessionKiB = slope(first.rssKiB, last.rssKiB);
    result.heapPerSessionBytes = slope(first.heapBytes, last.heapBytes);
  } finally {
    await worker.close(); // the idle sessions' clients leave before the ramp
  }
}

export async function createSessions(
  target: Target,
  from: number,
  to: number,
  tag = 'cap',
): Promise<BenchSession[]> {
  const out: BenchSession[] = [];
  let next = from;
  // Ours opens and joins through GraphQL; a few at a time keeps the database busy, not queued.
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      for (let i = next++; i < to; i = next++) out.push(await target.newSession(`${tag}-${i}`));
    }),
  );
  return out;
}

export async function measureCapacity(
  target: Target,
  opts: CapacityOptions,
): Promise<CapacityResult> {
  const split = target.instances.length > 1;
  const socketsPerInstance = split ? 1 : 2;
  const limit = fdLimit();
  // Leave room for the server's own files, Redis and database connections.
  const bound = Math.floor((limit - 500) / socketsPerInstance);
  const steps = opts.steps.filter((n) => n <= bound);
  const hitBound = steps.length < opts.steps.length;
  // The last step a process can hold, rounded down to 250 sessions.
  const last = Math.floor(bound / 250) * 250;
  if (hitBound && last > (steps.at(-1) ?? 0)) steps.push(last);
  const maxSessions = steps.at(-1) ?? 0;
  const workers = Array.from(
    { length: Math.max(1, Math.ceil((maxSessions * 2) / SOCKETS_PER_WORKER)) },
    () => new Worker(),
  );
  const result: CapacityResult = {
    steps: [],
    sessions: 0,
    stoppedBy: 'end',
    limitMs: opts.limitMs,
    ratePerSession: opts.ratePerSession,
    socketsPerInstance,
    rssPerSessionKiB: undefined,
    heapPerSessionBytes: undefined,
    idle: [],
    fdLimit: limit,
  };
  try {
    await measureIdleMemory(target, opts.idle, result);
    result.quietAfterIdleSeconds = await untilQuiet(target, opts.quietMaxMs);
    const started = performance.now(); // the time budget is the ramp's
    let have = 0;
    let connectMsPerSession = 0;
    for (const n of steps) {
      const elapsed = performance.now() - started;
      // The next step: its new sessions at the last step's pace, the pause, one window.
      const estimate = connectMsPerSession * (n - have) + opts.settleMs + opts.windowMs;
      if (have > 0 && elapsed + estimate > opts.timeBudgetMs) {
        result.stoppedBy = 'time';
        break;
      }
      const stepStarted = performance.now();
      const created = await createSessions(target, have, n);
      const shares = workers.map((_, w) => created.filter((_, i) => i % workers.length === w));
      const added = await Promise.all(
        workers.map((w, i) =>
          w.send<Extract<WorkerReply, { connected: number }>>({
            cmd: 'add',
            wire: target.wire,
            sessions: shares[i]!,
          }),
        ),
      );
      const connectSeconds = (performance.now() - stepStarted) / 1000;
      const failedToConnect = added.reduce((s, r) => s + r.failed, 0);
      connectMsPerSession = (connectSeconds * 1000) / Math.max(1, n - have);
      have = n;
      await sleep(opts.settleMs); // idle: handshakes and loads settle
      const rss = target.rssKiB();
      // A window over the limit is measured once more and the better one kept: a single
      // window on a shared machine can catch someone else's burst.
      let step: CapacityStep | undefined;
      for (let attempt = 0; attempt < 2 && !(step && step.p99 <= opts.limitMs); attempt++) {
        const measured = await measureWindow(target, workers, opts, n, rss, connectSeconds);
        if (!step || measured.p99 < step.p99) step = { ...measured, failedToConnect };
      }
      result.steps.push(step!);
      opts.progress.tick();
      if (failedToConnect > 0 || step!.closed > n * 0.01) {
        result.stoppedBy = 'errors';
        if (added.some((r) => r.errors.length)) {
          process.stderr.write(
            `${target.id}: ${failedToConnect} sessions failed to connect: ${added
              .flatMap((r) => r.errors)
              .slice(0, 3)
              .join('; ')}\n`,
          );
        }
        break;
      }
      if (!(step!.p99 <= opts.limitMs)) {
        result.stoppedBy = 'latency';
        break;
      }
      result.sessions = n;
    }
    if (result.stoppedBy === 'end' && hitBound) result.stoppedBy = 'fd-limit';
    return result;
  } finally {
    await Promise.all(workers.map((w) => w.close()));
  }
}
