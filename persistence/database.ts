/**
 * The one place that opens a database connection.
 *
 * With a `databaseUrl` it connects postgres.js to a real PostgreSQL server. Without one it starts
 * an embedded PGlite (PostgreSQL compiled to WASM) and serves it over the Postgres wire protocol
 * on a loopback port, so the very same driver and SQL run against both. PGlite is a single
 * backend: the pool is pinned to one connection.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { PGlite } from '@electric-sql/pglite';
import type { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import postgres from 'postgres';
import type { Logger } from 'pino';

export type DatabaseKind = 'postgres' | 'pglite';

export interface Database {
  sql: postgres.Sql;
  kind: DatabaseKind;
  /** Idempotent; safe to call after a failed or partial start. */
  close(): Promise<void>;
}

export interface OpenDatabaseOptions {
  /** A `postgres://` URL. Absent: embedded PGlite under `dataDir`. */
  databaseUrl?: string;
  /** Folder for the embedded database (`<dataDir>/pglite`), or `memory://` for a throwaway one. */
  dataDir: string;
  logger: Logger;
  /**
   * A dump (tar) of a freshly initialised PGlite cluster: an embedded database created empty
   * is loaded from it rather than initialised (initdb costs seconds of CPU at every first start,
   * which test runs and simulations pay for each server). Unreadable: initdb, with a warning.
   */
  template?: string | undefined;
  /** Pool size for a real server (default 10). Ignored for PGlite, which takes one connection. */
  poolMax?: number;
  /** Called for every statement sent (metrics: statements per request stay bounded). */
  onStatement?: () => void;
}

/** Pass as `dataDir` for an in-memory PGlite that disappears on close (tests). */
export const MEMORY_DATA_DIR = 'memory://';

const DEFAULT_POOL_MAX = 10;
const END_TIMEOUT_SECONDS = 5;
const LOOPBACK = '127.0.0.1';

/** Data folders opened by this process, to refuse a second PGlite on the same files. */
const openDataDirs = new Set<string>();

export async function openDatabase(opts: OpenDatabaseOptions): Promise<Database> {
  return opts.databaseUrl ? openPostgres(opts, opts.databaseUrl) : openPglite(opts);
}

function noticeLogger(logger: Logger) {
  // postgres.js prints notices to the console by default; route them to the logger instead.
  return (notice: postgres.Notice) =>
    logger.debug({ code: notice.code, notice: notice.message }, 'postgres notice');
}

async function openPostgres(opts: OpenDatabaseOptions, url: string): Promise<Database> {
  const logger = opts.logger.child({ db: 'postgres' });
  const started = performance.now();
  const sql = postgres(url, {
    max: opts.poolMax ?? DEFAULT_POOL_MAX,
    onnotice: noticeLogger(logger),
    ...(opts.onStatement ? { debug: opts.onStatement } : {}),
  });
  const close = once(async () => {
    await sql.end({ timeout: END_TIMEOUT_SECONDS });
    logger.info('database closed');
  });
  try {
    // postgres.js connects lazily; fail at start-up, not on the first request.
    await sql`select 1`;
  } catch (err) {
    await close().catch((closeErr: unknown) => logger.error({ err: closeErr }, 'close failed'));
    throw err;
  }
  logger.info({ ms: Math.round(performance.now() - started) }, 'database ready');
  return { sql, kind: 'postgres', close };
}

