/**
 * The configuration loader: defaults, and one clear error naming the variable for each
 * invalid setting — in process, and from the real `constat serve` command.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, DEVELOPMENT_JWT_SECRET, loadConfig } from '../server/config.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function configError(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (err) {
    assert.instance(err, ConfigError, `${JSON.stringify(env)} threw ${String(err)}`);
    return err as ConfigError;
  }
  assert.unreachable(`${JSON.stringify(env)} was accepted`);
  throw new Error('unreachable');
}

test('defaults: embedded storage, development secret (asked for), documented limits', () => {
  const config = loadConfig({ CONSTAT_DEV: '1' });
  assert.is(config.port, 8080);
  assert.is(config.host, '127.0.0.1', 'development mode listens on loopback');
  assert.is(config.devMode, true);
  assert.equal(config.aiServices, [
    'constat-ai-fraud',
    'constat-ai-cost',
    'constat-ai-ocr',
    'constat-ai-video',
  ]);
  assert.equal(config.metrics, { port: undefined, token: undefined });
  assert.equal(config.tokens, {
    issuer: undefined,
    audience: undefined,
    maxTokenAgeMs: 24 * 3600_000,
  });
  assert.is(config.databaseUrl, undefined);
  assert.is(config.redisUrl, undefined);
  assert.is(config.kafkaBrokers, undefined);
  assert.is(config.publicUrl, undefined);
  assert.is(config.logLevel, 'info');
  assert.is(config.dataDir, path.resolve('.data'));
  assert.equal(config.auth, {
    kind: 'hs256',
    secret: DEVELOPMENT_JWT_SECRET,
    isDevelopmentSecret: true,
  });
  assert.equal(config.sessions, {
    ttlMs: 24 * 3600_000,
    joinCodeTtlMs: 10 * 60_000,
    joinFailuresPerUser: 10,
    joinFailuresGlobal: 300,
    joinThrottleWindowMs: 10 * 60_000,
    expirySweepMs: 60_000,
    maxWaitingPerUser: 3,
  });
  assert.is(config.limits.maxSocketsPerDevice, 4);
  assert.is(config.limits.maxFrameBytes, 1024 * 1024);
  assert.is(config.limits.maxDocumentBytes, 2 * 1024 * 1024);
  assert.is(config.limits.idleTimeoutMs, 60_000);
  // Empty values count as unset (a blank line in an env file must not break start-up).
  assert.equal(
    loadConfig({
      CONSTAT_DEV: '1',
      PORT: '',
      DATABASE_URL: '',
      REDIS_URL: '',
      KAFKA_BROKERS: ' ',
      HOST: '',
    }),
    {
      ...config,
    },
  );
});

test('valid settings are read', () => {
  const config = loadConfig({
    PORT: '3000',
    HOST: '127.0.0.1',
    DATABASE_URL: 'postgresql://u:p@db:5432/constat',
    REDIS_URL: 'rediss://cache:6380',
    KAFKA_BROKERS: 'k1:9092, k2:9093',
    LOG_LEVEL: 'debug',
    AUTH_JWT_SECRET: 'x'.repeat(32),
    DATA_DIR: '/var/lib/constat',
    PUBLIC_URL: 'https://constat.example',
    JOIN_FAILURES_PER_USER: '3',
  });
  assert.is(config.port, 3000);
  assert.is(config.host, '127.0.0.1');
  assert.is(config.databaseUrl, 'postgresql://u:p@db:5432/constat');
  assert.is(config.redisUrl, 'rediss://cache:6380');
  assert.equal(config.kafkaBrokers, ['k1:9092', 'k2:9093']);
  assert.is(config.logLevel, 'debug');
  assert.equal(config.auth, { kind: 'hs256', secret: 'x'.repeat(32), isDevelopmentSecret: false });
  assert.is(config.dataDir, '/var/lib/constat');
  assert.is(config.publicUrl, 'https://constat.example');
  assert.is(config.sessions.joinFailuresPerUser, 3);
  assert.is(config.host, '127.0.0.1');
  assert.is(config.devMode, false);
  assert.is(loadConfig({ CONSTAT_DEV: '1', PORT: '0' }).port, 0);
  assert.is(loadConfig({ CONSTAT_DEV: '1', PORT: '65535' }).port, 65535);
  assert.is(loadConfig({ AUTH_JWT_SECRET: 'x'.repeat(32) }).host, '0.0.0.0');
});

test('production needs a real verification key; a JWKS URL or public key will do', () => {
  const err = configError({ NODE_ENV: 'production' });
  assert.is(err.variable, 'AUTH_JWT_SECRET');
  assert.ok(err.message.includes('AUTH_JWT_SECRET'), err.message);
  // What production needs besides the key (tests/identity-hardening.test.ts tells why).
  const production = {
    NODE_ENV: 'production',
    CURSOR_SECRET: 'c'.repeat(32),
    AUTH_JWT_ISSUER: 'https://id.example',
    AUTH_JWT_AUDIENCE: 'constat',
    PUBLIC_URL: 'https://constat.example',
  };
  assert.equal(loadConfig({ ...production, AUTH_JWKS_URL: 'https://id.example/jwks.json' }).auth, {
    kind: 'jwks',
    url: 'https://id.example/jwks.json',
  });
  const pem = '-----BEGIN PUBLIC KEY-----\\nMFkw\\n-----END PUBLIC KEY-----';
  const auth = loadConfig({
    ...production,
    AUTH_JWT_PUBLIC_KEY: pem,
    AUTH_JWT_ALGORITHM: 'RS256',
  }).auth;
  assert.is(auth.kind, 'public-key');
  if (auth.kind === 'public-key') {
    assert.is(auth.algorithm, 'RS256');
    assert.ok(auth.publicKeyPem.includes('\nMFkw\n'), 'escaped newlines are restored');
  }
});

const invalid: Array<[variable: string, env: Record<string, string>]> = [
  ['WEBHOOK_RETRY_SCHEDULE', { WEBHOOK_RETRY_SCHEDULE: '0,5x' }],
  ['WEBHOOK_TIMEOUT_MS', { WEBHOOK_TIMEOUT_MS: '10' }],
  ['WEBHOOK_CA_FILE', { WEBHOOK_CA_FILE: '/no/such/ca.pem' }],
  ['INSURER_TOKEN_SECRET', { INSURER_TOKEN_SECRET: 'short' }],
  ['PORT', { PORT: 'abc' }],
  ['PORT', { PORT: '70000' }],
  ['PORT', { PORT: '-1' }],
  ['PORT', { PORT: '80.5' }],
  ['DATABASE_URL', { DATABASE_URL: 'mysql://db:3306/constat' }],
  ['DATABASE_URL', { DATABASE_URL: 'not a url' }],
  ['REDIS_URL', { REDIS_URL: 'http://cache:6379' }],
  ['REDIS_URL', { REDIS_URL: 'cache:6379:x' }],
  ['KAFKA_BROKERS', { KAFKA_BROKERS: 'kafka' }],
  ['KAFKA_BROKERS', { KAFKA_BROKERS: 'k1:9092,,k2:9092' }],
  ['KAFKA_BROKERS', { KAFKA_BROKERS: 'k1:port' }],
  ['LOG_LEVEL', { LOG_LEVEL: 'verbose' }],
  ['LOG_LEVEL', { LOG_LEVEL: 'INFO' }],
  ['AUTH_JWT_SECRET', { AUTH_JWT_SECRET: 'too-short' }],
  ['AUTH_JWT_SECRET', { NODE_ENV: 'production' }],
  ['AUTH_JWKS_URL', { AUTH_JWKS_URL: 'ftp://id.example/jwks' }],
  ['AUTH_JWT_PUBLIC_KEY', { AUTH_JWT_PUBLIC_KEY: 'not a pem' }],
  [
    'AUTH_JWT_ALGORITHM',
    { AUTH_JWT_PUBLIC_KEY: '-----BEGIN PUBLIC KEY-----', AUTH_JWT_ALGORITHM: 'HS256' },
  ],
  ['PUBLIC_URL', { PUBLIC_URL: 'ws://constat.example' }],
  ['SESSION_TTL_MS', { SESSION_TTL_MS: '10' }],
  ['JOIN_FAILURES_PER_USER', { JOIN_FAILURES_PER_USER: '0' }],
  ['MAX_FRAME_BYTES', { MAX_FRAME_BYTES: 'lots' }],
  ['MAX_SOCKETS_PER_DEVICE', { MAX_SOCKETS_PER_DEVICE: '0' }],
  ['MAX_WAITING_SESSIONS_PER_USER', { MAX_WAITING_SESSIONS_PER_USER: 'many' }],
  ['MEDIA_STORE', { MEDIA_STORE: 'ftp' }],
  ['S3_BUCKET', { MEDIA_STORE: 's3' }],
  ['S3_BUCKET', { MEDIA_STORE: 's3', S3_BUCKET: 'Has_Upper' }],
  ['S3_ENDPOINT', { MEDIA_STORE: 's3', S3_BUCKET: 'photos', S3_ENDPOINT: 'minio:9000' }],
  ['S3_SECRET_ACCESS_KEY', { MEDIA_STORE: 's3', S3_BUCKET: 'photos', S3_ACCESS_KEY_ID: 'k' }],
  ['S3_REGION', { MEDIA_STORE: 's3', S3_BUCKET: 'photos', S3_REGION: 'EU WEST' }],
  ['S3_FORCE_PATH_STYLE', { MEDIA_STORE: 's3', S3_BUCKET: 'photos', S3_FORCE_PATH_STYLE: 'maybe' }],
  ['MEDIA_URL_SECRET', { MEDIA_URL_SECRET: 'short' }],
  ['MEDIA_MAX_BYTES', { MEDIA_MAX_BYTES: '15MB' }],
  ['MEDIA_MAX_PER_PARTY', { MEDIA_MAX_PER_PARTY: '-1' }],
  ['MEDIA_DOWNLOAD_TTL_S', { MEDIA_DOWNLOAD_TTL_S: String(8 * 24 * 3600) }],
  ['MEDIA_RETENTION_MS', { MEDIA_RETENTION_MS: '0' }],
  ['JOIN_FAILURES_GLOBAL', { JOIN_FAILURES_PER_USER: '10', JOIN_FAILURES_GLOBAL: '10' }],
  ['AI_SERVICES', { AI_SERVICES: 'ok, not ok' }],
  ['AUTH_MAX_TOKEN_AGE_MS', { AUTH_JWT_SECRET: 'x'.repeat(32), AUTH_MAX_TOKEN_AGE_MS: '5' }],
];

test('media: files under DATA_DIR by default; S3 from its variables', () => {
  const KEY = { AUTH_JWT_SECRET: 'x'.repeat(32) };
  const files = loadConfig({ ...KEY, DATA_DIR: '/var/lib/constat' }).media;
  assert.is(files.store.kind, 'files');
  if (files.store.kind === 'files') assert.is(files.store.root, '/var/lib/constat/media');
  const shared = loadConfig({
    ...KEY,
    DATA_DIR: '/var/lib/constat',
    MEDIA_DIR: '/mnt/media',
  }).media;
  if (shared.store.kind === 'files') assert.is(shared.store.root, '/mnt/media');
  assert.is(files.maxBytes, 15 * 1024 * 1024);
  assert.is(files.maxPerParty, 12);
  assert.is(files.uploadTtlSeconds, 900);
  assert.is(files.downloadTtlSeconds, 7 * 24 * 3600);
  const s3 = loadConfig({
    ...KEY,
    MEDIA_STORE: 's3',
    S3_BUCKET: 'constat-media',
    S3_ENDPOINT: 'https://s3.cloud.example',
    S3_REGION: 'dz-alg-1',
    S3_ACCESS_KEY_ID: 'key',
    S3_SECRET_ACCESS_KEY: 'secret',
  }).media.store;
  assert.equal(s3, {
    kind: 's3',
    endpoint: 'https://s3.cloud.example',
    bucket: 'constat-media',
    region: 'dz-alg-1',
    accessKeyId: 'key',
    secretAccessKey: 'secret',
    forcePathStyle: true,
  });
  // AWS itself: no endpoint, virtual-hosted addressing, credentials from the default chain.
  const aws = loadConfig({ ...KEY, MEDIA_STORE: 's3', S3_BUCKET: 'constat-media' }).media.store;
  assert.equal(aws, {
    kind: 's3',
    endpoint: undefined,
    bucket: 'constat-media',
    region: 'us-east-1',
    accessKeyId: undefined,
    secretAccessKey: undefined,
    forcePathStyle: false,
  });
});

for (const [variable, env] of invalid) {
  test(`invalid ${variable} (${JSON.stringify(env)}) is a ConfigError naming it`, () => {
    // A valid key unless the case is about keys: otherwise the missing key is what is reported.
    const aboutKeys = Object.keys(env).some((k) => k.startsWith('AUTH_') || k === 'NODE_ENV');
    const err = configError(aboutKeys ? env : { AUTH_JWT_SECRET: 'x'.repeat(32), ...env });
    assert.is(err.variable, variable);
    assert.ok(err.message.startsWith(`${variable}: `), err.message);
    assert.not.match(err.message, /\n/);
  });
}

test('`constat serve` with PORT=abc exits 1 with one line on stderr naming PORT', async () => {
  const env: NodeJS.ProcessEnv = { ...process.env, CONSTAT_DEV: '1', PORT: 'abc' };
  const child = spawn(process.execPath, ['bin/constat.js', 'serve'], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.once('close', (exitCode) => {
      clearTimeout(timer);
      resolve(exitCode);
    });
  });
  assert.is(code, 1, `exit code; stderr:\n${stderr}`);
  const lines = stderr.split('\n').filter((l) => l !== '');
  assert.is(lines.length, 1, stderr);
  assert.match(lines[0]!, /\bPORT\b/);
  assert.ok(lines[0]!.includes('abc'), lines[0]);
  assert.is(stdout, '', 'nothing on stdout');
});

test.run();
