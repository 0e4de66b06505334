/**
 * `npm run bench -- --webhook [--quick]`: the webhook channel alone, against a local HTTPS
 * receiver (scripts/insurers/webhook-receiver.ts) on PostgreSQL.
 *
 * - Deliveries per second: `burst` events committed to the outbox in one transaction for one
 *   webhook company (distinct constats, so per-constat order does not serialise them), the clock
 *   from the commit to the last 2xx, at WEBHOOK_CONCURRENCY 4 (the default) and 32.
 * - Commit → webhook latency (p50/p99): events committed one by one at `rate`/s, each timed from
 *   its commit to the receiver's arrival. An event is written by the same trigger whoever
 *   commits it; a finalization on the same instance also wakes the channel, so this (found by
 *   polling, WEBHOOK_POLL_MS) is the slower case: another instance's finalization.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import postgres from 'postgres';
import { loadConfig } from '../../server/config.js';
import { startServer } from '../../server/constat-server.js';
import { createTestDatabase } from '../../persistence/test-database.js';
import { cloudEvent, eventHeaders } from '../../integrations/events.js';
import { runCompanies } from '../companies.js';
import { testCertificate, WebhookReceiver } from '../insurers/webhook-receiver.js';
import { percentiles, type Percentiles } from './stats.js';

export interface WebhookBenchResult {
  burst: number;
  deliveriesPerSecond: Record<string, number>;
  latency: { events: number; ratePerSecond: number; pollMs: number; ms: Percentiles };
}

async function withServer<T>(
  env: Record<string, string>,
  fn: (ctx: { sql: postgres.Sql; receiver: WebhookReceiver }) => Promise<T>,
): Promise<T> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'constat-bench-webhook-'));
  const certificate = await testCertificate();
  await writeFile(path.join(dir, 'ca.pem'), certificate.cert);
  const receiver = new WebhookReceiver(certificate);
  receiver.keep = false;
  await receiver.start();
  const db = await createTestDatabase();
  const server = await startServer(
    loadConfig({
      PORT: '0',
      HOST: '127.0.0.1',
      DATA_DIR: dir,
      DATABASE_URL: db.url,
      AUTH_JWT_SECRET: 'constat-bench-secret-0123456789abcdef',
      LOG_LEVEL: 'silent',
      AI_EMBEDDED: 'false',
      WEBHOOK_CA_FILE: path.join(dir, 'ca.pem'),
      ...env,
    }),
    pino({ level: 'silent' }),
  );
  const sql = postgres(db.url, { max: 4, onnotice: () => {} });
  try {
    await runCompanies(['set-delivery', 'saa', 'webhook', '--url', receiver.url], sql, () => {});
    return await fn({ sql, receiver });
  } finally {
    await sql.end({ timeout: 5 });
    await server.stop();
    await receiver.stop();
    await db.drop();
    await rm(dir, { recursive: true, force: true });
  }
}

function events(n: number) {
  return Array.from({ length: n }, () => {
    const constatId = randomUUID();
    const event = cloudEvent('dz.constat.document_ready.v1', constatId, { bench: true });
    return {
      id: randomUUID(),
      topic: 'saa',
      message_key: constatId,
      payload: event,
      headers: eventHeaders(event),
    };
  });
}

async function commit(sql: postgres.Sql, rows: ReturnType<typeof events>): Promise<void> {
  await sql`insert into outbox ${sql(
    rows.map((r) => ({
      ...r,
      payload: sql.json(r.payload as never),
      headers: sql.json(r.headers),
    })),
  )}`;
}

async function burst(n: number, concurrency: number): Promise<number> {
  return withServer(
    { WEBHOOK_CONCURRENCY: String(concurrency), WEBHOOK_POLL_MS: '50' },
    async ({ sql, receiver }) => {
      let received = 0;
      let done: () => void = () => {};
      const all = new Promise<void>((r) => (done = r));
      receiver.onHook = () => {
        if (++received === n) done();
      };
      const rows = events(n);
      const start = performance.now();
      for (let i = 0; i < rows.length; i += 500) await commit(sql, rows.slice(i, i + 500));
      await all;
      return n / ((performance.now() - start) / 1000);
    },
  );
}

async function latency(n: number, rate: number, pollMs: number): Promise<Percentiles> {
  return withServer({ WEBHOOK_POLL_MS: String(pollMs) }, async ({ sql, receiver }) => {
    const committedAt = new Map<string, number>();
    const samples: number[] = [];
    let done: () => void = () => {};
    const all = new Promise<void>((r) => (done = r));
    receiver.onHook = (hook) => {
      const at = committedAt.get(hook.headers['webhook-id'] ?? '');
      if (at !== undefined) samples.push(hook.at - at);
      if (samples.length === n) done();
    };
    for (const row of events(n)) {
      await commit(sql, [row]);
      committedAt.set(row.payload.id, performance.now());
      await new Promise((r) => setTimeout(r, 1000 / rate));
    }
    await all;
    return percentiles(samples);
  });
}

export async function measureWebhooks(quick: boolean): Promise<WebhookBenchResult> {
  const n = quick ? 200 : 2_000;
  const pollMs = 50;
  const deliveriesPerSecond: Record<string, number> = {};
  for (const c of [4, 32]) deliveriesPerSecond[`concurrency ${c}`] = await burst(n, c);
  const events = quick ? 50 : 300;
  const rate = 20;
  return {
    burst: n,
    deliveriesPerSecond,
    latency: { events, ratePerSecond: rate, pollMs, ms: await latency(events, rate, pollMs) },
  };
}

export function formatWebhooks(r: WebhookBenchResult): string {
  const lines = [`webhook channel (local HTTPS receiver, PostgreSQL)`];
  for (const [k, v] of Object.entries(r.deliveriesPerSecond))
    lines.push(`  deliveries/s, burst of ${r.burst}, ${k}: ${v.toFixed(0)}`);
  const { ms } = r.latency;
  lines.push(
    `  commit → webhook, ${r.latency.events} events at ${r.latency.ratePerSecond}/s (poll ${r.latency.pollMs} ms): p50 ${ms.p50.toFixed(1)} ms  p99 ${ms.p99.toFixed(1)} ms`,
  );
  return lines.join('\n') + '\n';
}