async function openPglite(opts: OpenDatabaseOptions): Promise<Database> {
  const inMemory = opts.dataDir === MEMORY_DATA_DIR;
  const pgDataDir = inMemory ? MEMORY_DATA_DIR : path.resolve(opts.dataDir, 'pglite');
  const logger = opts.logger.child({ db: 'pglite', dataDir: pgDataDir });
  const started = performance.now();

  let unlock: (() => Promise<void>) | undefined;
  let pglite: PGlite | undefined;
  let server: PGLiteSocketServer | undefined;
  let sql: postgres.Sql | undefined;
  let port: number | undefined;

  // Each step runs even if an earlier one failed, so nothing is left listening or locked.
  const close = once(async () => {
    const errors: unknown[] = [];
    const step = async (name: string, fn: () => Promise<void>) => {
      try {
        await fn();
      } catch (err) {
        logger.error({ err, step: name }, 'close step failed');
        errors.push(err);
      }
    };
    const [client, socketServer, db] = [sql, server, pglite];
    if (client) await step('sql', () => client.end({ timeout: END_TIMEOUT_SECONDS }));
    if (socketServer) await step('socket server', () => socketServer.stop());
    if (db && !db.closed) await step('pglite', () => db.close());
    if (unlock) await step('lock', unlock);
    if (errors.length > 0) throw new AggregateError(errors, 'closing PGlite failed');
    logger.info('database closed');
  });

  try {
    if (!inMemory) {
      await fs.mkdir(pgDataDir, { recursive: true });
      unlock = await lockDataDir(pgDataDir);
    }
    // Loaded only when embedded: a server on PostgreSQL never needs the WASM build.
    const [{ PGlite }, { PGLiteSocketServer }] = await Promise.all([
      import('@electric-sql/pglite'),
      import('@electric-sql/pglite-socket'),
    ]);
    // First start on an empty folder runs initdb (seconds) unless a template is given; later
    // starts reuse the files.
    const template =
      opts.template && (inMemory || !(await exists(path.join(pgDataDir, 'PG_VERSION'))))
        ? await readTemplate(opts.template, logger)
        : undefined;
    pglite = await PGlite.create(pgDataDir, template ? { loadDataDir: template } : {}).catch(
      (err: unknown) => {
        if (!template) throw err;
        throw new Error(
          `PGlite could not start from the template ${opts.template} (made by another PGlite ` +
            `version?): remake it or unset PGLITE_TEMPLATE: ${(err as Error).message}`,
          { cause: err },
        );
      },
    );

    // Port 0: the OS picks a free port; the server reports it in its `listening` event.
    server = new PGLiteSocketServer({ db: pglite, host: LOOPBACK, port: 0, maxConnections: 1 });
    server.addEventListener('listening', (event) => {
      port = (event as CustomEvent<{ port?: number }>).detail.port;
    });
    await server.start();
    if (!port) throw new Error(`PGlite socket server did not report its port`);

    sql = postgres({
      host: LOOPBACK,
      port,
      user: 'postgres',
      database: 'postgres',
      // PGlite is one backend and the socket server admits one client.
      max: 1,
      // Never recycle that connection: a reconnect can reach the server before it has let go of
      // the old socket and be refused as a second client.
      max_lifetime: null,
      idle_timeout: 0,
      onnotice: noticeLogger(logger),
      ...(opts.onStatement ? { debug: opts.onStatement } : {}),
    });
    await sql`select 1`;
  } catch (err) {
    await close().catch(() => {
      // Already logged step by step; the start-up error is the one to report.
    });
    throw err;
  }
  logger.info({ port, ms: Math.round(performance.now() - started) }, 'database ready');
  return { sql, kind: 'pglite', close };
}

/**
 * PGlite has no postmaster.pid: two processes on one data folder would corrupt it. A lock file
 * holding our pid refuses a second opener; a lock left by a dead process is taken over.
 */
async function lockDataDir(dir: string): Promise<() => Promise<void>> {
  if (openDataDirs.has(dir)) throw new Error(`PGlite data directory ${dir} is already open`);
  const file = `${dir}.lock`;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await fs.writeFile(file, String(process.pid), { flag: 'wx' });
      openDataDirs.add(dir);
      return async () => {
        openDataDirs.delete(dir);
        await fs.rm(file, { force: true });
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = Number.parseInt(await fs.readFile(file, 'utf8').catch(() => ''), 10);
      // Our own pid here is a leftover from an earlier life (e.g. pid 1 in a container), since
      // this process would have it in `openDataDirs` otherwise.
      if (holder > 0 && holder !== process.pid && isAlive(holder)) {
        throw new Error(
          `PGlite data directory ${dir} is in use by process ${holder} (lock file ${file})`,
        );
      }
      await fs.rm(file, { force: true });
    }
  }
  throw new Error(`could not lock PGlite data directory ${dir} (lock file ${file})`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function once(fn: () => Promise<void>): () => Promise<void> {
  let pending: Promise<void> | undefined;
  return () => (pending ??= fn());
}

async function exists(file: string): Promise<boolean> {
  return fs.access(file).then(
    () => true,
    () => false,
  );
}

/**
 * The template as PGlite loads it, or undefined (with a warning) when it cannot be read or is
 * not a dump: PGlite fails on another file with an error it also leaves unhandled, which would
 * end the process.
 */
async function readTemplate(file: string, logger: Logger): Promise<Blob | undefined> {
  let bytes: Buffer<ArrayBuffer>;
  try {
    bytes = await fs.readFile(file);
  } catch (err) {
    logger.warn({ err, template: file }, 'PGlite template unreadable; initialising the database');
    return undefined;
  }
  const tar = bytes.toString('latin1', 257, 262) === 'ustar';
  const gzip = bytes[0] === 0x1f && bytes[1] === 0x8b;
  if (!tar && !gzip) {
    logger.warn({ template: file }, 'PGlite template is not a dump; initialising the database');
    return undefined;
  }
  return new Blob([bytes]);
}

/** Writes a dump of a new, empty PGlite cluster to `file` (the test runner keeps one). */
export async function writePgliteTemplate(file: string): Promise<void> {
  const { PGlite } = await import('@electric-sql/pglite');
  const pglite = await PGlite.create();
  try {
    const dump = await pglite.dumpDataDir('none');
    // Written aside, then renamed: processes starting meanwhile never read half a file.
    const partial = `${file}.${process.pid}.partial`;
    await fs.mkdir(path.dirname(file), { recursive: true });
    await fs.writeFile(partial, Buffer.from(await dump.arrayBuffer()));
    await fs.rename(partial, file);
  } finally {
    await pglite.close();
  }
}
