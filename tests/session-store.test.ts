/**
 * One contract suite for every SessionStore adapter. Sessions, join codes and throttle counters
 * live in the database in every deployment, so the adapter is the SQL repository, run against a
 * fresh database on the real PostgreSQL server and against embedded PGlite. Whatever the store
 * guarantees — single-use join codes, one party B, compare-and-set transitions, failure
 * windows — it must guarantee on both, including under concurrent callers.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { randomBytes, randomUUID } from 'node:crypto';
import { pino } from 'pino';
import type { SessionStore } from '../sync/session-store.js';
import type { Party, SessionRecord, SessionStatus } from '../constat/session-record.js';
import { createSessionsRepository } from '../persistence/sessions-repository.js';
import { MEMORY_DATA_DIR, openDatabase } from '../persistence/database.js';
import { migrate } from '../persistence/migrate.js';
import { createTestDatabase } from '../persistence/test-database.js';
import { setUp } from './support/suite.js';

const logger = pino({ level: process.env.LOG_LEVEL ?? 'silent' });

interface StoreFactory {
  name: string;
  /** Creates the adapter; `close` releases it and whatever it left behind. */
  open(): Promise<{ store: SessionStore; close(): Promise<void> }>;
}

const postgresFactory: StoreFactory = {
  name: 'postgres',
  async open() {
    const db = await createTestDatabase(logger);
    try {
      await migrate(db.sql, logger);
    } catch (err) {
      await db.drop();
      throw err;
    }
    const store = createSessionsRepository(db.sql);
    return {
      store,
      async close() {
        try {
          await store.close();
        } finally {
          await db.drop();
        }
      },
    };
  },
};

