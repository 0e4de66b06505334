/**
 * One contract suite for the persistence layer, run against every database we support: a fresh
 * database on the real PostgreSQL server, embedded PGlite on a data folder (reopened to prove
 * the data survives a restart) and in-memory PGlite.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import type postgres from 'postgres';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import * as Y from 'yjs';
import { MEMORY_DATA_DIR, openDatabase, type Database } from '../persistence/database.js';
import { createDraftsRepository } from '../persistence/drafts-repository.js';
import { listMigrations, migrate } from '../persistence/migrate.js';
import { createTestDatabase } from '../persistence/test-database.js';
import { setUp } from './support/suite.js';

const logger = pino({ level: process.env.LOG_LEVEL ?? 'silent' });

/** Start-up times, printed after uvu's summary. */
const timings: string[] = [];
process.once('beforeExit', () => {
  for (const line of timings) console.log(`  ${line}`);
});

/** An empty database, as one adapter provides it. */
interface Target {
  sql: postgres.Sql;
  /**
   * A second, independent client of the same database, as another process would have. Absent
   * where the database admits one client (PGlite): concurrent runs then share `sql`.
   */
  peer?: postgres.Sql;
  /** Close everything and open the same database again; absent for in-memory databases. */
  reopen?: () => Promise<postgres.Sql>;
  close(): Promise<void>;
}

interface State {
  target?: Target;
}

