// CPU time per thread of the processes whose command line contains a pattern, every few
// seconds (from /proc/<pid>/task/<tid>/stat): how a server's CPU splits between its main
// thread (the event loop) and the others (V8's helper threads, worker threads, libuv's pool),
// and the page faults each process took (minor: memory touched for the first time).
// Run beside a benchmark: node scripts/bench/thread-cpu.mjs ["constat.js serve"] [seconds=5]
import { readFileSync, readdirSync } from 'node:fs';

const pattern = (process.argv[2] ?? 'constat.js serve').replaceAll(' ', '\0');
const periodMs = Number(process.argv[3] ?? 5) * 1000;
const TICKS_PER_SECOND = 100; // USER_HZ on Linux

const read = (file) => {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
};
const pids = () =>
  readdirSync('/proc').filter(
    (d) =>
      /^\d+$/.test(d) && d !== String(process.pid) && read(`/proc/${d}/cmdline`)?.includes(pattern),
  );

// The script or program a process runs, for the rows' labels.
const names = new Map();
const processName = (pid) => {
  if (!names.has(pid)) {
    const args = (read(`/proc/${pid}/cmdline`) ?? '').split('\0').filter(Boolean);
    // The first script that is not preloaded (`--import x.mjs`, as the benchmark's probe is).
    const script =
      args.find((a, i) => i > 0 && args[i - 1] !== '--import' && /\.(m?[jt]s)$/.test(a)) ??
      args[0] ??
      '?';
    names.set(pid, script.split('/').pop());
  }
  return names.get(pid);
};

const last = new Map();
const sample = () => {
  const used = new Map();
  for (const pid of pids()) {
    let tids = [];
    try {
      tids = readdirSync(`/proc/${pid}/task`);
    } catch {
      continue;
    }
    for (const tid of tids) {
      const stat = read(`/proc/${pid}/task/${tid}/stat`);
      if (!stat) continue;
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const name = `${pid} ${processName(pid)}`;
      const label = tid === pid ? `${name} main` : `${name} other`;
      // utime + stime (ticks), minor and major faults
      for (const [what, value] of [
        ['cpu', Number(fields[11]) + Number(fields[12])],
        ['minflt', Number(fields[7])],
        ['majflt', Number(fields[9])],
      ]) {
        const key = `${pid}/${tid}/${what}`;
        const delta = value - (last.get(key) ?? value);
        last.set(key, value);
        const row = what === 'cpu' ? label : `${name} ${what}`;
        used.set(row, (used.get(row) ?? 0) + delta);
      }
    }
  }
  return used;
};
sample();
setInterval(() => {
  const rows = [...sample()].filter(([, t]) => t > 0).sort(([a], [b]) => a.localeCompare(b));
  const shown = ([k, t]) =>
    k.endsWith('flt') ? `${k} ${t}` : `${k} ${((t * 1000) / TICKS_PER_SECOND).toFixed(0)} ms`;
  console.log(`${new Date().toISOString().slice(11, 19)}  ${rows.map(shown).join('   ')}`);
}, periodMs);
