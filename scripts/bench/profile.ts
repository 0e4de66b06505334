/**
 * Reads V8 CPU profiles (`node --cpu-prof`) and tells where the time went: self time per
 * function and per package or source folder, and the share of time the process was idle.
 * `node --import tsx scripts/bench/profile.ts <file.cpuprofile>…` prints the same summary.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';

interface ProfileNode {
  id: number;
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
}

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

export function summariseProfile(file: string, top = 12): ProfileSummary {
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

export function formatProfile(s: ProfileSummary): string {
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`.padStart(6);
  const lines = [
    `${path.basename(s.file)}: ${(s.totalMs / 1000).toFixed(1)} s sampled, idle ${pct(s.idleShare)}, GC ${pct(s.gcShare)} of busy time`,
    '  busy time by package / folder:',
    ...s.topModules.map((m) => `    ${pct(m.share)}  ${m.module}`),
    '  hottest functions (self time):',
    ...s.topFunctions.map((f) => `    ${pct(f.share)}  ${f.name} ${f.where}`),
  ];
  return lines.join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const file of process.argv.slice(2))
    process.stdout.write(formatProfile(summariseProfile(file)) + '\n');
}