function persistenceContract(name: string, createTarget: () => Promise<Target>) {
  const test = suite<State>(`persistence: ${name}`, {});

  // uvu swallows an exception thrown by a `before` hook and reports the suite as passed, so
  // keep the error and fail every test with it instead.
  setUp(test, async (state) => {
    state.target = await createTarget();
  });
  test.after(async (state) => {
    await state.target?.close();
  });

  const sqlOf = (state: State) => state.target!.sql;

  test('two concurrent migrate runs on an empty database both succeed, each file applied once', async (state) => {
    const target = state.target!;
    const expected = (await listMigrations()).map((m) => m.version);
    assert.ok(expected.includes('0001_init'));

    const [first, second] = await Promise.all([
      migrate(target.sql, logger),
      migrate(target.peer ?? target.sql, logger),
    ]);
    const all = [...first.applied, ...second.applied].sort();
    assert.equal(all, expected, 'every file applied by exactly one of the runs');

    const rows = await target.sql<{ version: string }[]>`
      select version from schema_migrations order by version
    `;
    assert.equal(
      rows.map((r) => r.version),
      expected,
    );
    const [drafts] = await target.sql`select to_regclass('drafts') is not null as exists`;
    assert.is(drafts?.exists, true);
  });

  test('re-running migrate applies nothing', async (state) => {
    const result = await migrate(sqlOf(state), logger);
    assert.equal(result.applied, []);
  });

  test('a Yjs document round-trips through save and load', async (state) => {
    const drafts = createDraftsRepository(sqlOf(state));
    const doc = buildDocument();
    const update = Y.encodeStateAsUpdate(doc);
    const vector = Y.encodeStateVector(doc);

    assert.is(
      await drafts.save({
        sessionId: 'round-trip',
        formVersion: 'v1',
        state: update,
        stateVector: vector,
      }),
      true,
    );
    const draft = await drafts.load('round-trip');
    assert.ok(draft);
    assert.ok(draft.state instanceof Uint8Array);
    assert.equal(Array.from(draft.state), Array.from(update));
    assert.ok(draft.stateVector instanceof Uint8Array);
    assert.equal(Array.from(draft.stateVector), Array.from(vector));
    assert.is(draft.formVersion, 'v1');
    assert.is(draft.status, 'live');
    assert.is(draft.version, 1);
    assert.ok(draft.createdAt instanceof Date);

    const reloaded = new Y.Doc();
    Y.applyUpdate(reloaded, draft.state);
    assert.equal(contentOf(reloaded), contentOf(doc));
    assert.equal(reloaded.getText('notes').toString(), 'Rear-ended at the lights');
  });

  test('load of an unknown session is null', async (state) => {
    assert.is(await createDraftsRepository(sqlOf(state)).load('no-such-session'), null);
  });

  test('each save increments the version and replaces the state', async (state) => {
    const drafts = createDraftsRepository(sqlOf(state));
    const doc = buildDocument();
    await drafts.save({
      sessionId: 'versions',
      formVersion: 'v1',
      state: Y.encodeStateAsUpdate(doc),
      stateVector: Y.encodeStateVector(doc),
    });
    doc.getMap('shared').set('location', 'Place de la Bastille');
    await drafts.save({
      sessionId: 'versions',
      formVersion: 'v1',
      state: Y.encodeStateAsUpdate(doc),
    });
    doc.getMap('shared').set('injuries', true);
    await drafts.save({
      sessionId: 'versions',
      formVersion: 'v1',
      state: Y.encodeStateAsUpdate(doc),
    });

    const draft = await drafts.load('versions');
    assert.ok(draft);
    assert.is(draft.version, 3);
    assert.is(draft.stateVector, null, 'a save without a vector clears the stale one');
    assert.ok(draft.updatedAt.getTime() >= draft.createdAt.getTime());
    const reloaded = new Y.Doc();
    Y.applyUpdate(reloaded, draft.state);
    assert.equal(contentOf(reloaded), contentOf(doc));
  });

  test('a finalized draft is never overwritten by a later save', async (state) => {
    const drafts = createDraftsRepository(sqlOf(state));
    const doc = buildDocument();
    const signed = Y.encodeStateAsUpdate(doc);
    await drafts.save({ sessionId: 'finalized', formVersion: 'v1', state: signed });
    // As the finalizer does: inside its own transaction.
    assert.is(
      await sqlOf(state).begin((tx) =>
        createDraftsRepository(tx).setStatus('finalized', 'finalized'),
      ),
      true,
    );
    assert.is(await drafts.setStatus('finalized', 'finalized'), true, 'idempotent');
    assert.is(await drafts.setStatus('finalized', 'expired'), false, 'closed statuses are final');

    doc.getMap('shared').set('location', 'changed after signing');
    const saved = await drafts.save({
      sessionId: 'finalized',
      formVersion: 'v2',
      state: Y.encodeStateAsUpdate(doc),
      status: 'live',
    });
    assert.is(saved, false);

    const draft = await drafts.load('finalized');
    assert.ok(draft);
    assert.is(draft.status, 'finalized');
    assert.is(draft.formVersion, 'v1');
    assert.is(draft.version, 1);
    assert.equal(Array.from(draft.state), Array.from(signed));
  });

  test('a draft first saved as finalized is not overwritten either', async (state) => {
    const drafts = createDraftsRepository(sqlOf(state));
    const first = Y.encodeStateAsUpdate(buildDocument());
    await drafts.save({
      sessionId: 'born-final',
      formVersion: 'v1',
      state: first,
      status: 'finalized',
    });
    assert.is(
      await drafts.save({
        sessionId: 'born-final',
        formVersion: 'v1',
        state: new Uint8Array([0, 0]),
      }),
      false,
    );
    const draft = await drafts.load('born-final');
    assert.equal(Array.from(draft!.state), Array.from(first));
  });

  test('setStatus on an unknown session reports false', async (state) => {
    assert.is(await createDraftsRepository(sqlOf(state)).setStatus('nobody', 'abandoned'), false);
  });

  test('appended updates come back with the draft, in order, and rebuild the document', async (state) => {
    const drafts = createDraftsRepository(sqlOf(state));
    const doc = buildDocument();
    const base = Y.encodeStateAsUpdate(doc);
    await drafts.save({ sessionId: 'appended', formVersion: 'v1', state: base });
    const updates: Uint8Array[] = [];
    doc.on('update', (u: Uint8Array) => updates.push(u));
    doc.getText('notes').insert(0, 'First: ');
    doc.getMap('shared').set('location', 'Oran');
    const outcomes = [];
    for (const u of updates) outcomes.push(await drafts.append('appended', u));
    assert.equal(outcomes.at(-1), {
      kind: 'appended',
      pendingRows: 2,
      pendingBytes: updates[0]!.byteLength + updates[1]!.byteLength,
      baseBytes: base.byteLength,
    });
    const draft = (await drafts.load('appended'))!;
    assert.is(draft.updates.length, 2);
    assert.equal(
      draft.updates.map((u) => Array.from(u)),
      updates.map((u) => Array.from(u)),
    );
    const reloaded = new Y.Doc();
    for (const part of [draft.state, ...draft.updates]) Y.applyUpdate(reloaded, part);
    assert.equal(contentOf(reloaded), contentOf(doc));
  });

  test('append refuses a closed or missing draft, writing nothing', async (state) => {
    const drafts = createDraftsRepository(sqlOf(state));
    const doc = buildDocument();
    await drafts.save({
      sessionId: 'closed-append',
      formVersion: 'v1',
      state: Y.encodeStateAsUpdate(doc),
    });
    await drafts.setStatus('closed-append', 'abandoned');
    const late = Y.encodeStateAsUpdate(buildDocument());
    assert.equal(await drafts.append('closed-append', late), { kind: 'closed' });
    assert.is((await drafts.load('closed-append'))!.updates.length, 0);
    assert.equal(await drafts.append('no-such-draft', late), { kind: 'missing' });
  });

  test('a fold replaces the base and drops exactly the updates it merged', async (state) => {
    const drafts = createDraftsRepository(sqlOf(state));
    const doc = buildDocument();
    await drafts.save({ sessionId: 'fold', formVersion: 'v1', state: Y.encodeStateAsUpdate(doc) });
    const updates: Uint8Array[] = [];
    doc.on('update', (u: Uint8Array) => updates.push(u));
    doc.getText('notes').insert(0, 'one ');
    await drafts.append('fold', updates[0]!);
    const read = (await drafts.load('fold'))!;
    // Appended after the fold read the draft: it must survive the fold.
    doc.getText('notes').insert(0, 'two ');
    await drafts.append('fold', updates[1]!);
    const merged = new Y.Doc();
    for (const part of [read.state, ...read.updates]) Y.applyUpdate(merged, part);
    const fold = {
      sessionId: 'fold',
      version: read.version,
      state: Y.encodeStateAsUpdate(merged),
      stateVector: Y.encodeStateVector(merged),
      seqs: read.updateSeqs,
    };
    assert.is(await drafts.fold(fold), true);
    const after = (await drafts.load('fold'))!;
    assert.is(after.version, read.version + 1);
    assert.is(after.updates.length, 1, 'the later update is kept');
    const reloaded = new Y.Doc();
    for (const part of [after.state, ...after.updates]) Y.applyUpdate(reloaded, part);
    assert.equal(contentOf(reloaded), contentOf(doc));
    // The same fold again is stale (the version moved): refused, nothing changes.
    assert.is(await drafts.fold(fold), false);
    assert.is((await drafts.load('fold'))!.updates.length, 1);
  });

  test('bytes go in as bytea parameters and come back exactly, beside other parameters', async (state) => {
    const sql = sqlOf(state);
    await sql`create table bytes_round_trip (id int primary key, label text, b bytea, n int)`;
    try {
      const every = Uint8Array.from({ length: 256 * 64 }, (_, i) => i % 256);
      const large = Uint8Array.from({ length: 2 * 1024 * 1024 + 3 }, (_, i) => (i * 7919) % 256);
      // A view into a larger buffer sends its own bytes only.
      const chunk = Uint8Array.from({ length: 1000 }, (_, i) => i % 251);
      const view = chunk.subarray(10, 20);
      const cases: Array<[number, Uint8Array | null]> = [
        [1, every],
        [2, new Uint8Array(0)],
        [3, large],
        [4, view],
        [5, null],
        [6, Buffer.from(every.subarray(3, 300))],
      ];
      for (const [id, b] of cases) {
        await sql`insert into bytes_round_trip values (${id}, ${`case ${id}`}, ${b}, ${id * 10})`;
      }
      // Unprepared (no describe round trip) and inside a transaction, the same.
      await sql.unsafe(
        'insert into bytes_round_trip values ($1, $2, $3, $4)',
        [7, 'unsafe', every, 70],
        {
          prepare: false,
        },
      );
      await sql.begin((tx) => tx`insert into bytes_round_trip values (8, 'tx', ${view}, 80)`);
      const rows = await sql<Array<{ id: number; label: string; b: Uint8Array | null; n: number }>>`
        select id, label, b, n from bytes_round_trip order by id`;
      const expected = new Map<number, Uint8Array | null>([...cases, [7, every], [8, view]]);
      for (const row of rows) {
        const want = expected.get(row.id)!;
        if (want === null) assert.is(row.b, null, `case ${row.id}`);
        else assert.ok(row.b && Buffer.from(row.b).equals(Buffer.from(want)), `case ${row.id}`);
        assert.is(row.n, row.id * 10);
      }
      assert.is(rows.length, 8);
      // The server sees bytea, not text that happens to look like it.
      const [typed] = await sql<Array<{ len: number; first: number; last: number }>>`
        select octet_length(${large}::bytea) as len, get_byte(${large}, 0) as first,
          get_byte(${large}, ${large.length - 1}) as last`;
      assert.equal(typed, { len: large.length, first: large[0]!, last: large[large.length - 1]! });
    } finally {
      await sql`drop table bytes_round_trip`;
    }
  });

  test('drafts and the migration record survive closing and reopening the database', async (state) => {
    const target = state.target!;
    if (!target.reopen) return; // in-memory: nothing outlives close
    const doc = buildDocument();
    const update = Y.encodeStateAsUpdate(doc);
    await createDraftsRepository(target.sql).save({
      sessionId: 'restart',
      formVersion: 'v1',
      state: update,
    });

    target.sql = await target.reopen();

    assert.equal((await migrate(target.sql, logger)).applied, []);
    const draft = await createDraftsRepository(target.sql).load('restart');
    assert.ok(draft);
    const reloaded = new Y.Doc();
    Y.applyUpdate(reloaded, draft.state);
    assert.equal(contentOf(reloaded), contentOf(doc));
  });

  return test;
}

