/**
 * Reads V8 CPU profiles (`node --cpu-prof`) and tells where the time went: self time per
 * function and per package or source folder, the share of time the process was idle, and the
 * longest busy stretches of the thread (what kept the event loop from everything else, and
 * the project functions under them). These hold on a shared machine, where latency does not.
 * Also allocation profiles (`.heapprofile`): bytes allocated per function, and per nearest
 * project function above it, which is what young-generation GC time follows.
 * `node --import tsx scripts/bench/profile.ts <file.cpuprofile|file.heapprofile>…` prints the
 * same summaries.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

interface ProfileNode {
  id: number;
  parent?: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface ProfileSummary {
  file: string;
  totalMs: number;
  /** Share of samples the thread was idle (waiting for I/O). */
  idleShare: number;
  /** Share of samples spent in garbage collection. */
  gcShare: number;
  topFunctions: Array<{ name: string; where: string; ms: number; share: number }>;
  topModules: Array<{ module: string; ms: number; share: number }>;
  /**
   * Busy stretches (consecutive non-idle samples) of at least `STRETCH_MIN_MS`; inside the
   * windows only, when the summary was given some, with each window's busy (CPU) time.
   */
  stretches: {
    count: number;
    totalMs: number;
    windows?: Array<{
      label: string;
      busyMs: number;
      gcMs: number;
      stretches: number;
      longestMs: number;
    }>;
    longest: Stretch[];
  };
}

/** One run of the thread without a pause: when it started, how long, and what ran. */
export interface Stretch {
  /** From the start of the profile. */
  atMs: number;
  ms: number;
  window?: string;
  /** Project functions with the most time under them (inclusive), most first. */
  project: Array<{ name: string; where: string; ms: number }>;
  /** Functions with the most self time, most first. */
  self: Array<{ name: string; where: string; ms: number }>;
}

/** Shorter busy stretches are not a stall (one message's work). */
const STRETCH_MIN_MS = 10;
const PROJECT_MODULE =
  /^(constat|hub|client|sync|server|persistence|integrations|media|report|ai)\/$/;

/** `node_modules/<pkg>` (scoped too), a project folder such as `sync`, or `node:<x>`. */
function moduleOf(url: string): string {
  if (!url) return '(native)';
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1]!;
  if (url.startsWith('node:')) return url;
  const rel = url.replace(/^file:\/\//, '');
  const m =
    /\/(constat|hub|client|sync|server|persistence|integrations|media|report|ai|scripts)\//.exec(
      rel,
    );
  return m ? `${m[1]}/` : path.basename(rel);
}

export function summariseProfile(
  file: string,
  top = 12,
  windows?: readonly ProfileWindow[],
): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  profile.samples.forEach((id, i) => {
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  });
  let total = 0;
  let idle = 0;
  let gc = 0;
  const fns = new Map<string, { name: string; where: string; us: number }>();
  const modules = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const node = byId.get(id)!;
    const { functionName, url, lineNumber } = node.callFrame;
    total += us;
    if (functionName === '(idle)') {
      idle += us;
      continue;
    }
    if (functionName === '(garbage collector)') gc += us;
    const where = url ? `${moduleOf(url)}:${lineNumber + 1}` : '';
    const key = `${functionName}@${where}`;
    const entry = fns.get(key) ?? { name: functionName || '(anonymous)', where, us: 0 };
    entry.us += us;
    fns.set(key, entry);
    const mod = functionName.startsWith('(') ? functionName : moduleOf(url);
    modules.set(mod, (modules.get(mod) ?? 0) + us);
  }
  const busy = Math.max(1, total - idle);
  return {
    stretches: busyStretches(profile, byId, top, windows),
    file,
    totalMs: total / 1000,
    idleShare: idle / Math.max(1, total),
    gcShare: gc / busy,
    topFunctions: [...fns.values()]
      .sort((a, b) => b.us - a.us)
      .slice(0, top)
      .map((f) => ({ name: f.name, where: f.where, ms: f.us / 1000, share: f.us / busy })),
    topModules: [...modules.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([module, us]) => ({ module, ms: us / 1000, share: us / busy })),
  };
}

/**
 * A stretch of a benchmark to look at on its own (`label`), in microseconds of the monotonic
 * clock (`process.hrtime`), which the profiles' timestamps share on Linux.
 */
export interface ProfileWindow {
  label: string;
  startUs: number;
  endUs: number;
}

/** The clock of a profile's timestamps (CLOCK_MONOTONIC, µs), the same in every process. */
export const monotonicUs = () => Number(process.hrtime.bigint() / 1000n);

/**
 * Consecutive samples off `(idle)`: a sample's time is the delta to the next one. GC and
 * `(program)` count as busy: the event loop waits for them as well. With `windows`, only the
 * samples inside one count, each stretch is labelled with its window, and each window gets
 * its busy time (CPU time of the thread, which holds under load where latency does not).
 */
