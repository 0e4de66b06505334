/**
 * The embedded default (`npm start`: PGlite, in-process hub, no broker): a constat finalized
 * through the whole flow gets its cost estimate and fraud score from the in-process AI
 * pipeline, fed from the outbox, on the constat's timeline. GraphQL shows an insurer of the
 * constat the structured fraud assessment and the estimates with line items; a driver sees the
 * estimates but never a fraud score. A restart reprocesses nothing twice; the outbox rows stay
 * for a broker configured later.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { gql, startTestServer, token, type TestServer } from './support/server.js';
import { eventually, finalizeConstat, sleep, type Finalized } from './support/signing.js';
import { setUp } from './support/suite.js';

interface Ctx {
  server: TestServer;
  constat: Finalized;
}

const test = suite<Ctx>('embedded AI', {
  server: undefined as unknown as TestServer,
  constat: undefined as unknown as Finalized,
});

setUp(test, async (ctx) => {
  ctx.server = await startTestServer({ database: 'pglite', hub: 'memory' });
  ctx.constat = await finalizeConstat(ctx.server);
});
test.after(async (ctx) => {
  await ctx.server?.stop();
});

const QUERY = `query C($id: ID!) { constat(id: $id) {
  fraudAssessment { score band ruleSet model source assessedAt
    signals { name label weight value contribution reason values } }
  costEstimates { vehicle amount low high currency confidence segment vehicleAgeYears wilaya
    subtotal vat notes tables source
    lines { part label side severity operation partsAmount depreciationRate labourHours amount } }
  aiFindings { type source }
} }`;

/** Waits until an insurer sees the constat's fraud assessment. */
async function untilScored(server: TestServer, insurer: string, id: string): Promise<void> {
  await eventually(async () => {
    const res = await gql(server.url, insurer, QUERY, { id });
    return res.data?.constat?.fraudAssessment ? true : undefined;
  }, 30_000);
}

const read = async (ctx: Ctx, bearer: string) => {
  const res = await gql(ctx.server.url, bearer, QUERY, { id: ctx.constat.constatId });
  if (res.errors) throw new Error(JSON.stringify(res.errors));
  return res.data!.constat;
};

test('an insurer of the constat sees the fraud assessment and the estimates', async (ctx) => {
  const insurer = await token('staff-saa', 'desk-1', { roles: ['insurer:saa'] });
  const c = await eventually(
    async () => {
      const got = await read(ctx, insurer);
      return got.fraudAssessment && got.costEstimates.length === 2 ? got : undefined;
    },
    30_000,
    'no AI findings on the constat',
  );
  const fraud = c.fraudAssessment;
  assert.is(fraud.band, 'LOW');
  assert.ok(fraud.score > 0 && fraud.score < 0.3, String(fraud.score));
  assert.is(fraud.ruleSet, 'dz-fraud-rules-2026.12-1');
  assert.is(fraud.model, fraud.ruleSet);
  assert.is(fraud.source, 'constat-ai-fraud');
  const noInjuries = fraud.signals.find((s: { name: string }) => s.name === 'no_injuries');
  assert.ok(noInjuries, JSON.stringify(fraud.signals));
  assert.is(noInjuries.reason, 'no injuries declared');
  assert.equal(JSON.parse(noInjuries.values), { injuries: false });

  const [a, b] = c.costEstimates;
  assert.is(a.vehicle, 'A');
  assert.is(b.vehicle, 'B');
  assert.is(a.currency, 'DZD');
  assert.is(a.segment, 'B');
  assert.is(a.wilaya, '16');
  assert.ok(a.low < a.amount && a.amount < a.high);
  assert.equal(
    a.lines.map((l: { part: string; side: string }) => `${l.part}:${l.side}`),
    ['bumper:front'],
  );
  assert.equal(
    b.lines.map((l: { part: string; operation: string }) => `${l.part}:${l.operation}`).sort(),
    ['boot:replace', 'taillamp:replace'],
  );
  assert.ok(b.lines.every((l: { depreciationRate: number }) => l.depreciationRate > 0));
  assert.is(b.source, 'constat-ai-cost');
  assert.ok(a.tables.includes('parts-2026.12-1'));
});

