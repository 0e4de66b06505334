// CPU time per thread of the processes whose command line contains a pattern, every few
// seconds (from /proc/<pid>/task/<tid>/stat): how a server's CPU splits between its main
// thread (the event loop) and the others (V8's helper threads, worker threads, libuv's pool).
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
    (d) => /^\d+$/.test(d) && read(`/proc/${d}/cmdline`)?.includes(pattern),
  );

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
      const ticks = Number(fields[11]) + Number(fields[12]); // utime + stime
      const key = `${pid}/${tid}`;
      const delta = ticks - (last.get(key) ?? ticks);
      last.set(key, ticks);
      const label = tid === pid ? `${pid} main` : `${pid} other`;
      used.set(label, (used.get(label) ?? 0) + delta);
    }
  }
  return used;
};
sample();
setInterval(() => {
  const rows = [...sample()].filter(([, t]) => t > 0).sort(([a], [b]) => a.localeCompare(b));
  const ms = (t) => ((t * 1000) / TICKS_PER_SECOND).toFixed(0);
  console.log(
    `${new Date().toISOString().slice(11, 19)}  ${rows.map(([k, t]) => `${k} ${ms(t)} ms`).join('   ')}`,
  );
}, periodMs);
