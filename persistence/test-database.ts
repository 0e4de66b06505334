/**
 * Tests only: a fresh, empty database on the real PostgreSQL server per test suite, so suites
 * never see each other's rows and can run side by side. Call `drop()` in `after`.
 */
import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import pino from 'pino';
import type { Logger } from 'pino';

export const DEFAULT_TEST_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/postgres';

export interface TestDatabase {
  /** URL of the new database; open further clients with it. */
  url: string;
  name: string;
  /** A client of the new database (pool of 5). */
  sql: postgres.Sql;
  /** Ends `sql`, then drops the database, terminating any connection still open. Idempotent. */
  drop(): Promise<void>;
}

export async function createTestDatabase(
  logger: Logger = pino({ level: 'silent' }),
): Promise<TestDatabase> {
  const serverUrl = process.env.DATABASE_URL || DEFAULT_TEST_DATABASE_URL;
  const onnotice = (notice: postgres.Notice) =>
    logger.debug({ code: notice.code, notice: notice.message }, 'postgres notice');
  const admin = postgres(serverUrl, { max: 1, connect_timeout: 5, onnotice });
  try {
    await admin`select 1`;
  } catch (err) {
    await admin.end({ timeout: 1 }).catch(() => {});
    throw new Error(
      `PostgreSQL is not reachable at ${redact(serverUrl)} (set DATABASE_URL): ${errorMessage(err)}`,
      { cause: err },
    );
  }

  const name = `constat_test_${randomBytes(6).toString('hex')}`;
  let sql: postgres.Sql | undefined;
  let dropping: Promise<void> | undefined;
  const drop = () =>
    (dropping ??= (async () => {
      try {
        await sql?.end({ timeout: 5 });
        // FORCE (PostgreSQL 13+) terminates clients a failed test left behind.
        await admin`drop database if exists ${admin(name)} with (force)`;
      } finally {
        await admin.end({ timeout: 5 });
      }
    })());

  try {
    await admin`create database ${admin(name)}`;
    const url = new URL(serverUrl);
    url.pathname = `/${name}`;
    sql = postgres(url.toString(), { max: 5, onnotice });
    await sql`select 1`;
    logger.debug({ name }, 'test database created');
    return { url: url.toString(), name, sql, drop };
  } catch (err) {
    await drop().catch(() => {});
    throw err;
  }
}

function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(unparsable DATABASE_URL)';
  }
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
