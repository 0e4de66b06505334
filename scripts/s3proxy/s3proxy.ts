/**
 * The S3 test server: S3Proxy (org.gaul:s3proxy, Apache-2.0) on its filesystem backend, a real
 * S3 API on a loopback port for the media tests. Its jar-with-dependencies is fetched once from
 * Maven Central into `.cache/s3proxy`; `startS3Proxy()` resolves once the port answers.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { freePort } from '../free-port.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const S3PROXY_VERSION = '4.1.0';
const CACHE = path.join(ROOT, '.cache/s3proxy');
const JAR = path.join(CACHE, `s3proxy-${S3PROXY_VERSION}-jar-with-dependencies.jar`);

export interface S3Proxy {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
  stop(): Promise<void>;
}

/** Fetches the jar once (Maven Central); later calls find it in the cache. */
export function ensureS3ProxyJar(log: (line: string) => void = () => {}): string {
  if (existsSync(JAR)) return JAR;
  log(`fetching S3Proxy ${S3PROXY_VERSION} from Maven Central into .cache/s3proxy (once)…`);
  mkdirSync(CACHE, { recursive: true });
  const result = spawnSync(
    'mvn',
    [
      '-q',
      '-B',
      'dependency:copy',
      `-Dartifact=org.gaul:s3proxy:${S3PROXY_VERSION}:jar:jar-with-dependencies`,
      `-DoutputDirectory=${CACHE}`,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' },
  );
  if (result.error)
    throw new Error(`could not run mvn (is Maven installed?): ${result.error.message}`);
  if (result.status !== 0 || !existsSync(JAR)) {
    throw new Error(`mvn failed to fetch S3Proxy:\n${result.stdout}\n${result.stderr}`);
  }
  return JAR;
}

export async function startS3Proxy(opts: { log?: (line: string) => void } = {}): Promise<S3Proxy> {
  const jar = ensureS3ProxyJar(opts.log);
  const port = await freePort();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'constat-s3proxy-'));
  const accessKeyId = `test-${randomBytes(4).toString('hex')}`;
  const secretAccessKey = randomBytes(20).toString('hex');
  const properties = path.join(dir, 's3proxy.conf');
  mkdirSync(path.join(dir, 'blobs'));
  writeFileSync(
    properties,
    [
      `s3proxy.endpoint=http://127.0.0.1:${port}`,
      's3proxy.authorization=aws-v2-or-v4',
      `s3proxy.identity=${accessKeyId}`,
      `s3proxy.credential=${secretAccessKey}`,
      'jclouds.provider=filesystem-nio2',
      `jclouds.filesystem.basedir=${path.join(dir, 'blobs')}`,
      '',
    ].join('\n'),
  );
  const child: ChildProcess = spawn(
    'java',
    ['-Xms64m', '-Xmx256m', '-jar', jar, '--properties', properties],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  const collect = (d: Buffer) => {
    output = (output + d.toString()).slice(-20_000);
  };
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(killer);
    }
    await rm(dir, { recursive: true, force: true });
  };
  const endpoint = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) {
      await stop();
      throw new Error(`s3proxy exited with ${child.exitCode}:\n${output}`);
    }
    // Any HTTP answer (403 without credentials) means the server is listening.
    const answered = await fetch(endpoint, { signal: AbortSignal.timeout(1_000) }).then(
      () => true,
      () => false,
    );
    if (answered) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`s3proxy did not answer within 60 s:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return { endpoint, accessKeyId, secretAccessKey, region: 'us-east-1', stop };
}

export interface S3Account {
  endpoint: string;
  region: string;
  accessKeyId: string | undefined;
  secretAccessKey: string | undefined;
}

/** The S3 server named by the environment (S3_ENDPOINT and credentials), if any. */
export function s3AccountFromEnv(env: NodeJS.ProcessEnv = process.env): S3Account | undefined {
  if (!env.S3_ENDPOINT) return undefined;
  return {
    endpoint: env.S3_ENDPOINT,
    region: env.S3_REGION || 'us-east-1',
    accessKeyId: env.S3_ACCESS_KEY_ID || undefined,
    secretAccessKey: env.S3_SECRET_ACCESS_KEY || undefined,
  };
}

/**
 * Creates a bucket of its own (tests and benchmarks never share objects) and returns the
 * server environment for `MEDIA_STORE=s3` on it; `endpoint` overrides where the server sends
 * its requests (a relay in front of the store, say).
 */
export async function createTestBucket(
  account: S3Account,
  endpoint: string = account.endpoint,
): Promise<Record<string, string>> {
  const bucket = `constat-test-${randomBytes(6).toString('hex')}`;
  const client = new S3Client({
    endpoint: account.endpoint,
    region: account.region,
    forcePathStyle: true,
    ...(account.accessKeyId && account.secretAccessKey
      ? {
          credentials: {
            accessKeyId: account.accessKeyId,
            secretAccessKey: account.secretAccessKey,
          },
        }
      : {}),
  });
  try {
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
  } finally {
    client.destroy();
  }
  return {
    MEDIA_STORE: 's3',
    S3_ENDPOINT: endpoint,
    S3_BUCKET: bucket,
    S3_REGION: account.region,
    S3_ACCESS_KEY_ID: account.accessKeyId ?? '',
    S3_SECRET_ACCESS_KEY: account.secretAccessKey ?? '',
    S3_FORCE_PATH_STYLE: 'true',
  };
}