/** A small constat-like document using the Yjs types the real one uses. */
function buildDocument(): Y.Doc {
  const doc = new Y.Doc();
  doc.transact(() => {
    const shared = doc.getMap('shared');
    shared.set('date', '2024-05-17T08:30:00Z');
    shared.set('witnesses', ['J. Martin']);
    const vehicleA = new Y.Map<unknown>();
    vehicleA.set('plate', 'AB-123-CD');
    vehicleA.set('damage', Y.Array.from([1, 4, 7]));
    doc.getMap('vehicles').set('A', vehicleA);
    doc.getText('notes').insert(0, 'Rear-ended at the lights');
    // Bytes across the whole range, including 0x00 and 0xff, must survive bytea.
    doc.getMap('sketch').set('raw', new Uint8Array([0, 1, 127, 128, 255]));
  });
  return doc;
}

/**
 * The document's content as JSON. `Y.Doc#toJSON` leaves out root types the doc has not asked for
 * by name yet (a freshly loaded doc knows none), so name them.
 */
function contentOf(doc: Y.Doc): unknown {
  return {
    shared: doc.getMap('shared').toJSON(),
    vehicles: doc.getMap('vehicles').toJSON(),
    notes: doc.getText('notes').toJSON(),
    sketch: doc.getMap('sketch').toJSON(),
  };
}