test('drivers see the estimates but never a fraud score', async (ctx) => {
  for (const bearer of [ctx.constat.tokenA, ctx.constat.tokenB]) {
    const c = await eventually(async () => {
      const got = await read(ctx, bearer);
      return got.costEstimates.length === 2 ? got : undefined;
    }, 30_000);
    assert.is(c.fraudAssessment, null);
    assert.equal(
      c.aiFindings.map((f: { type: string }) => f.type),
      ['dz.ai.cost_estimated.v1'],
    );
  }
  // Staff of an insurer the constat does not name see no constat at all.
  const other = await token('staff-caar', 'desk-2', { roles: ['insurer:caar'] });
  const res = await gql(ctx.server.url, other, QUERY, { id: ctx.constat.constatId });
  assert.is(res.data!.constat, null);
});

test('/readyz reports the AI; /metrics times each function', async (ctx) => {
  const ready = (await (await fetch(`${ctx.server.url}/readyz`)).json()) as {
    checks: Record<string, string>;
  };
  assert.is(ready.checks.ai, 'ok');
  const metrics = await (await fetch(`${ctx.server.url}/metrics`)).text();
  assert.match(metrics, /constat_ai_function_seconds_count\{function="fraud"\} [1-9]/);
  assert.match(metrics, /constat_ai_function_results_total\{function="cost"\} [1-9]/);
});

test('a restart reprocesses nothing twice; the outbox rows wait for a broker', async (ctx) => {
  const dataDir = ctx.server.dataDir;
  await ctx.server.stopServer();
  ctx.server = await startTestServer({ database: 'pglite', hub: 'memory', dataDir });
  const second = await finalizeConstat(ctx.server);
  const insurer = await token('staff-trust', 'desk-3', { roles: ['insurer:trust'] });
  await untilScored(ctx.server, insurer, second.constatId);
  for (const id of [ctx.constat.constatId, second.constatId]) {
    const res = await gql(ctx.server.url, insurer, QUERY, { id });
    const types = res.data!.constat.aiFindings.map((f: { type: string }) => f.type).sort();
    assert.equal(types, ['dz.ai.cost_estimated.v1', 'dz.ai.fraud_scored.v1']);
  }
  // The feed stays put once it has read everything (its position keeps the outbox row's full
  // timestamp precision): after the restart, one constat read and scored, once.
  await sleep(1_000);
  const metrics = await (await fetch(`${ctx.server.url}/metrics`)).text();
  assert.match(metrics, /constat_ai_events_total\{outcome="processed"\} 1\n/);
  assert.match(metrics, /constat_ai_function_results_total\{function="fraud"\} 1\n/);
  assert.match(metrics, /constat_outbox_backlog [1-9]/);
});

test.run();

/**
 * On PostgreSQL (no broker, embedded AI): timestamps have microseconds there, and the feed's
 * position must keep them, or the last row is read again and again.
 */
const pg = suite<{ server: TestServer }>('embedded AI on PostgreSQL', {
  server: undefined as unknown as TestServer,
});
setUp(pg, async (ctx) => {
  // No report renderer: printing the PDF after finalization (and its queue's poll) is work of
  // its own, and so is the webhook channel's poll (WEBHOOK_POLL_MS, like the Kafka relay's);
  // the window below must see only what the AI feed does.
  ctx.server = await startTestServer({
    database: 'postgres',
    hub: 'memory',
    env: {
      CHROMIUM_PATH: '/nonexistent/chromium',
      REPORT_POLL_MS: '600000',
      WEBHOOK_POLL_MS: '60000',
    },
  });
});
pg.after(async (ctx) => {
  await ctx.server?.stop();
});

pg('a constat is read once, and the server does no work while nothing happens', async (ctx) => {
  const f = await finalizeConstat(ctx.server);
  await untilScored(
    ctx.server,
    await token('staff-saa', 'desk-4', { roles: ['insurer:saa'] }),
    f.constatId,
  );
  await sleep(1_000);
  // Read in process: a /metrics scrape runs queries of its own (its gauges).
  const statements = async () =>
    (await ctx.server.server.metrics.sqlStatements.get()).values[0]!.value;
  // Two windows of a second: a periodic sweep (sessions' expiry, media clean-up) may fall in
  // one, a poll would fill both.
  const idle: number[] = [];
  for (let i = 0; i < 2; i++) {
    const before = await statements();
    await sleep(1_000);
    idle.push((await statements()) - before);
  }
  assert.is(Math.min(...idle), 0, `the server keeps issuing statements: ${idle.join(', ')} per s`);
  const metrics = await (await fetch(`${ctx.server.url}/metrics`)).text();
  assert.match(metrics, /constat_ai_events_total\{outcome="processed"\} 1\n/);
});

pg.run();
