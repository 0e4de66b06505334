/**
 * Versioned schema migrations: `migrations/NNNN_name.sql`, applied in file-name order, each in
 * its own transaction together with its `schema_migrations` row, so a file is either applied and
 * recorded or not at all.
 *
 * Concurrency: every transaction here first takes a transaction-scoped advisory lock on one fixed
 * key and only then checks `schema_migrations`. Two processes starting together therefore take
 * turns file by file, and the second one finds each file already recorded instead of failing on
 * "relation already exists". A "check, then apply" without the lock would race. The lock is
 * transaction-scoped so it is released on commit, rollback or a dropped connection alike. PGlite
 * supports advisory locks; it has one connection anyway, on which postgres.js runs transactions
 * one after another.
 */
import fs from 'node:fs/promises';
import type postgres from 'postgres';
import type { Logger } from 'pino';

export interface Migration {
  /** The file name without `.sql`, e.g. `0001_init`; the key in `schema_migrations`. */
  version: string;
  file: URL;
}

const MIGRATIONS_DIR = new URL('./migrations/', import.meta.url);
const FILE_PATTERN = /^(\d{4})_[a-z0-9_]+\.sql$/;

/**
 * Arbitrary but fixed: every migration runner against one database must use the same key, and
 * nothing else in this database may use it for another advisory lock.
 */
export const MIGRATION_LOCK_KEY = 7_267_001;

/** The migration files shipped with this code, in the order they apply. */
export async function listMigrations(dir: URL = MIGRATIONS_DIR): Promise<Migration[]> {
  const names = (await fs.readdir(dir)).filter((name) => name.endsWith('.sql')).sort();
  const seen = new Map<string, string>();
  return names.map((name) => {
    const number = FILE_PATTERN.exec(name)?.[1];
    if (!number) throw new Error(`migration file ${name} does not match NNNN_name.sql`);
    const clash = seen.get(number);
    if (clash) throw new Error(`migrations ${clash} and ${name} share the number ${number}`);
    seen.set(number, name);
    return { version: name.slice(0, -'.sql'.length), file: new URL(name, dir) };
  });
}

/**
 * Another schema's migrations in the same database or its own (the AI service keeps its own):
 * its folder, and the qualified name of its bookkeeping table (`ai.schema_migrations`), whose
 * schema is created when missing.
 */
export interface MigrationSet {
  dir: URL;
  table: string;
}

const CORE_SET: MigrationSet = { dir: MIGRATIONS_DIR, table: 'schema_migrations' };

export async function migrate(
  sql: postgres.Sql,
  logger: Logger,
  set: MigrationSet = CORE_SET,
): Promise<{ applied: string[] }> {
  const migrations = await listMigrations(set.dir);
  const table = sql(set.table);
  const schema = set.table.includes('.') ? set.table.split('.')[0] : undefined;

  await sql.begin(async (tx) => {
    await lock(tx);
    // Checked first rather than `create table if not exists`, which raises a notice every run.
    const [row] = await tx<{ exists: boolean }[]>`
      select to_regclass(${set.table}) is not null as exists
    `;
    if (!row?.exists) {
      if (schema) {
        const [found] = await tx`select 1 from pg_namespace where nspname = ${schema}`;
        if (!found) await tx`create schema ${tx(schema)}`;
      }
      await tx`
        create table ${table} (
          version text primary key,
          applied_at timestamptz not null default now()
        )
      `;
    }
  });

  const done = new Set(
    (await sql<{ version: string }[]>`select version from ${table}`).map((r) => r.version),
  );
  const known = new Set(migrations.map((m) => m.version));
  const unknown = [...done].filter((version) => !known.has(version));
  if (unknown.length > 0) {
    logger.warn({ unknown }, 'database has migrations this code does not ship (newer release?)');
  }

  const applied: string[] = [];
  for (const migration of migrations) {
    // Recorded rows are never removed, so skipping them without the lock is safe.
    if (done.has(migration.version)) continue;
    // Trusted: a file shipped with this code, not user input.
    const text = await fs.readFile(migration.file, 'utf8');
    const started = performance.now();
    const ran = await sql.begin(async (tx) => {
      await lock(tx);
      // Re-check under the lock: another process may have applied it since the read above.
      const recorded = await tx`
        select 1 from ${table} where version = ${migration.version}
      `;
      if (recorded.length > 0) return false;
      await tx.unsafe(text);
      await tx`
        insert into ${table} (version, applied_at) values (${migration.version}, now())
      `;
      return true;
    });
    if (ran) {
      applied.push(migration.version);
      logger.info(
        { version: migration.version, ms: Math.round(performance.now() - started) },
        'migration applied',
      );
    }
  }
  logger.info({ applied, total: migrations.length }, 'schema up to date');
  return { applied };
}

async function lock(tx: postgres.TransactionSql): Promise<void> {
  await tx`select pg_advisory_xact_lock(${MIGRATION_LOCK_KEY}::bigint)`;
}
