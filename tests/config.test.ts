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

test('defaults: embedded storage, development secret, documented limits', () => {
  const config = loadConfig({});
  assert.is(config.port, 8080);
  assert.is(config.host, '0.0.0.0');
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
  assert.equal(loadConfig({ PORT: '', DATABASE_URL: '', REDIS_URL: '', KAFKA_BROKERS: ' ' }), {
    ...config,
  });
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
  assert.is(loadConfig({ PORT: '0' }).port, 0);
  assert.is(loadConfig({ PORT: '65535' }).port, 65535);
});

test('production needs a real verification key; a JWKS URL or public key will do', () => {
  const err = configError({ NODE_ENV: 'production' });
  assert.is(err.variable, 'AUTH_JWT_SECRET');
  assert.ok(err.message.includes('AUTH_JWT_SECRET'), err.message);
  assert.equal(
    loadConfig({ NODE_ENV: 'production', AUTH_JWKS_URL: 'https://id.example/jwks.json' }).auth,
    { kind: 'jwks', url: 'https://id.example/jwks.json' },
  );
  const pem = '-----BEGIN PUBLIC KEY-----\\nMFkw\\n-----END PUBLIC KEY-----';
  const auth = loadConfig({
    NODE_ENV: 'production',
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
];

for (const [variable, env] of invalid) {
  test(`invalid ${variable} (${JSON.stringify(env)}) is a ConfigError naming it`, () => {
    const err = configError(env);
    assert.is(err.variable, variable);
    assert.ok(err.message.startsWith(`${variable}: `), err.message);
    assert.not.match(err.message, /\n/);
  });
}

test('`constat serve` with PORT=abc exits 1 with one line on stderr naming PORT', async () => {
  const env: NodeJS.ProcessEnv = { ...process.env, PORT: 'abc' };
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
