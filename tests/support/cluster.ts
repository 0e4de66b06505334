/**
 * Several real `constat serve` processes of one deployment, as behind a load balancer: one
 * fresh PostgreSQL database, one Redis keyspace of their own (a prefix, never the whole
 * Redis: other runs share it), one data folder. `stop` kills what is left and removes all
 * three. The suites that kill, restart or race instances (multi-instance, restart,
 * finalization race and outage) start their processes through it.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createTestDatabase, type TestDatabase } from '../../persistence/test-database.js';
import { deleteRedisKeys, REDIS_URL, spawnServer, type ServerProcess } from './server.js';

export interface Cluster {
  /** The shared database (created on first use when the cluster was started without one). */
  db: TestDatabase | undefined;
  dataDir: string;
  /** The Redis key prefix every instance of the cluster uses. */
  prefix: string;
  /** Every instance started and not yet stopped, in order. */
  servers: ServerProcess[];
  /** The environment the instances share, with `extra` on top. */
  env(extra?: Record<string, string>): Record<string, string>;
  /** Starts `n` instances at once (recorded in `servers`). */
  start(n: number, extra?: Record<string, string>): Promise<ServerProcess[]>;
  /** Kills every instance (SIGKILL unless told otherwise) and forgets them. */
  killAll(signal?: NodeJS.Signals): Promise<void>;
  /** Deletes the cluster's Redis keys: what a Redis that lost its data looks like. */
  flushRedis(): Promise<void>;
  /** Kills every instance and removes the database, the data folder and the Redis keys. */
  stop(): Promise<void>;
}

export async function startCluster(
  name: string,
  opts: { database?: boolean; env?: Record<string, string> } = {},
): Promise<Cluster> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), `constat-${name}-`));
  const prefix = `constat-test:${name}-${randomBytes(6).toString('hex')}:`;
  const cluster: Cluster = {
    db: undefined,
    dataDir,
    prefix,
    servers: [],
    env: (extra = {}) => ({
      ...(cluster.db ? { DATABASE_URL: cluster.db.url } : {}),
      REDIS_URL,
      REDIS_KEY_PREFIX: prefix,
      DATA_DIR: dataDir,
      LOG_LEVEL: 'warn',
      ...opts.env,
      ...extra,
    }),
    async start(n, extra = {}) {
      const started = await Promise.all(
        Array.from({ length: n }, () => spawnServer(cluster.env(extra))),
      );
      cluster.servers.push(...started);
      return started;
    },
    async killAll(signal = 'SIGKILL') {
      await Promise.all(cluster.servers.splice(0).map((s) => s.kill(signal)));
    },
    flushRedis: () => deleteRedisKeys(prefix),
    async stop() {
      await cluster.killAll();
      await cluster.db?.drop();
      await rm(dataDir, { recursive: true, force: true });
      await deleteRedisKeys(prefix);
    },
  };
  if (opts.database !== false) {
    try {
      cluster.db = await createTestDatabase();
    } catch (err) {
      await rm(dataDir, { recursive: true, force: true });
      throw err;
    }
  }
  return cluster;
}
