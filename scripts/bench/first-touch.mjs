// What memory touched for the first time costs on this machine, against memory used again: a
// 2 MB buffer allocated and filled, page faults counted from /proc/self/stat. On a VM where a
// fault costs tens of microseconds, every large allocation (a document encoded, a driver
// buffer, a worker message) pays it.
// Run: node scripts/bench/first-touch.mjs
import { readFileSync } from 'node:fs';

const SIZE = 2 * 1024 * 1024;
const source = Buffer.alloc(SIZE, 7);
const faults = () => Number(readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ')[7]);

function measure(label, fn) {
  const times = [];
  let faulted = 0;
  for (let i = 0; i < 20; i++) {
    const f = faults();
    const t = performance.now();
    fn();
    times.push(performance.now() - t);
    faulted += faults() - f;
  }
  times.sort((a, b) => a - b);
  console.log(
    `${label}: median ${times[10].toFixed(2)} ms, ${(faulted / 20).toFixed(0)} page faults per copy`,
  );
}

const kept = Buffer.allocUnsafe(SIZE);
const fresh = [];
measure('2 MB copied into memory used before', () => kept.set(source));
measure('2 MB copied into a new buffer', () => {
  const b = Buffer.allocUnsafe(SIZE);
  b.set(source);
  fresh.push(b); // kept alive: a collection would hand the memory back for the next one
});