function busyStretches(
  profile: CpuProfile,
  byId: Map<number, ProfileNode>,
  top: number,
  windows: readonly ProfileWindow[] | undefined,
): ProfileSummary['stretches'] {
  const parents = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parents.set(c, n.id);
  const frame = (id: number) => {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
    return {
      name: functionName || '(anonymous)',
      where: url ? `${moduleOf(url)}:${lineNumber + 1}` : '',
    };
  };
  const windowAt = (us: number) => windows?.find((w) => us >= w.startUs && us < w.endUs);
  const perWindow = new Map<string, { label: string; busyMs: number; gcMs: number }>();
  interface Open {
    atMs: number;
    window: string | undefined;
    samples: Array<[number, number]>;
  }
  const found: Open[] = [];
  let current: Open | undefined;
  let t = profile.startTime;
  profile.samples.forEach((id, i) => {
    t += profile.timeDeltas[i] ?? 0;
    const us = profile.timeDeltas[i + 1] ?? 0;
    const window = windowAt(t);
    const name = byId.get(id)!.callFrame.functionName;
    if (
      name === '(idle)' ||
      (windows && !window) ||
      (current && current.window !== window?.label)
    ) {
      if (current) found.push(current);
      current = undefined;
    }
    if (name === '(idle)' || (windows && !window)) return;
    if (window) {
      const w = perWindow.get(window.label) ?? { label: window.label, busyMs: 0, gcMs: 0 };
      w.busyMs += us / 1000;
      if (name === '(garbage collector)') w.gcMs += us / 1000;
      perWindow.set(window.label, w);
    }
    current ??= { atMs: (t - profile.startTime) / 1000, window: window?.label, samples: [] };
    current.samples.push([id, us]);
  });
  if (current) found.push(current);
  const long = found
    .map((s) => ({ ...s, ms: s.samples.reduce((n, [, us]) => n + us, 0) / 1000 }))
    .filter((s) => s.ms >= STRETCH_MIN_MS)
    .sort((a, b) => b.ms - a.ms);
  type Tally = Map<string, { name: string; where: string; us: number }>;
  const ranked = (m: Tally) =>
    [...m.values()]
      .sort((a, b) => b.us - a.us)
      .slice(0, 4)
      .map((f) => ({ name: f.name, where: f.where, ms: f.us / 1000 }));
  const add = (m: Tally, id: number, us: number) => {
    const f = frame(id);
    const key = `${f.name}@${f.where}`;
    const e = m.get(key) ?? { ...f, us: 0 };
    e.us += us;
    m.set(key, e);
  };
  return {
    count: long.length,
    totalMs: long.reduce((n, s) => n + s.ms, 0),
    windows: windows?.map((w) => {
      const mine = long.filter((s) => s.window === w.label);
      return {
        label: w.label,
        busyMs: perWindow.get(w.label)?.busyMs ?? 0,
        gcMs: perWindow.get(w.label)?.gcMs ?? 0,
        stretches: mine.length,
        longestMs: mine[0]?.ms ?? 0,
      };
    }),
    longest: long.slice(0, top).map((s) => {
      const self: Tally = new Map();
      const project: Tally = new Map();
      for (const [id, us] of s.samples) {
        add(self, id, us);
        const seen = new Set<string>();
        for (let n: number | undefined = id; n !== undefined; n = parents.get(n)) {
          const { url } = byId.get(n)!.callFrame;
          if (!url || !PROJECT_MODULE.test(moduleOf(url))) continue;
          const f = frame(n);
          const key = `${f.name}@${f.where}`;
          if (seen.has(key)) continue;
          seen.add(key);
          add(project, n, us);
        }
      }
      return {
        atMs: s.atMs,
        ms: s.ms,
        ...(s.window ? { window: s.window } : {}),
        project: ranked(project),
        self: ranked(self),
      };
    }),
  };
}

/** The busy stretches, as lines (the benchmark's report prints them too). */
export function stretchLines(s: ProfileSummary['stretches']): string[] {
  const ms = (x: number) => x.toFixed(0);
  return [
    `  busy stretches ≥ ${STRETCH_MIN_MS} ms${s.windows ? ' inside the windows' : ''}: ${s.count}, ${ms(s.totalMs)} ms in all`,
    ...(s.windows ?? []).map(
      (w) =>
        `    ${w.label}: busy ${ms(w.busyMs)} ms (GC ${ms(w.gcMs)}), ${w.stretches} stretches ≥ ${STRETCH_MIN_MS} ms, longest ${w.longestMs.toFixed(1)} ms`,
    ),
    '  the longest:',
    ...s.longest.flatMap((st) => [
      `    ${st.ms.toFixed(1).padStart(6)} ms at ${(st.atMs / 1000).toFixed(1)} s${st.window ? ` (${st.window})` : ''}`,
      `      under: ${st.project.map((f) => `${f.name} ${f.where} ${ms(f.ms)}`).join(', ') || '—'}`,
      `      self:  ${st.self.map((f) => `${f.name} ${f.where} ${ms(f.ms)}`).join(', ')}`,
    ]),
  ];
}

