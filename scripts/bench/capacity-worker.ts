/**
 * A load-generating child process of the capacity ramp (scripts/bench/capacity.ts). One
 * process may hold only so many sockets (the file descriptor limit), so the ramp spreads its
 * sessions over several of these. Commands arrive over IPC:
 * - `add`: connect both clients of each given session and wait until they synced;
 * - `measure`: for `durationMs`, each session sends updates at `ratePerSession` (from A or B
 *   at random, one in flight per session); the other client's arrival time gives a latency
 *   sample; updates not arrived 5 s after the window count as lost. From the end of the first
 *   window on, every session goes on editing at `ratePerSession` between windows too, unmeasured
 *   (`live`): a session of the ramp is live at that rate throughout, not only while it is
 *   measured. (Silent between windows, a session sat idle for as long as the next step took to
 *   connect, which differs between servers: 8 s for one, 50 s for another, long enough for a
 *   server that puts idle documents to sleep to do so, and to wake them all in the window.)
 * - `close`: close every client and exit.
 */
import { LightClient, type Wire } from './light-client.js';
import { ensureElements, sketchElements } from './fanout.js';

interface Session {
  a: LightClient;
  b: LightClient;
  pending: { key: string; at: number; receiver: LightClient } | undefined;
  seq: number;
}

export type WorkerCommand =
  | {
      cmd: 'add';
      id: number;
      wire: Wire;
      sessions: Array<{ room: string; urlA: string; urlB: string }>;
    }
  | { cmd: 'measure'; id: number; durationMs: number; ratePerSession: number; minRate: number }
  | { cmd: 'close'; id: number };

export type WorkerReply =
  | { id: number; connected: number; failed: number; errors: string[] }
  | { id: number; samples: number[]; lost: number; closed: number }
  | { id: number; closed: true };

const sessions: Session[] = [];
let measuring: ((s: Session, latency: number) => void) | undefined;
/** The unmeasured edits between windows (see `live`). */
let liveTimer: NodeJS.Timeout | undefined;

/** One edit of a sketch entry, from A or B at random. */
function edit(s: Session): { key: string; receiver: LightClient } | undefined {
  if (s.a.closed || s.b.closed) return undefined;
  const fromA = Math.random() < 0.5;
  const sender = fromA ? s.a : s.b;
  const key = `m-${sender.doc.clientID}-${s.seq++}`;
  sketchElements(sender.doc)!.set(key, s.seq);
  return { key, receiver: fromA ? s.b : s.a };
}

/** Every session edits at `ratePerSession` until the next window (unmeasured). */
function live(ratePerSession: number): void {
  let last = performance.now();
  let due = 0;
  liveTimer = setInterval(() => {
    // Accrued tick by tick at the current number of sessions: sessions the next step adds
    // raise the rate from then on, not retroactively (no burst of catch-up edits).
    const now = performance.now();
    due += ((now - last) / 1000) * sessions.length * ratePerSession;
    last = now;
    for (; due >= 1 && sessions.length > 0; due--) {
      edit(sessions[Math.floor(Math.random() * sessions.length)]!);
    }
  }, 50);
}

function onRemote(session: () => Session | undefined) {
  return (client: LightClient) => {
    const s = session();
    const p = s?.pending;
    if (!s || !p || p.receiver !== client) return;
    if (sketchElements(client.doc)?.has(p.key)) {
      s.pending = undefined;
      measuring?.(s, performance.now() - p.at);
    }
  };
}

async function add(cmd: Extract<WorkerCommand, { cmd: 'add' }>): Promise<WorkerReply> {
  let connected = 0;
  let failed = 0;
  const errors: string[] = [];
  const queue = [...cmd.sessions];
  const connectOne = async (spec: { room: string; urlA: string; urlB: string }) => {
    let session: Session | undefined;
    const a = new LightClient({
      url: spec.urlA,
      room: spec.room,
      wire: cmd.wire,
      onRemoteUpdate: onRemote(() => session),
    });
    const b = new LightClient({
      url: spec.urlB,
      room: spec.room,
      wire: cmd.wire,
      onRemoteUpdate: onRemote(() => session),
    });
    try {
      await Promise.all([a.whenSynced(60_000), b.whenSynced(60_000)]);
      await ensureElements(a, b);
      session = { a, b, pending: undefined, seq: 0 };
      sessions.push(session);
      connected++;
    } catch (err) {
      failed++;
      if (errors.length < 5) errors.push((err as Error).message);
      a.close();
      b.close();
    }
  };
  // A bounded number of handshakes in flight, as a fleet of phones would not all connect in
  // the same millisecond either.
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      for (let spec = queue.shift(); spec; spec = queue.shift()) await connectOne(spec);
    }),
  );
  return { id: cmd.id, connected, failed, errors };
}

async function measure(cmd: Extract<WorkerCommand, { cmd: 'measure' }>): Promise<WorkerReply> {
  clearInterval(liveTimer);
  const samples: number[] = [];
  measuring = (_s, latency) => samples.push(latency);
  // Updates per second from this worker: the per-session rate, but enough for a p99.
  const total = Math.max(sessions.length * cmd.ratePerSession, cmd.minRate);
  const order = sessions.map((_, i) => i).sort(() => Math.random() - 0.5);
  let cursor = 0;
  let sent = 0;
  const started = performance.now();
  await new Promise<void>((resolve) => {
    const tick = setInterval(() => {
      const elapsed = performance.now() - started;
      if (elapsed >= cmd.durationMs) {
        clearInterval(tick);
        resolve();
        return;
      }
      const due = Math.floor((elapsed / 1000) * total) - sent;
      for (let n = 0; n < due && order.length > 0; n++) {
        const s = sessions[order[cursor++ % order.length]!]!;
        sent++;
        if (s.pending) continue;
        const at = performance.now();
        const made = edit(s);
        if (made) s.pending = { ...made, at };
      }
    }, 5);
  });
  // Stragglers: a few seconds to arrive, after which they count as lost.
  const deadline = performance.now() + 5_000;
  while (sessions.some((s) => s.pending) && performance.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
  }
  let lost = 0;
  for (const s of sessions) {
    if (s.pending) {
      lost++;
      s.pending = undefined;
    }
  }
  measuring = undefined;
  live(cmd.ratePerSession);
  const closed = sessions.reduce((n, s) => n + (s.a.closed ? 1 : 0) + (s.b.closed ? 1 : 0), 0);
  return { id: cmd.id, samples, lost, closed };
}

process.on('message', (cmd: WorkerCommand) => {
  void (async () => {
    let reply: WorkerReply;
    if (cmd.cmd === 'add') reply = await add(cmd);
    else if (cmd.cmd === 'measure') reply = await measure(cmd);
    else {
      clearInterval(liveTimer);
      for (const s of sessions) {
        s.a.close();
        s.b.close();
      }
      reply = { id: cmd.id, closed: true };
      process.send!(reply, () => process.exit(0));
      return;
    }
    process.send!(reply);
  })().catch((err: unknown) => {
    process.stderr.write(`capacity worker: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
});
// The harness going away takes the worker with it.
process.on('disconnect', () => process.exit(0));
