/**
 * The servers the benchmarks compare, each run as its own process(es) on 127.0.0.1:
 * - `ours-redis`: this server, two instances sharing PostgreSQL and Redis (A on one, B on the
 *   other, so every update crosses Redis);
 * - `ours-embedded`: this server, one instance on the in-process hub (PostgreSQL for storage,
 *   so only the hub differs);
 * - `reference`: `@y/websocket-server`, in memory;
 * - `hocuspocus-redis`: Hocuspocus with its Redis extension, two instances (A on one, B on
 *   the other).
 * A "session" is one of our sessions, or for a peer a room with two clients.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { createTestDatabase, type TestDatabase } from '../../persistence/test-database.js';
import { deleteRedisKeys } from '../delete-redis-keys.js';
import { redisUrl } from '../local-services.js';
import { openAndJoin } from '../../client/graphql.js';
import { spawnServer, type ServerProcess } from '../sim/server.js';
import { LightClient, type Wire } from './light-client.js';
import { inspectorUrl } from './inspector.js';
import {
  PROBE_NODE_ARGS,
  probePort,
  readCpus,
  readHeaps,
  readLoops,
  type CpuReading,
  type LoopReading,
} from './probe.js';

export type TargetId = 'ours-redis' | 'ours-embedded' | 'reference' | 'hocuspocus-redis';

export const TARGETS: readonly TargetId[] = [
  'ours-redis',
  'ours-embedded',
  'reference',
  'hocuspocus-redis',
];

export const TARGET_LABELS: Record<TargetId, string> = {
  'ours-redis': 'constat, 2 instances via Redis',
  'ours-embedded': 'constat, 1 instance, in-process hub',
  reference: '@y/websocket-server (reference)',
  'hocuspocus-redis': 'Hocuspocus + Redis, 2 instances',
};

export const BENCH_SECRET = 'constat-bench-secret-0123456789abcdef';
export const REDIS_URL = redisUrl();

export interface BenchSession {
  room: string;
  urlA: string;
  urlB: string;
  /** Ours: what signing needs (GraphQL URLs and tokens of A and B). */
  parties?: { httpA: string; httpB: string; tokenA: string; tokenB: string };
}

export interface Target {
  id: TargetId;
  label: string;
  wire: Wire;
  instances: ServerProcess[];
  /** Whether the setup relays through Redis (its CPU is then reported too). */
  usesRedis: boolean;
  /** Our server's HTTP URLs (GraphQL); empty for peers. */
  httpUrls: string[];
  databaseUrl?: string;
  /** A new session: our open + join through GraphQL, or a fresh room for a peer. */
  newSession(tag: string): Promise<BenchSession>;
  /** Resident set size of each instance, in KiB. */
  rssKiB(): number[];
  /** CPU time (user + system) each instance used so far, in seconds. */
  cpuSeconds(): number[];
  /** Inspector websocket URL of each instance started with `inspect`. */
  inspectorUrls(): string[];
  /** Each instance's event-loop delay and GC pauses since the previous call (loop-probe.mjs). */
  loop(): Promise<LoopReading[]>;
  /** Each instance's used V8 heap in bytes after a full collection. */
  heapBytes(): Promise<number[]>;
  /** Each instance's CPU time so far (µs, whole process and main thread), read from inside. */
  cpuMicros(): Promise<CpuReading[]>;
  /** Each instance's probe port (loop-probe.mjs); a restarted instance has a new one. */
  probePorts: number[];
  /** The Redis key prefix of our instances (setups on Redis). */
  redisPrefix?: string;
  /**
   * Ours: stops instance `i` with SIGTERM and starts it again with the same environment on
   * the same port (the other instances serve on meanwhile).
   */
  restart?(i: number): Promise<void>;
  stop(): Promise<void>;
}

/** The probe's port in one process (its line comes first but is not ordered with the rest). */
async function probeOf(instance: ServerProcess): Promise<number> {
  const deadline = Date.now() + 10_000;
  let port = probePort(instance.output());
  while (port === undefined && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    port = probePort(instance.output());
  }
  if (port === undefined)
    throw new Error(`no bench probe in process ${instance.pid}:\n${instance.output()}`);
  return port;
}

