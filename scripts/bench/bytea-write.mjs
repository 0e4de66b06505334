// How long writing one large bytea holds the event loop: 1.7 MB inserted six times through the
// driver as patched (the bytes in binary format) and as hex text built here (what the driver's
// text format sends), the longest gap of a 1 ms interval timer during each insert.
// Run: node scripts/bench/bytea-write.mjs (DATABASE_URL, default the local server's
// `postgres` database; a table bytea_write_bench is created and dropped).
import postgres from 'postgres';

const sql = postgres(process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres', {
  max: 1,
  onnotice: () => {},
});
const SIZE = 1_700_000;
const bytes = Uint8Array.from({ length: SIZE }, (_, i) => (i * 31) & 255);

async function longestGap(insert) {
  let worst = 0;
  let last = performance.now();
  const tick = setInterval(() => {
    const now = performance.now();
    worst = Math.max(worst, now - last);
    last = now;
  }, 1);
  await insert();
  clearInterval(tick);
  return Math.max(worst, performance.now() - last);
}

await sql`create table if not exists bytea_write_bench (b bytea)`;
try {
  const gaps = { binary: [], hex: [] };
  for (let i = 0; i < 6; i++) {
    gaps.binary.push(await longestGap(() => sql`insert into bytea_write_bench values (${bytes})`));
    gaps.hex.push(
      await longestGap(
        () =>
          sql`insert into bytea_write_bench values (${'\\x' + Buffer.from(bytes).toString('hex')}::bytea)`,
      ),
    );
  }
  for (const [name, g] of Object.entries(gaps)) {
    g.sort((a, b) => a - b);
    console.log(
      `${name}: longest event-loop gap per insert, median ${g[3].toFixed(1)} ms (${g[0].toFixed(1)}–${g[5].toFixed(1)})`,
    );
  }
} finally {
  await sql`drop table bytea_write_bench`;
  await sql.end();
}