const pgliteFactory: StoreFactory = {
  name: 'pglite',
  async open() {
    const db = await openDatabase({
      dataDir: MEMORY_DATA_DIR,
      template: process.env.PGLITE_TEMPLATE,
      logger,
    });
    try {
      await migrate(db.sql, logger);
    } catch (err) {
      await db.close();
      throw err;
    }
    const store = createSessionsRepository(db.sql);
    return {
      store,
      async close() {
        try {
          await store.close();
        } finally {
          await db.close();
        }
      },
    };
  },
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function party(tag: string): Party {
  return { userId: `user-${tag}`, deviceId: `device-${tag}`, joinedAt: new Date().toISOString() };
}

function record(overrides: Partial<SessionRecord> = {}): SessionRecord {
  const now = Date.now();
  return {
    schema: 1,
    id: randomUUID(),
    formVersion: 'dz',
    status: 'waiting',
    createdAt: new Date(now).toISOString(),
    expiresAt: new Date(now + 3600_000).toISOString(),
    parties: { A: party('a') },
    ...overrides,
  };
}

// Join codes are six digits; each test takes fresh ones so tests never collide.
let codeCounter = randomBytes(2).readUInt16BE(0) * 10;
const freshCode = () => String(100_000 + (codeCounter++ % 900_000)).padStart(6, '0');

function sessionStoreContract(factory: StoreFactory): void {
  const test = suite<{
    store: SessionStore;
    close?: () => Promise<void>;
  }>(`session store contract (${factory.name})`, {
    store: undefined as unknown as SessionStore,
  });

  setUp(test, async (ctx) => {
    const opened = await factory.open();
    ctx.store = opened.store;
    ctx.close = opened.close;
  });
  test.after(async (ctx) => {
    await ctx.close?.();
  });

  test('create stores the session; get returns an equal copy; unknown ids are null', async ({
    store,
  }) => {
    const session = record();
    assert.is(await store.create(session, freshCode(), 60_000), 'created');
    assert.equal(await store.get(session.id), session);
    assert.is(await store.get(randomUUID()), null);
    // The caller's object is not the stored one: mutating either leaves the other alone.
    const copy = (await store.get(session.id))!;
    copy.status = 'abandoned';
    assert.is((await store.get(session.id))!.status, 'waiting');
  });

  test('create returns false when the join code is already taken', async ({ store }) => {
    const code = freshCode();
    const first = record();
    const second = record();
    assert.is(await store.create(first, code, 60_000), 'created');
    assert.is(await store.create(second, code, 60_000), 'code-taken');
    assert.is(await store.peekJoinCode(code), first.id, 'the code still points at the first');
  });

  test('peekJoinCode returns the session id without consuming the code', async ({ store }) => {
    const code = freshCode();
    const session = record();
    await store.create(session, code, 60_000);
    assert.is(await store.peekJoinCode(code), session.id);
    assert.is(await store.peekJoinCode(code), session.id);
    assert.is(await store.peekJoinCode(freshCode()), null);
  });

  test('a join code is consumed only once', async ({ store }) => {
    const code = freshCode();
    const session = record();
    await store.create(session, code, 60_000);
    assert.is(await store.consumeJoinCode(code, session.id), true);
    assert.is(await store.consumeJoinCode(code, session.id), false);
    assert.is(await store.peekJoinCode(code), null);
  });

  test('two concurrent consumers: exactly one consumes the code', async ({ store }) => {
    for (let round = 0; round < 5; round++) {
      const code = freshCode();
      const session = record();
      await store.create(session, code, 60_000);
      const results = await Promise.all([
        store.consumeJoinCode(code, session.id),
        store.consumeJoinCode(code, session.id),
      ]);
      assert.equal(results.filter(Boolean).length, 1, `round ${round}: ${results.join(', ')}`);
    }
  });

  test('consuming with the wrong session id fails and leaves the code in place', async ({
    store,
  }) => {
    const code = freshCode();
    const session = record();
    await store.create(session, code, 60_000);
    assert.is(await store.consumeJoinCode(code, randomUUID()), false);
    assert.is(await store.peekJoinCode(code), session.id);
    assert.is(await store.consumeJoinCode(code, session.id), true);
  });

  test('addPartyB sets party B and makes the session active', async ({ store }) => {
    const session = record();
    await store.create(session, freshCode(), 60_000);
    const b = party('b');
    const result = await store.addPartyB(session.id, b);
    assert.ok(result.ok, JSON.stringify(result));
    if (!result.ok) return;
    assert.equal(result.session.parties.B, b);
    assert.equal(result.session.parties.A, session.parties.A);
    assert.is(result.session.status, 'active');
    assert.equal(await store.get(session.id), result.session);
  });

  test('addPartyB is atomic: of 10 concurrent joiners exactly one gets in', async ({ store }) => {
    const session = record();
    await store.create(session, freshCode(), 60_000);
    const joiners = Array.from({ length: 10 }, (_, i) => party(`joiner-${i}`));
    const results = await Promise.all(joiners.map((p) => store.addPartyB(session.id, p)));
    const winners = results.filter((r) => r.ok);
    assert.is(winners.length, 1, JSON.stringify(results));
    for (const r of results) if (!r.ok) assert.is(r.reason, 'full');
    const stored = (await store.get(session.id))!;
    const winner = winners[0]!;
    assert.ok(winner.ok);
    if (winner.ok) assert.equal(stored.parties.B, winner.session.parties.B);
    assert.ok(joiners.some((p) => p.userId === stored.parties.B?.userId));
  });

  test('addPartyB on a session that is not waiting is closed', async ({ store }) => {
    for (const status of ['abandoned', 'expired', 'finalized', 'active'] as SessionStatus[]) {
      const session = record({ status });
      await store.create(session, freshCode(), 60_000);
      const result = await store.addPartyB(session.id, party('late'));
      assert.equal(result, { ok: false, reason: 'closed' }, status);
      assert.is((await store.get(session.id))!.parties.B, undefined, status);
      assert.is((await store.get(session.id))!.status, status, status);
    }
  });

  test('addPartyB on an unknown session is not-found', async ({ store }) => {
    assert.equal(await store.addPartyB(randomUUID(), party('b')), {
      ok: false,
      reason: 'not-found',
    });
  });

  test('transition applies the patch only from a listed status', async ({ store }) => {
    const session = record();
    await store.create(session, freshCode(), 60_000);
    assert.is(await store.transition(session.id, ['active'], { status: 'finalized' }), null);
    assert.is((await store.get(session.id))!.status, 'waiting');
    assert.is(await store.transition(session.id, [], { status: 'abandoned' }), null);
    const abandoned = await store.transition(session.id, ['waiting', 'active'], {
      status: 'abandoned',
    });
    assert.ok(abandoned);
    assert.is(abandoned.status, 'abandoned');
    assert.equal(abandoned.parties, session.parties, 'fields outside the patch are kept');
    assert.equal(await store.get(session.id), abandoned);
    assert.is(await store.transition(randomUUID(), ['waiting'], { status: 'abandoned' }), null);
  });

  test('transition can set fields besides the status', async ({ store }) => {
    const session = record({ status: 'active', parties: { A: party('a'), B: party('b') } });
    await store.create(session, freshCode(), 60_000);
    const constatId = randomUUID();
    const finalized = await store.transition(session.id, ['active'], {
      status: 'finalized',
      constatId,
    });
    assert.ok(finalized);
    assert.is(finalized.constatId, constatId);
    assert.equal(finalized.parties, session.parties);
    assert.is((await store.get(session.id))!.constatId, constatId);
  });

  test('concurrent transitions from the same status: exactly one wins', async ({ store }) => {
    for (let round = 0; round < 5; round++) {
      const session = record({ status: 'active', parties: { A: party('a'), B: party('b') } });
      await store.create(session, freshCode(), 60_000);
      const results = await Promise.all(
        Array.from({ length: 8 }, (_, i) =>
          store.transition(session.id, ['active'], {
            status: i % 2 ? 'finalized' : 'abandoned',
            ...(i % 2 ? { constatId: `constat-${i}` } : {}),
          }),
        ),
      );
      const winners = results.filter((r) => r !== null);
      assert.is(winners.length, 1, `round ${round}`);
      assert.equal(await store.get(session.id), winners[0]);
    }
  });

  test('recordFailure counts failures under a key; keys are independent', async ({ store }) => {
    const key = `test:${randomUUID()}`;
    const other = `test:${randomUUID()}`;
    assert.is(await store.failures(key), 0);
    assert.is(await store.recordFailure(key, 60_000), 1);
    assert.is(await store.recordFailure(key, 60_000), 2);
    assert.is(await store.recordFailure(key, 60_000), 3);
    assert.is(await store.failures(key), 3);
    assert.is(await store.failures(other), 0);
    const concurrent = await Promise.all(
      Array.from({ length: 20 }, () => store.recordFailure(other, 60_000)),
    );
    assert.equal(
      [...concurrent].sort((x, y) => x - y),
      Array.from({ length: 20 }, (_, i) => i + 1),
      'concurrent failures each get their own count',
    );
    assert.is(await store.failures(other), 20);
  });

  test('forgiveFailure takes one count back and never goes below zero', async ({ store }) => {
    const key = `test:${randomUUID()}`;
    await store.recordFailure(key, 60_000);
    await store.recordFailure(key, 60_000);
    await store.forgiveFailure(key);
    assert.is(await store.failures(key), 1);
    await store.forgiveFailure(key);
    await store.forgiveFailure(key);
    assert.is(await store.failures(key), 0);
    await store.forgiveFailure(`test:${randomUUID()}`); // unknown key: nothing to forgive
  });

  test('the failure window starts at the first failure and expires', async ({ store }) => {
    const key = `test:${randomUUID()}`;
    assert.is(await store.recordFailure(key, 400), 1);
    await sleep(200);
    // A later failure does not extend the window.
    assert.is(await store.recordFailure(key, 400), 2);
    await sleep(350);
    assert.is(await store.failures(key), 0, 'window over 550 ms after the first failure');
    assert.is(await store.recordFailure(key, 400), 1, 'a new window starts from one');
  });

  test('a join code expires after its ttl', async ({ store }) => {
    const code = freshCode();
    const session = record();
    assert.is(await store.create(session, code, 150), 'created');
    assert.is(await store.peekJoinCode(code), session.id);
    await sleep(300);
    assert.is(await store.peekJoinCode(code), null);
    assert.is(await store.consumeJoinCode(code, session.id), false);
    // The session itself lives on, and the expired code may be handed out again.
    assert.equal(await store.get(session.id), session);
    const next = record();
    assert.is(await store.create(next, code, 60_000), 'created');
    assert.is(await store.peekJoinCode(code), next.id);
  });

  test.run();
}

for (const factory of [postgresFactory, pgliteFactory]) sessionStoreContract(factory);