/** What every setup reads the same way through the probe preloaded in its processes. */
async function probed(
  instances: ServerProcess[],
): Promise<Pick<Target, 'loop' | 'heapBytes' | 'cpuMicros' | 'probePorts'>> {
  const ports: number[] = [];
  for (const i of instances) ports.push(await probeOf(i));
  return {
    loop: () => readLoops(ports),
    heapBytes: () => readHeaps(ports),
    cpuMicros: () => readCpus(ports),
    probePorts: ports,
  };
}

export interface TargetOptions {
  /** Brokers for our server's outbox relay (finalizations reach Kafka). */
  kafkaBrokers?: string;
  /** Run our instances with the V8 inspector on 127.0.0.1, to profile phases (inspector.ts). */
  inspect?: boolean;
  env?: Record<string, string>;
}

/** User + system CPU seconds of a process so far (clock ticks of 10 ms on Linux). */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return NaN;
  }
}

/** CPU seconds (user + system) the Redis server has used, from INFO cpu. */
export async function redisCpuSeconds(): Promise<number> {
  const redis = new Redis(REDIS_URL);
  try {
    const info = await redis.info('cpu');
    const field = (name: string) => Number(new RegExp(`^${name}:([0-9.]+)`, 'm').exec(info)?.[1]);
    return field('used_cpu_user') + field('used_cpu_sys');
  } catch {
    return NaN;
  } finally {
    redis.disconnect();
  }
}

/** Busy and total jiffies of the whole machine (all cores), from /proc/stat. */
export function machineTicks(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  const total = v.reduce((s, x) => s + x, 0);
  return { busy: total - idle, total };
}