async function exists(file: string): Promise<boolean> {
  return fs.access(file).then(
    () => true,
    () => false,
  );
}

/** Closes `first`, then `second`, even if the first throws. */
async function closeBoth(first: () => Promise<void>, second: () => Promise<void>): Promise<void> {
  try {
    await first();
  } finally {
    await second();
  }
}

const postgresSuite = persistenceContract('PostgreSQL', async () => {
  const testDb = await createTestDatabase(logger);
  let db: Database | undefined;
  try {
    db = await openDatabase({ databaseUrl: testDb.url, dataDir: os.tmpdir(), logger });
  } catch (err) {
    await testDb.drop();
    throw err;
  }
  let current: Database = db;
  return {
    sql: current.sql,
    // The helper's own client: a separate pool, as a second server process would have.
    peer: testDb.sql,
    reopen: async () => {
      await current.close();
      current = await openDatabase({ databaseUrl: testDb.url, dataDir: os.tmpdir(), logger });
      return current.sql;
    },
    close: () =>
      closeBoth(
        () => current.close(),
        () => testDb.drop(),
      ),
  };
});

const pgliteSuite = persistenceContract('PGlite on a data folder', async () => {
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'constat-pglite-'));
  const removeDir = () => fs.rm(dataDir, { recursive: true, force: true });
  let current: Database | undefined;
  try {
    let started = performance.now();
    current = await openDatabase({ dataDir, logger });
    timings.push(`PGlite first start (initdb): ${Math.round(performance.now() - started)} ms`);
    return {
      sql: current.sql,
      reopen: async () => {
        await current?.close();
        current = undefined;
        started = performance.now();
        current = await openDatabase({ dataDir, logger });
        timings.push(`PGlite restart: ${Math.round(performance.now() - started)} ms`);
        return current.sql;
      },
      close: () => closeBoth(async () => current?.close(), removeDir),
    };
  } catch (err) {
    await closeBoth(async () => current?.close(), removeDir);
    throw err;
  }
});

const memorySuite = persistenceContract('PGlite in memory', async () => {
  const db = await openDatabase({
    dataDir: MEMORY_DATA_DIR,
    template: process.env.PGLITE_TEMPLATE,
    logger,
  });
  return { sql: db.sql, close: () => db.close() };
});