export function formatProfile(s: ProfileSummary): string {
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`.padStart(6);
  const lines = [
    `${path.basename(s.file)}: ${(s.totalMs / 1000).toFixed(1)} s sampled, idle ${pct(s.idleShare)}, GC ${pct(s.gcShare)} of busy time`,
    '  busy time by package / folder:',
    ...s.topModules.map((m) => `    ${pct(m.share)}  ${m.module}`),
    '  hottest functions (self time):',
    ...s.topFunctions.map((f) => `    ${pct(f.share)}  ${f.name} ${f.where}`),
    ...stretchLines(s.stretches),
  ];
  return lines.join('\n');
}

/** Where the benchmark writes a profile's windows, beside it. */
export const windowsFile = (profile: string) => `${profile}.windows.json`;

/** V8's sampling heap profile (`HeapProfiler.stopSampling`). */
interface HeapProfileNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  id: number;
  children: HeapProfileNode[];
}

export interface AllocationSummary {
  file: string;
  /** Bytes allocated over the phase, as sampled (freed objects included). */
  totalMiB: number;
  /** Functions that allocated the most themselves, most first. */
  self: Array<{ name: string; where: string; mib: number; share: number }>;
  /**
   * The nearest project function above each allocation (`(none)` when no project code is on
   * the stack: timers, sockets, libraries on their own), most first.
   */
  project: Array<{ name: string; where: string; mib: number; share: number }>;
}

export function summariseAllocations(file: string, top = 12): AllocationSummary {
  const { head } = JSON.parse(readFileSync(file, 'utf8')) as { head: HeapProfileNode };
  const self = new Map<string, { name: string; where: string; bytes: number }>();
  const project = new Map<string, { name: string; where: string; bytes: number }>();
  let total = 0;
  const add = (
    into: typeof self,
    frame: HeapProfileNode['callFrame'] | undefined,
    bytes: number,
  ) => {
    const name = frame ? frame.functionName || '(anonymous)' : '(none)';
    const where = frame?.url ? `${moduleOf(frame.url)}:${frame.lineNumber + 1}` : '';
    const key = `${name}@${where}`;
    const entry = into.get(key) ?? { name, where, bytes: 0 };
    entry.bytes += bytes;
    into.set(key, entry);
  };
  // Iterative walk: allocation stacks can be deep.
  const stack: Array<{ node: HeapProfileNode; owner: HeapProfileNode['callFrame'] | undefined }> = [
    { node: head, owner: undefined },
  ];
  while (stack.length > 0) {
    const { node, owner } = stack.pop()!;
    const mod = node.callFrame.url ? moduleOf(node.callFrame.url) : '';
    const mine = PROJECT_MODULE.test(mod) ? node.callFrame : owner;
    if (node.selfSize > 0) {
      total += node.selfSize;
      add(self, node.callFrame, node.selfSize);
      add(project, mine, node.selfSize);
    }
    for (const child of node.children) stack.push({ node: child, owner: mine });
  }
  const rank = (m: typeof self) =>
    [...m.values()]
      .sort((a, b) => b.bytes - a.bytes)
      .slice(0, top)
      .map((e) => ({
        name: e.name,
        where: e.where,
        mib: e.bytes / 2 ** 20,
        share: e.bytes / Math.max(1, total),
      }));
  return { file, totalMiB: total / 2 ** 20, self: rank(self), project: rank(project) };
}

export function formatAllocations(a: AllocationSummary): string {
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`.padStart(6);
  return [
    `${path.basename(a.file)}: ${a.totalMiB.toFixed(0)} MiB allocated (sampled, freed objects included)`,
    '  by the nearest project function above the allocation:',
    ...a.project.map((f) => `    ${pct(f.share)}  ${f.name} ${f.where}`),
    '  by allocating function:',
    ...a.self.map((f) => `    ${pct(f.share)}  ${f.name} ${f.where}`),
  ].join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const file of process.argv.slice(2)) {
    if (file.endsWith('.heapprofile')) {
      process.stdout.write(formatAllocations(summariseAllocations(file, 15)) + '\n');
      continue;
    }
    const windows = existsSync(windowsFile(file))
      ? (JSON.parse(readFileSync(windowsFile(file), 'utf8')) as ProfileWindow[])
      : undefined;
    process.stdout.write(formatProfile(summariseProfile(file, 12, windows)) + '\n');
  }
}