/** The sum of a Prometheus counter over our instances (`/metrics`), NaN when unavailable. */
export async function metricSum(target: Target, name: string): Promise<number> {
  let sum = 0;
  for (const url of target.httpUrls) {
    try {
      const text = await (await fetch(`${url}/metrics`)).text();
      const match = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)$`, 'm').exec(text);
      if (!match) return NaN;
      sum += Number(match[1]);
    } catch {
      return NaN;
    }
  }
  return sum;
}

export function rssKiB(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    return match ? Number(match[1]) : NaN;
  } catch {
    return NaN;
  }
}

export async function startTarget(id: TargetId, opts: TargetOptions = {}): Promise<Target> {
  const instances: ServerProcess[] = [];
  const cleanups: Array<() => Promise<void>> = [];
  const stop = async () => {
    await Promise.all(instances.map((i) => i.stop()));
    for (const c of cleanups.reverse()) await c().catch(() => {});
  };
  try {
    const tag = randomBytes(4).toString('hex');
    if (id === 'ours-redis' || id === 'ours-embedded') {
      const db: TestDatabase = await createTestDatabase();
      cleanups.push(() => db.drop());
      const dataDir = await mkdtemp(path.join(os.tmpdir(), 'constat-bench-'));
      cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
      const prefix = `constat-bench:${tag}:`;
      if (id === 'ours-redis') cleanups.push(() => deleteRedisKeys(REDIS_URL, prefix));
      const env: Record<string, string> = {
        DATABASE_URL: db.url,
        DATA_DIR: dataDir,
        AUTH_JWT_SECRET: BENCH_SECRET,
        LOG_LEVEL: 'error',
        ...(id === 'ours-redis' ? { REDIS_URL, REDIS_KEY_PREFIX: prefix } : { REDIS_URL: '' }),
        ...(opts.kafkaBrokers
          ? {
              KAFKA_BROKERS: opts.kafkaBrokers,
              KAFKA_CONSUMER_GROUP: `constat-bench-${tag}`,
              OUTBOX_POLL_MS: '50',
            }
          : { KAFKA_BROKERS: '' }),
        ...opts.env,
      };
      const nodeArgs = [
        ...PROBE_NODE_ARGS,
        ...(opts.inspect ? ['--inspect=127.0.0.1:0'] : []),
        ...(process.env.BENCH_SERVER_NODE_ARGS?.split(' ').filter(Boolean) ?? []),
      ];
      const count = id === 'ours-redis' ? 2 : 1;
      // One after the other: the first applies the migrations.
      for (let i = 0; i < count; i++) {
        instances.push(
          await spawnServer({ env, args: [...nodeArgs, 'bin/constat.js', 'serve'], name: id }),
        );
      }
      const urls = instances.map((i) => i.url);
      const probes = await probed(instances);
      return {
        id,
        label: TARGET_LABELS[id],
        wire: 'y-websocket',
        instances,
        usesRedis: id === 'ours-redis',
        httpUrls: urls,
        databaseUrl: db.url,
        async newSession(sessionTag) {
          const pair = await openAndJoin(
            { a: urls[0]!, b: urls[urls.length - 1]! },
            BENCH_SECRET,
            `${tag}-${sessionTag}`,
          );
          return {
            room: pair.sessionId,
            urlA: `${pair.syncBaseA}/${pair.sessionId}?token=${pair.tokenA}`,
            urlB: `${pair.syncBaseB}/${pair.sessionId}?token=${pair.tokenB}`,
            parties: {
              httpA: urls[0]!,
              httpB: urls[urls.length - 1]!,
              tokenA: pair.tokenA,
              tokenB: pair.tokenB,
            },
          };
        },
        rssKiB: () => instances.map((i) => rssKiB(i.pid)),
        cpuSeconds: () => instances.map((i) => cpuSeconds(i.pid)),
        inspectorUrls: () => instances.flatMap((i) => inspectorUrl(i.output()) ?? []),
        ...probes,
        ...(id === 'ours-redis' ? { redisPrefix: prefix } : {}),
        async restart(i) {
          const old = instances[i]!;
          await old.stop();
          const port = new URL(old.url).port;
          instances[i] = await spawnServer({
            env: { ...env, PORT: port },
            args: [...nodeArgs, 'bin/constat.js', 'serve'],
            name: id,
          });
          probes.probePorts[i] = await probeOf(instances[i]!);
        },
        stop,
      };
    }
    if (id === 'reference') {
      instances.push(
        await spawnServer({
          env: {},
          args: [...PROBE_NODE_ARGS, '--import', 'tsx', 'scripts/bench/peers/reference-server.ts'],
          ready: 'listening on',
          name: id,
        }),
      );
    } else {
      const prefix = `hocuspocus-bench-${tag}`;
      cleanups.push(() => deleteRedisKeys(REDIS_URL, prefix));
      for (let i = 0; i < 2; i++) {
        instances.push(
          await spawnServer({
            env: { REDIS_URL, REDIS_PREFIX: prefix },
            args: [
              ...PROBE_NODE_ARGS,
              '--import',
              'tsx',
              'scripts/bench/peers/hocuspocus-server.ts',
            ],
            ready: 'listening on',
            name: id,
          }),
        );
      }
    }
    const ws = instances.map((i) => i.url.replace(/^http/, 'ws'));
    const wire: Wire = id === 'reference' ? 'y-websocket' : 'hocuspocus';
    if (wire === 'hocuspocus') {
      // The first document a fresh Hocuspocus instance loads is not subscribed in Redis (the
      // extension's first SUBSCRIBE is lost while its connection comes up), so its changes
      // never reach the other instance. A running instance is past that: warm each one up.
      for (const [i, base] of ws.entries()) {
        const warm = new LightClient({ url: base, room: `warmup-${tag}-${i}`, wire });
        await warm.whenSynced(10_000);
        await new Promise((r) => setTimeout(r, 300));
        warm.close();
      }
    }
    return {
      id,
      label: TARGET_LABELS[id],
      wire,
      instances,
      usesRedis: wire === 'hocuspocus',
      httpUrls: [],
      async newSession(sessionTag) {
        const room = `bench-${tag}-${sessionTag}`;
        const url = (base: string) => (wire === 'hocuspocus' ? base : `${base}/${room}`);
        return { room, urlA: url(ws[0]!), urlB: url(ws[ws.length - 1]!) };
      },
      rssKiB: () => instances.map((i) => rssKiB(i.pid)),
      cpuSeconds: () => instances.map((i) => cpuSeconds(i.pid)),
      inspectorUrls: () => [],
      ...(await probed(instances)),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