/** What only the embedded database has: the data folder lock and its start/stop edges. */
const embedded = suite<{ dataDir?: string; open: Database[] }>('openDatabase: PGlite data folder', {
  open: [],
});
embedded.before(async (state) => {
  state.dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'constat-pglite-'));
});
embedded.after(async (state) => {
  try {
    for (const db of state.open) await db.close();
  } finally {
    if (state.dataDir) await fs.rm(state.dataDir, { recursive: true, force: true });
  }
});

embedded('a second open of a data folder in use is refused; close is idempotent', async (state) => {
  const dataDir = state.dataDir!;
  const db = await openDatabase({ dataDir, logger });
  state.open.push(db);
  assert.is(db.kind, 'pglite');
  try {
    await openDatabase({ dataDir, logger });
    assert.unreachable('opened twice');
  } catch (err) {
    assert.match((err as Error).message, /already open|in use/);
  }
  await db.close();
  await db.close();
  assert.is(await exists(path.join(dataDir, 'pglite.lock')), false, 'lock released on close');
});

embedded('a lock held by another live process is refused', async (state) => {
  const lock = path.join(state.dataDir!, 'pglite.lock');
  await fs.writeFile(lock, String(process.ppid));
  try {
    await openDatabase({ dataDir: state.dataDir!, logger });
    assert.unreachable('opened a folder locked by another process');
  } catch (err) {
    assert.match((err as Error).message, `in use by process ${process.ppid}`);
  } finally {
    await fs.rm(lock, { force: true });
  }
});

embedded('a lock left by a dead process is taken over', async (state) => {
  const dataDir = state.dataDir!;
  // Far above any pid_max: no live process has it.
  await fs.writeFile(path.join(dataDir, 'pglite.lock'), '2147483646');
  const db = await openDatabase({ dataDir, logger });
  state.open.push(db);
  const [row] = await db.sql<{ ok: number }[]>`select 1 as ok`;
  assert.is(row?.ok, 1);
  assert.is(await fs.readFile(path.join(dataDir, 'pglite.lock'), 'utf8'), String(process.pid));
  await db.close();
});

embedded(
  'an empty database starts from the template; one that holds a cluster ignores it',
  async () => {
    const { PGlite } = await import('@electric-sql/pglite');
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'constat-template-'));
    try {
      // A template with a mark of its own, to tell it from a cluster made by initdb.
      const source = await PGlite.create();
      await source.exec('create table made_from_template (x int)');
      const template = path.join(dir, 'template.tar');
      await fs.writeFile(
        template,
        Buffer.from(await (await source.dumpDataDir('none')).arrayBuffer()),
      );
      await source.close();
      const marked = async (db: Database) =>
        (await db.sql`select to_regclass('made_from_template') as t`)[0]!.t !== null;

      const memory = await openDatabase({ dataDir: MEMORY_DATA_DIR, template, logger });
      assert.ok(await marked(memory), 'in memory, loaded from the template');
      await memory.close();

      const dataDir = path.join(dir, 'data');
      const onDisk = await openDatabase({ dataDir, template, logger });
      assert.ok(await marked(onDisk), 'an empty folder, loaded from the template');
      await onDisk.sql`drop table made_from_template`;
      await onDisk.close();
      const reopened = await openDatabase({ dataDir, template, logger });
      assert.not.ok(await marked(reopened), 'a folder that holds a cluster keeps its own data');
      await reopened.close();

      const missing = await openDatabase({
        dataDir: MEMORY_DATA_DIR,
        template: path.join(dir, 'absent.tar'),
        logger,
      });
      const [row] = await missing.sql<{ ok: number }[]>`select 1 as ok`;
      assert.is(row?.ok, 1, 'an unreadable template: initdb, and the database works');
      await missing.close();

      // Not a dump: PGlite would fail on it with an error it also leaves unhandled.
      const junk = path.join(dir, 'junk.tar');
      await fs.writeFile(junk, Buffer.alloc(4096, 7));
      const notDump = await openDatabase({ dataDir: MEMORY_DATA_DIR, template: junk, logger });
      const [again] = await notDump.sql<{ ok: number }[]>`select 1 as ok`;
      assert.is(again?.ok, 1, 'a file that is not a dump: initdb, and the database works');
      await notDump.close();
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  },
);

embedded('a failed connection to a real server rejects and leaves nothing open', async () => {
  try {
    await openDatabase({
      databaseUrl: 'postgres://postgres@127.0.0.1:1/postgres',
      dataDir: os.tmpdir(),
      logger,
    });
    assert.unreachable('connected to port 1');
  } catch (err) {
    assert.match(String((err as Error).message), /ECONNREFUSED/);
  }
});

for (const test of [postgresSuite, pgliteSuite, memorySuite, embedded]) test.run();
