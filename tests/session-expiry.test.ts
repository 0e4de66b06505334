/**
 * The expiry sweep closes every session past its expiry: the live document is stored, then the
 * draft is closed as expired. A session whose document cannot be stored keeps its draft live
 * (nothing closed unsaved) and must not leave the other expired sessions' drafts open.
 * Runs on embedded PGlite with the real repositories.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { pino } from 'pino';
import { SessionService, type SessionServiceSettings } from '../sync/session-service.js';
import { createSessionsRepository } from '../persistence/sessions-repository.js';
import { createDraftsRepository } from '../persistence/drafts-repository.js';
import { MEMORY_DATA_DIR, openDatabase, type Database } from '../persistence/database.js';
import { migrate } from '../persistence/migrate.js';

const logger = pino({ level: process.env.LOG_LEVEL ?? 'silent' });

const settings: SessionServiceSettings = {
  ttlMs: 300, // the store compares with the database's clock, so the test waits it out
  joinCodeTtlMs: 60_000,
  joinFailuresPerUser: 10,
  joinFailuresGlobal: 1000,
  joinThrottleWindowMs: 60_000,
  maxWaitingPerUser: 5,
};

const test = suite<{ db: Database }>('session expiry sweep (pglite)');

test.before(async (ctx) => {
  ctx.db = await openDatabase({
    dataDir: MEMORY_DATA_DIR,
    template: process.env.PGLITE_TEMPLATE,
    logger,
  });
  await migrate(ctx.db.sql, logger);
});
test.after(async (ctx) => {
  await ctx.db?.close();
});

test('one session that cannot be stored does not keep the others open', async (ctx) => {
  const store = createSessionsRepository(ctx.db.sql);
  const drafts = createDraftsRepository(ctx.db.sql);
  const service = new SessionService(store, drafts, settings);
  const opened = await Promise.all(
    ['u1', 'u2', 'u3'].map((u) => service.open({ userId: u, deviceId: `d-${u}` }, 'dz')),
  );
  const [first, broken, last] = opened.map((o) => o.session.id) as [string, string, string];
  const ended: string[] = [];
  const changed: string[] = [];
  service.onChanged((id) => changed.push(id));
  service.onEnded(async (session) => {
    if (session.id === broken) throw new Error('the document could not be stored');
    ended.push(session.id);
  });

  await new Promise((r) => setTimeout(r, settings.ttlMs + 300));
  const err = await service.expireDue().then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.instance(err, AggregateError, 'the failure is reported');
  assert.is((err as AggregateError).errors.length, 1);
  assert.equal(ended.sort(), [first, last].sort(), 'every other session was ended');
  for (const id of [first, last]) assert.is((await drafts.load(id))!.status, 'expired', id);
  assert.is((await drafts.load(broken))!.status, 'live', 'the unsaved draft stays open');
  assert.is((await store.get(broken))!.status, 'expired');
  assert.equal(changed.sort(), [first, broken, last].sort(), 'subscribers hear of every expiry');
});

test.run();
