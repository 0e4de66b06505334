// Redis CPU and wall time per append of the hub's append script, against the version that read
// the previous id with XINFO STREAM (whose reply copies the stream's first entry): small entries,
// and a stream whose first entry is a 2 MB snapshot. Keys under exp:x:*, deleted after.
// Run: node scripts/bench/redis-append.mjs (REDIS_URL, default 127.0.0.1:6379).
import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
const r = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
const OLD = `
local prev = '0'
if redis.call('EXISTS', KEYS[1]) == 1 then
  local info = redis.call('XINFO', 'STREAM', KEYS[1])
  for i = 1, #info, 2 do
    if info[i] == 'last-generated-id' then prev = info[i + 1] break end
  end
elseif ARGV[1] == '1' then
  return false
end
local id = redis.call('XADD', KEYS[1], '*', 'm', ARGV[2])
redis.call('PUBLISH', ARGV[3], prev .. ' ' .. id .. ' ' .. ARGV[2])
return id`;
const src = readFileSync(new URL('../../hub/redis-hub.ts', import.meta.url), 'utf8');
const NEW = src.slice(
  src.indexOf('const APPEND = `') + 16,
  src.indexOf('`;', src.indexOf('const APPEND = `')),
);
async function run(label, script, numkeys, first) {
  const keys = ['exp:x:s', 'exp:x:last', 'exp:x:epoch'].slice(0, numkeys);
  await r.del('exp:x:s', 'exp:x:last', 'exp:x:epoch');
  if (first) await r.xadd('exp:x:s', '*', 'm', first);
  await r.config('RESETSTAT');
  const entry = Buffer.alloc(40, 1);
  const t = performance.now();
  for (let i = 0; i < 1000; i++) await r.eval(script, numkeys, ...keys, '1', entry, 'exp:x:ch');
  const wall = (performance.now() - t) / 1000;
  const stats = await r.info('commandstats');
  const usec = Number(/cmdstat_eval:calls=\d+,usec=\d+,usec_per_call=([\d.]+)/.exec(stats)[1]);
  console.log(
    `${label}: Redis CPU ${usec.toFixed(1)} µs per append, wall ${(wall * 1000).toFixed(0)} µs per append`,
  );
}
const big = Buffer.alloc(2_000_000, 7);
for (const [first, name] of [
  [Buffer.alloc(40, 1), 'small entries'],
  [big, '2 MB first entry'],
]) {
  await run(`old (XINFO), ${name}`, OLD, 1, first);
  await run(`new (last-id key), ${name}`, NEW, 3, first);
}
await r.del('exp:x:s', 'exp:x:last', 'exp:x:epoch');
r.disconnect();
