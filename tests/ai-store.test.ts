/**
 * The AI service's state on a real PostgreSQL database of its own, and the pipeline on it:
 * migrations into schema `ai`; the feature store counts only constats finalized earlier and
 * within the window (so a replay sees what the first pass saw), forgets rows past retention;
 * a constat processed twice gives the very same events (ids and content); a function that
 * throws is reported while the others still answer; unusable events are dead letters.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { randomUUID } from 'node:crypto';
import { pino } from 'pino';
import { createTestDatabase, type TestDatabase } from '../persistence/test-database.js';
import { createAiStore, migrateAiStore, type AiStore } from '../ai/store.js';
import { AiPipeline, resultId } from '../ai/pipeline.js';
import { AiMetrics } from '../ai/metrics.js';
import { costFunction, fraudFunction, type AiFunction } from '../ai/functions.js';
import { loadCostTables } from '../ai/cost/tables.js';
import { loadRuleSet } from '../ai/fraud/rules.js';
import { createEventValidator } from '../integrations/event-validator.js';
import { cloudEvent } from '../integrations/events.js';
import { finalizedData, type FinalizedOverrides } from './fixtures/finalized.js';
import { setUp } from './support/suite.js';

const logger = pino({ level: 'silent' });
const test = suite<{ db: TestDatabase; store: AiStore }>('ai store', {
  db: undefined as unknown as TestDatabase,
  store: undefined as unknown as AiStore,
});
setUp(test, async (ctx) => {
  ctx.db = await createTestDatabase();
  await migrateAiStore(ctx.db.sql, logger);
  ctx.store = createAiStore(ctx.db.sql);
});
test.after(async (ctx) => {
  await ctx.db?.drop();
});

const rules = loadRuleSet();
const tables = loadCostTables();
const pipeline = (store: AiStore, functions?: AiFunction[]) =>
  new AiPipeline({
    functions: functions ?? [costFunction(tables), fraudFunction(rules)],
    store,
    validator: createEventValidator(),
    metrics: new AiMetrics(),
    logger,
  });
const envelope = (o: FinalizedOverrides = {}) => {
  const data = finalizedData(o);
  return JSON.stringify(cloudEvent('dz.constat.finalized.v1', data.constatId, data));
};

test('migrations create schema ai and are idempotent', async (ctx) => {
  await migrateAiStore(ctx.db.sql, logger);
  const rows = await ctx.db.sql<{ version: string }[]>`select version from ai.schema_migrations`;
  assert.equal(
    rows.map((r) => r.version),
    ['0001_ai_init'],
  );
  const [t] = await ctx.db.sql`select to_regclass('ai.features') is not null as ok`;
  assert.ok(t!.ok);
  // Nothing of the AI in core's public schema.
  const [p] = await ctx.db.sql`select to_regclass('public.schema_migrations') is null as ok`;
  assert.ok(p!.ok);
});

test('earlier constats count; later ones, itself and those outside the window do not', async (ctx) => {
  const plate = { kind: 'plate' as const, value: `P${randomUUID()}`, role: 'A' as const };
  const at = (iso: string) => new Date(iso);
  const [c1, c2, c3, c4, me] = Array.from({ length: 5 }, () => randomUUID());
  await ctx.store.remember(c1!, [plate], at('2024-01-01T00:00:00Z'));
  await ctx.store.remember(c2!, [plate], at('2025-03-01T00:00:00Z'));
  await ctx.store.remember(c3!, [plate], at('2025-03-10T00:00:00Z'));
  await ctx.store.remember(c4!, [plate], at('2025-04-01T00:00:00Z'));
  await ctx.store.remember(me!, [plate], at('2025-03-14T00:00:00Z'));
  // Twice: idempotent.
  await ctx.store.remember(c3!, [plate], at('2025-03-10T00:00:00Z'));
  const seen = await ctx.store.seenBefore(me!, [plate], at('2025-03-14T00:00:00Z'), 365);
  assert.is(seen.length, 1);
  assert.equal(
    seen[0]!.earlier.map((d) => d.toISOString().slice(0, 10)),
    ['2025-03-10', '2025-03-01'],
  );
  assert.is(seen[0]!.role, 'A');
});

test('retention forgets features older than the period', async (ctx) => {
  const f = { kind: 'phone' as const, value: `9${Date.now()}`, role: 'B' as const };
  await ctx.store.remember(randomUUID(), [f], new Date(Date.now() - 40 * 86_400_000));
  await ctx.store.remember(randomUUID(), [f], new Date(Date.now() - 5 * 86_400_000));
  const removed = await ctx.store.prune(30);
  assert.ok(removed >= 1);
  const [{ n }] = (await ctx.db.sql`
    select count(*)::int as n from ai.features where value = ${f.value}
  `) as unknown as [{ n: number }];
  assert.is(n, 1);
});

test('a constat processed twice gives the very same events', async (ctx) => {
  const p = pipeline(ctx.store);
  const value = envelope();
  const first = await p.process(value);
  const again = await p.process(value);
  assert.is(first.kind, 'processed');
  if (first.kind !== 'processed' || again.kind !== 'processed') return;
  assert.equal(
    first.results.map((e) => e.type),
    ['dz.ai.cost_estimated.v1', 'dz.ai.fraud_scored.v1'],
  );
  assert.equal(again.results, first.results);
  assert.is(first.results[1]!.id, resultId('fraud', first.constatId));
  assert.is(first.results[1]!.source, 'constat-ai-fraud');
  assert.is(first.results[0]!.source, 'constat-ai-cost');
  // Schema-valid as core will check them.
  const validator = createEventValidator();
  for (const e of first.results) validator.parse(Buffer.from(JSON.stringify(e)));
});

test('the ring: the same parties again raise the score of the later constat only', async (ctx) => {
  const p = pipeline(ctx.store);
  const licence = String(Math.floor(Math.random() * 1e9)).padStart(9, '1');
  const ring = (finalizedAt: string) =>
    envelope({ finalizedAt, vehicleA: { driver: { licenceNumber: licence } } });
  const first = await p.process(ring('2025-05-01T10:00:00Z'));
  const second = await p.process(ring('2025-05-20T10:00:00Z'));
  if (first.kind !== 'processed' || second.kind !== 'processed') throw new Error('not processed');
  const signals = (o: typeof first) => (o.results[1]!.data as { signals: string[] }).signals;
  assert.not.ok(signals(first).includes('parties_repeat'));
  assert.ok(signals(second).includes('parties_repeat'), signals(second).join());
  assert.ok(signals(second).includes('licence_repeat'));
  const score = (o: typeof first) => (o.results[1]!.data as { score: number }).score;
  assert.ok(score(second) > score(first));
});

test('a function that throws is reported; the others still answer', async (ctx) => {
  const exploding: AiFunction = {
    name: 'exploding',
    service: 'constat-ai-exploding',
    eventType: 'dz.ai.ocr_verified.v1',
    run: async () => {
      throw new RangeError('no such page');
    },
  };
  const p = pipeline(ctx.store, [exploding, costFunction(tables)]);
  const out = await p.process(envelope());
  if (out.kind !== 'processed') throw new Error(out.kind);
  assert.equal(out.failures, [{ fn: 'exploding', error: 'RangeError: no such page' }]);
  assert.equal(
    out.results.map((e) => e.type),
    ['dz.ai.cost_estimated.v1'],
  );
});

test('unusable events are dead letters with the reason', async (ctx) => {
  const p = pipeline(ctx.store);
  const reason = async (v: string | null) => {
    const out = await p.process(v);
    return out.kind === 'dead-letter' ? out.reason : out.kind;
  };
  assert.is(await reason('{not json'), 'invalid-json');
  assert.is(await reason(null), 'invalid-json');
  assert.is(await reason('[1,2]'), 'invalid-envelope');
  const claim = cloudEvent(
    'dz.claim.opened.v1',
    randomUUID(),
    { claimNumber: 'X' },
    { source: 'saa' },
  );
  assert.is(await reason(JSON.stringify(claim)), 'unexpected-type');
  const forged = JSON.parse(envelope()) as Record<string, unknown>;
  // Only core announces finalized constats (the schema pins the source).
  assert.is(await reason(JSON.stringify({ ...forged, source: 'someone' })), 'schema-violation');
  assert.is(
    await reason(JSON.stringify({ ...forged, data: { constatId: 'x' } })),
    'schema-violation',
  );
});

test.run();
