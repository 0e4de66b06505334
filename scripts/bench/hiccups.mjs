// How long a busy thread goes without running on this machine: each of N processes spins for
// S seconds reading the clock, and reports the gaps over 2 ms (time it was not on a CPU). With
// one process on an idle machine the gaps are the machine's own (virtualisation, interrupts);
// with more processes than cores, the scheduler's time slices. An event-loop stall longer than
// both was spent elsewhere (in the kernel, on page faults), not waiting for a core.
// Run: node scripts/bench/hiccups.mjs [processes=1] [seconds=20]
import { fork } from 'node:child_process';

const [processes = 1, seconds = 20] = process.argv.slice(2).map(Number);

if (process.env.HICCUPS_CHILD) {
  const end = performance.now() + seconds * 1000;
  const gaps = [];
  for (let last = performance.now(); last < end;) {
    const now = performance.now();
    if (now - last > 2) gaps.push(now - last);
    last = now;
  }
  gaps.sort((a, b) => b - a);
  process.send({
    count: gaps.length,
    totalMs: gaps.reduce((s, g) => s + g, 0),
    longest: gaps.slice(0, 5),
  });
} else {
  const results = await Promise.all(
    Array.from({ length: processes }, () => {
      const child = fork(new URL(import.meta.url), process.argv.slice(2), {
        env: { ...process.env, HICCUPS_CHILD: '1' },
      });
      return new Promise((resolve) => child.once('message', resolve));
    }),
  );
  console.log(
    `${processes} busy process(es) for ${seconds} s on ${(await import('node:os')).cpus().length} cores:`,
  );
  for (const r of results) {
    console.log(
      `  gaps > 2 ms: ${r.count}, ${r.totalMs.toFixed(0)} ms in all; longest ${r.longest.map((g) => g.toFixed(1)).join(', ')} ms`,
    );
  }
}
