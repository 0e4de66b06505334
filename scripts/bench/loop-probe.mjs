// Preloaded (`node --import ./scripts/bench/loop-probe.mjs …`) into every server process the
// benchmark starts, ours and the peers alike, so their event loop and garbage collector are
// measured the same way from inside: `monitorEventLoopDelay` and a `PerformanceObserver` on
// 'gc'. It answers on its own loopback port, printed on stderr as `bench-probe port <port>`,
// so no server needs an endpoint of its own:
//   GET /loop  the event-loop delay, GC pauses and CPU time (the process's, worker threads
//              included: it holds on a busy machine) since the previous call (which resets them)
//   GET /cpu   CPU time so far, in µs: `process` (user + system of the whole process, worker
//              and V8 helper threads included) and `mainThread` (the event loop's thread alone,
//              from /proc on Linux): CPU per operation holds on a busy machine where times
//              do not
//   GET /heap  V8's used heap in bytes, after a full collection when the process runs with
//              --expose-gc (what idle memory per session is made of, without the RSS noise)
//   GET /heap/snapshot  the same collection, then a heap snapshot written to the temporary
//              folder; answers its path (scripts/bench/heap-diff.ts compares two of them)
// Plain JavaScript: it runs before any TypeScript loader is registered.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { monitorEventLoopDelay, PerformanceObserver, constants } from 'node:perf_hooks';
import os from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import { isMainThread } from 'node:worker_threads';

// The delay is sampled by a timer of this period; its own period is subtracted from what is
// reported, so an idle loop reads about 0 rather than the resolution.
const RESOLUTION_MS = 2;

function start() {
  const delay = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  delay.enable();
  let gc = { count: 0, totalMs: 0, maxMs: 0, majorCount: 0, majorMs: 0 };
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      gc.count++;
      gc.totalMs += entry.duration;
      gc.maxMs = Math.max(gc.maxMs, entry.duration);
      if (entry.detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) {
        gc.majorCount++;
        gc.majorMs += entry.duration;
      }
    }
  });
  observer.observe({ entryTypes: ['gc'] });
  let windowStarted = performance.now();
  let cpuAtStart = process.cpuUsage();
  const ms = (ns) => Math.max(0, ns / 1e6 - RESOLUTION_MS);

  const server = http.createServer((req, res) => {
    res.setHeader('content-type', 'application/json');
    if (req.url === '/loop') {
      const body = {
        windowMs: performance.now() - windowStarted,
        p50Ms: ms(delay.percentile(50)),
        p99Ms: ms(delay.percentile(99)),
        maxMs: ms(delay.max),
        gc,
        cpuMs: (() => {
          const used = process.cpuUsage(cpuAtStart);
          return (used.user + used.system) / 1000;
        })(),
      };
      cpuAtStart = process.cpuUsage();
      delay.reset();
      gc = { count: 0, totalMs: 0, maxMs: 0, majorCount: 0, majorMs: 0 };
      windowStarted = performance.now();
      res.end(JSON.stringify(body));
      return;
    }
    if (req.url === '/cpu') {
      const { user, system } = process.cpuUsage();
      res.end(JSON.stringify({ process: user + system, mainThread: mainThreadMicros() }));
      return;
    }
    if (req.url === '/heap/snapshot') {
      if (typeof globalThis.gc === 'function') globalThis.gc();
      const file = path.join(os.tmpdir(), `bench-heap-${process.pid}-${Date.now()}.heapsnapshot`);
      res.end(JSON.stringify({ file: v8.writeHeapSnapshot(file) }));
      return;
    }
    if (req.url === '/heap') {
      const collected = typeof globalThis.gc === 'function';
      if (collected) globalThis.gc();
      res.end(JSON.stringify({ usedBytes: v8.getHeapStatistics().used_heap_size, collected }));
      return;
    }
    res.statusCode = 404;
    res.end('{}');
  });
  server.listen(0, '127.0.0.1', () => {
    process.stderr.write(`bench-probe port ${server.address().port}\n`);
  });
  server.unref(); // never what keeps the process alive
}

/** The main thread's CPU time in µs (its run time in nanoseconds, from schedstat); NaN off Linux. */
function mainThreadMicros() {
  try {
    const stat = readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8');
    return Number(stat.split(' ')[0]) / 1000;
  } catch {
    return NaN;
  }
}

// Worker threads inherit --import; one probe per process, on the main thread.
if (isMainThread) start();
