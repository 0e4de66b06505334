/**
 * The soak (`npm run bench -- --soak`, scripts/bench/soak.ts) in short: simulated pairs for
 * a minute against two `constat serve` instances on PostgreSQL, Redis and Kafka, one of them
 * restarted half-way (SIGTERM, started again) while phones are on it. Asserts the invariants,
 * not the speed: every pair finalized, no edit lost, every session finalized exactly once,
 * every constat read back exactly once from each of its insurers' topics, Redis holding no
 * stream entry once the compaction window passed; and that the restart really happened under
 * load and both instances were sampled.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { runSoak, type SoakReport } from '../scripts/bench/soak.js';
import { setUp } from './support/suite.js';

interface Ctx {
  report?: SoakReport;
}

const test = suite<Ctx>('soak', {});

setUp(test, async (ctx) => {
  const kafka = process.env.KAFKA_BROKERS;
  if (!kafka) throw new Error('the soak needs KAFKA_BROKERS (the test runner starts a broker)');
  ctx.report = await runSoak({
    pairs: 24,
    minutes: 1,
    kafkaBrokers: kafka,
    // A short compaction window, so that the end of it falls within the test.
    env: { HUB_MIN_MESSAGE_LIFETIME_MS: '5000', COMPACTION_INTERVAL_MS: '1000' },
    sampleMs: 2_000,
    seed: 'soak-test',
    showProgress: false,
    log: () => {},
  });
});

for (const name of [
  'every pair finalized',
  'zero lost edits',
  'every session finalized exactly once (PostgreSQL)',
  'delivered once per insurer topic (Kafka, read back)',
  'Redis lets go of every stream entry after the compaction window',
]) {
  test(name, (ctx) => {
    const invariant = ctx.report!.invariants.find((i) => i.name === name);
    assert.ok(invariant, `checked: ${name}`);
    assert.ok(invariant.ok, invariant.detail);
  });
}

test('the restart happened while phones were on the instance, and both were sampled', (ctx) => {
  const r = ctx.report!;
  assert.is(r.pairs, 24);
  assert.ok(Number.isFinite(r.restart.downSeconds), 'instance restarted');
  assert.ok(r.failovers > 0, 'connections went to the other instance meanwhile');
  const lives = r.instances.map((l) => `${l.instance}.${l.life}`);
  assert.equal(lives, ['0.1', '1.1', '1.2']);
  for (const l of r.instances) {
    assert.ok(l.samples.length > 0, `instance ${l.instance + 1} life ${l.life} sampled`);
    for (const s of l.samples) assert.ok(s.rssKiB > 10_000 && s.loopP99Ms >= 0);
  }
  assert.ok(r.instances[0]!.rssSlopeKiBPerMinute !== undefined, 'a slope after warm-up');
  assert.ok(r.redis.samples.length > 3, 'Redis sampled');
  assert.ok(
    Math.max(...r.redis.samples.map((s) => s.streamEntries)) > 0,
    'the streams held entries while pairs ran',
  );
});

test.run();
