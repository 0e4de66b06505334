/**
 * The Kafka test broker: real Apache Kafka (version pinned in scripts/kafka/pom.xml), KRaft,
 * one node, run from jars that Maven fetches once into `.cache/kafka/lib`. No Docker needed.
 *
 * `startBroker()` formats a fresh storage folder, starts the broker on loopback ports and
 * resolves once it logs "Kafka Server started"; `stop()` ends it (SIGTERM, then SIGKILL).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { freePort } from '../free-port.js';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const POM = path.join(ROOT, 'scripts/kafka/pom.xml');
export const KAFKA_LIB = path.join(ROOT, '.cache/kafka/lib');

export interface Broker {
  brokers: string;
  port: number;
  dataDir: string;
  /** Stops the broker process; storage is kept (for a restart) unless `removeData`. */
  stop(opts?: { removeData?: boolean }): Promise<void>;
  /** Starts the same broker again on the same port and storage. */
  restart(): Promise<void>;
}

/** Fetches the broker's jars once (Maven Central); later calls find them in the cache. */
export function ensureKafkaJars(log: (line: string) => void = () => {}): void {
  if (existsSync(KAFKA_LIB) && readdirSync(KAFKA_LIB).some((f) => f.startsWith('kafka_2.13-')))
    return;
  log('fetching Apache Kafka from Maven Central into .cache/kafka (once)…');
  mkdirSync(KAFKA_LIB, { recursive: true });
  const result = spawnSync(
    'mvn',
    [
      '-q',
      '-B',
      '-f',
      POM,
      'dependency:copy-dependencies',
      `-DoutputDirectory=${KAFKA_LIB}`,
      '-DincludeScope=runtime',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' },
  );
  if (result.error)
    throw new Error(`could not run mvn (is Maven installed?): ${result.error.message}`);
  if (result.status !== 0)
    throw new Error(`mvn failed to fetch Kafka:\n${result.stdout}\n${result.stderr}`);
}

function java(args: string[]): ReturnType<typeof spawnSync> {
  return spawnSync('java', ['-cp', `${KAFKA_LIB}/*`, ...args], { encoding: 'utf8' });
}

export async function startBroker(
  opts: { port?: number; log?: (line: string) => void } = {},
): Promise<Broker> {
  ensureKafkaJars(opts.log);
  const port = opts.port ?? (await freePort());
  const controllerPort = await freePort();
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'constat-kafka-'));
  const config = path.join(dataDir, 'server.properties');
  writeFileSync(
    config,
    [
      'process.roles=broker,controller',
      'node.id=1',
      `controller.quorum.voters=1@127.0.0.1:${controllerPort}`,
      `listeners=PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort}`,
      `advertised.listeners=PLAINTEXT://127.0.0.1:${port}`,
      'controller.listener.names=CONTROLLER',
      'listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
      'inter.broker.listener.name=PLAINTEXT',
      `log.dirs=${path.join(dataDir, 'logs')}`,
      'num.partitions=1',
      // Single node: internal topics with one replica and one partition.
      'offsets.topic.replication.factor=1',
      'offsets.topic.num.partitions=1',
      'transaction.state.log.replication.factor=1',
      'transaction.state.log.min.isr=1',
      'transaction.state.log.num.partitions=1',
      'share.coordinator.state.topic.replication.factor=1',
      'share.coordinator.state.topic.min.isr=1',
      'group.initial.rebalance.delay.ms=0',
      // Topics are created up front by the server; a typo must not create one silently.
      'auto.create.topics.enable=false',
      '',
    ].join('\n'),
  );
  const uuid = String(java(['kafka.tools.StorageTool', 'random-uuid']).stdout)
    .trim()
    .split('\n')
    .at(-1)!;
  const format = java(['kafka.tools.StorageTool', 'format', '-t', uuid, '-c', config]);
  if (format.status !== 0)
    throw new Error(`kafka storage format failed:\n${String(format.stderr)}`);

  let child: ChildProcess | undefined;
  const launch = async () => {
    const proc = spawn(
      'java',
      ['-Xms128m', '-Xmx512m', '-cp', `${KAFKA_LIB}/*`, 'kafka.Kafka', config],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    child = proc;
    let output = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`kafka did not start within 90 s:\n${output.slice(-4000)}`)),
        90_000,
      );
      const onData = (d: Buffer) => {
        output += d.toString();
        if (output.length > 200_000) output = output.slice(-50_000);
        if (output.includes('Kafka Server started')) {
          clearTimeout(timer);
          resolve();
        }
      };
      proc.stdout!.on('data', onData);
      proc.stderr!.on('data', onData);
      proc.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`kafka exited with ${code}:\n${output.slice(-4000)}`));
      });
    });
    // Keep draining its output so the pipe never blocks the broker.
    proc.stdout!.resume();
    proc.stderr!.resume();
  };
  const stopProcess = async () => {
    const proc = child;
    child = undefined;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    proc.kill('SIGTERM');
    const killer = setTimeout(() => proc.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(killer);
  };
  await launch();
  return {
    brokers: `127.0.0.1:${port}`,
    port,
    dataDir,
    async stop({ removeData = true } = {}) {
      await stopProcess();
      if (removeData) await rm(dataDir, { recursive: true, force: true });
    },
    async restart() {
      await stopProcess();
      await launch();
    },
  };
}
