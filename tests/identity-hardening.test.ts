/**
 * Who may mint a token the server accepts, and for how long: the built-in development secret
 * only in explicit development mode and on loopback; `exp` required, `iss` / `aud` and a
 * maximum token age enforced; a websocket closed (4401) when its token expires; sealed page
 * cursors that need their own secret when the verification key is public, and answer
 * BAD_USER_INPUT to anything malformed; PUBLIC_URL in production; `/metrics` on a port of its
 * own or behind a token; JWKS only over https.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SignJWT, type JWTPayload } from 'jose';
import { createTokenVerifier } from '../server/auth.js';
import { ConfigError, DEVELOPMENT_JWT_SECRET, loadConfig } from '../server/config.js';
import { createCursorCodec } from '../server/graphql/cursor.js';
import { ConstatError } from '../constat/errors.js';
import {
  freePort,
  gql,
  openPair,
  startTestServer,
  token,
  TEST_SECRET,
  type TestServer,
} from './support/server.js';
import { connectDevice, rawSocket, waitFor } from './support/device.js';
import { errorCode } from './support/signing.js';
import { subscribe } from './support/graphql.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SECRET = 'identity-test-secret-0123456789abcdef';
const key = new TextEncoder().encode(SECRET);

function configError(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (err) {
    assert.instance(err, ConfigError, `${JSON.stringify(env)} threw ${String(err)}`);
    assert.not.match((err as Error).message, /\n/);
    return err as ConfigError;
  }
  assert.unreachable(`${JSON.stringify(env)} was accepted`);
  throw new Error('unreachable');
}

async function refused(verify: Promise<unknown>, message: string): Promise<void> {
  try {
    await verify;
  } catch (err) {
    assert.instance(err, ConstatError, `${message}: ${String(err)}`);
    assert.is((err as ConstatError).code, 'UNAUTHENTICATED', message);
    return;
  }
  assert.unreachable(`${message}: the token was accepted`);
}

/** A token with exactly these claims and header fields (nothing added). */
function raw(claims: JWTPayload): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).sign(key);
}
const nowS = () => Math.floor(Date.now() / 1000);
/** The claims of a token (not verified: the test's own). */
const claimsOf = (jwt: string) =>
  JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString()) as JWTPayload & {
    did: string;
  };

// ---------------------------------------------------------------------------------------------
const dev = suite('development mode');

dev('without a key the server refuses to start, whatever NODE_ENV says', () => {
  for (const NODE_ENV of [undefined, 'staging', 'Production', 'development', 'test']) {
    const err = configError(NODE_ENV ? { NODE_ENV } : {});
    assert.is(err.variable, 'AUTH_JWT_SECRET', `NODE_ENV=${NODE_ENV}`);
  }
});

dev('CONSTAT_DEV=1 uses the built-in secret, on loopback only', () => {
  const config = loadConfig({ CONSTAT_DEV: '1' });
  assert.is(config.devMode, true);
  assert.equal(config.auth, {
    kind: 'hs256',
    secret: DEVELOPMENT_JWT_SECRET,
    isDevelopmentSecret: true,
  });
  assert.is(config.host, '127.0.0.1');
  assert.is(loadConfig({ CONSTAT_DEV: '1', HOST: '::1' }).host, '::1');
  assert.is(configError({ CONSTAT_DEV: '1', HOST: '0.0.0.0' }).variable, 'HOST');
  assert.is(configError({ CONSTAT_DEV: '1', HOST: '10.0.0.5' }).variable, 'HOST');
  assert.is(configError({ CONSTAT_DEV: '1', NODE_ENV: 'production' }).variable, 'CONSTAT_DEV');
  // The public built-in secret cannot be smuggled in as a "real" one either.
  assert.is(configError({ AUTH_JWT_SECRET: DEVELOPMENT_JWT_SECRET }).variable, 'AUTH_JWT_SECRET');
  // With a key of its own, development mode may listen anywhere.
  const own = loadConfig({ CONSTAT_DEV: '1', AUTH_JWT_SECRET: SECRET, HOST: '0.0.0.0' });
  assert.is(own.host, '0.0.0.0');
  assert.is(loadConfig({ AUTH_JWT_SECRET: SECRET }).devMode, false);
});

async function run(args: string[], env: NodeJS.ProcessEnv, until?: RegExp) {
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const done = new Promise<number | null>((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
  const onData = (d: Buffer) => {
    out += d.toString();
    if (until && until.test(out)) child.kill('SIGTERM');
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  return { code: await done, out };
}

function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of Object.keys(env)) {
    if (
      /^(AUTH_|CONSTAT_DEV|NODE_ENV|HOST|PORT|DATABASE_URL|REDIS_URL|KAFKA_BROKERS|DATA_DIR)/.test(
        name,
      )
    )
      delete env[name];
  }
  return { ...env, ...extra };
}

dev('`constat serve` without a key exits 1 with one line naming AUTH_JWT_SECRET', async () => {
  const { code, out } = await run(['bin/constat.js', 'serve'], cleanEnv({ NODE_ENV: 'staging' }));
  assert.is(code, 1, out);
  const lines = out.split('\n').filter((l) => l !== '');
  assert.is(lines.length, 1, out);
  assert.match(lines[0]!, /AUTH_JWT_SECRET/);
});

dev('`npm start` runs on the built-in secret, on loopback, with nothing configured', async () => {
  // The command the start script runs, with this node in place of `node`.
  const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
    scripts: { start: string };
  };
  const [program, ...args] = pkg.scripts.start.split(' ');
  assert.is(program, 'node');
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'constat-dev-start-'));
  const port = await freePort();
  try {
    const { out } = await run(
      args,
      cleanEnv({ PORT: String(port), DATA_DIR: dataDir, LOG_LEVEL: 'warn' }),
      /constat listening on/,
    );
    assert.match(out, new RegExp(`constat listening on http://127\\.0\\.0\\.1:${port}`), out);
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
});

dev(
  '`constat token` without a key mints with the built-in secret (accepted only in dev mode)',
  async () => {
    const { code, out } = await run(
      ['bin/constat.js', 'token', '--user', 'u', '--device', 'd'],
      cleanEnv({}),
    );
    assert.is(code, 0, out);
    const jwt = out.trim();
    const devConfig = loadConfig({ CONSTAT_DEV: '1' });
    assert.is((await createTokenVerifier(devConfig.auth).verify(jwt)).userId, 'u');
    await refused(
      createTokenVerifier(loadConfig({ AUTH_JWT_SECRET: SECRET }).auth).verify(jwt),
      'a server with its own secret',
    );
  },
);

dev('`constat migrate` needs no verification key (it serves nothing)', async () => {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'constat-migrate-'));
  try {
    const { code, out } = await run(
      ['bin/constat.js', 'migrate'],
      cleanEnv({ DATA_DIR: dataDir, LOG_LEVEL: 'warn' }),
    );
    assert.is(code, 0, out);
    assert.match(out, /applied .*0005_key_versions_and_event_origin/);
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
});

dev.run();

// ---------------------------------------------------------------------------------------------
const claims = suite('token claims');

claims('a token without exp is refused', async () => {
  const verifier = createTokenVerifier({
    kind: 'hs256',
    secret: SECRET,
    isDevelopmentSecret: false,
  });
  await refused(verifier.verify(await raw({ sub: 'u', did: 'd', iat: nowS() })), 'no exp');
  await refused(verifier.verify(await raw({ sub: 'u', did: 'd' })), 'no exp, no iat');
  assert.is(
    (await verifier.verify(await raw({ sub: 'u', did: 'd', iat: nowS(), exp: nowS() + 60 })))
      .userId,
    'u',
  );
});

claims('a token older than the maximum age is refused, whatever its exp', async () => {
  const config = loadConfig({ AUTH_JWT_SECRET: SECRET, AUTH_MAX_TOKEN_AGE_MS: '3600000' });
  const verifier = createTokenVerifier(config.auth, config.tokens);
  const old = await raw({ sub: 'u', did: 'd', iat: nowS() - 7200, exp: nowS() + 365 * 86400 });
  await refused(verifier.verify(old), 'issued two hours ago, max age one hour');
  const fresh = await raw({ sub: 'u', did: 'd', iat: nowS(), exp: nowS() + 365 * 86400 });
  const { expiresAt } = await verifier.verifyToken(fresh);
  assert.ok(expiresAt <= Date.now() + 3600_000 + 1000, 'expires at iat + max age');
});

claims('AUTH_JWT_ISSUER and AUTH_JWT_AUDIENCE are enforced when set', async () => {
  const config = loadConfig({
    AUTH_JWT_SECRET: SECRET,
    AUTH_JWT_ISSUER: 'https://id.example',
    AUTH_JWT_AUDIENCE: 'constat',
  });
  const verifier = createTokenVerifier(config.auth, config.tokens);
  const base = { sub: 'u', did: 'd', iat: nowS(), exp: nowS() + 600 };
  await refused(verifier.verify(await raw(base)), 'no iss/aud');
  await refused(
    verifier.verify(await raw({ ...base, iss: 'https://id.example', aud: 'other-app' })),
    'token for another application',
  );
  await refused(
    verifier.verify(await raw({ ...base, iss: 'https://evil.example', aud: 'constat' })),
    'another issuer',
  );
  assert.is(
    (await verifier.verify(await raw({ ...base, iss: 'https://id.example', aud: 'constat' })))
      .userId,
    'u',
  );
});

claims('production requires issuer, audience and PUBLIC_URL', () => {
  const jwks = { AUTH_JWKS_URL: 'https://id.example/jwks.json', CURSOR_SECRET: 'c'.repeat(32) };
  const prod = { NODE_ENV: 'production', ...jwks };
  assert.is(configError(prod).variable, 'AUTH_JWT_ISSUER');
  assert.is(
    configError({ ...prod, AUTH_JWT_ISSUER: 'https://id.example' }).variable,
    'AUTH_JWT_AUDIENCE',
  );
  const full = { ...prod, AUTH_JWT_ISSUER: 'https://id.example', AUTH_JWT_AUDIENCE: 'constat' };
  assert.is(configError(full).variable, 'PUBLIC_URL');
  const config = loadConfig({ ...full, PUBLIC_URL: 'https://constat.example' });
  assert.equal(config.tokens.issuer, 'https://id.example');
  assert.is(config.publicUrl, 'https://constat.example');
});

claims('AUTH_JWKS_URL must be https; plain http only to loopback in development mode', () => {
  const cursor = { CURSOR_SECRET: 'c'.repeat(32) };
  assert.is(
    configError({ AUTH_JWKS_URL: 'http://id.example/jwks.json', ...cursor }).variable,
    'AUTH_JWKS_URL',
  );
  assert.is(
    configError({ AUTH_JWKS_URL: 'http://127.0.0.1:9/jwks.json', ...cursor }).variable,
    'AUTH_JWKS_URL',
  );
  assert.is(
    configError({ AUTH_JWKS_URL: 'http://id.example/jwks.json', CONSTAT_DEV: '1', ...cursor })
      .variable,
    'AUTH_JWKS_URL',
  );
  assert.is(
    loadConfig({ AUTH_JWKS_URL: 'http://127.0.0.1:9/jwks.json', CONSTAT_DEV: '1', ...cursor }).auth
      .kind,
    'jwks',
  );
  assert.is(
    loadConfig({ AUTH_JWKS_URL: 'https://id.example/jwks.json', ...cursor }).auth.kind,
    'jwks',
  );
});

claims('CURSOR_SECRET is required when the verification key is public', () => {
  assert.is(
    configError({ AUTH_JWKS_URL: 'https://id.example/jwks.json' }).variable,
    'CURSOR_SECRET',
  );
  const pem = '-----BEGIN PUBLIC KEY-----\\nMFkw\\n-----END PUBLIC KEY-----';
  assert.is(configError({ AUTH_JWT_PUBLIC_KEY: pem }).variable, 'CURSOR_SECRET');
  assert.is(
    configError({ AUTH_JWT_PUBLIC_KEY: pem, CURSOR_SECRET: 'short' }).variable,
    'CURSOR_SECRET',
  );
  const a = loadConfig({ AUTH_JWT_PUBLIC_KEY: pem, CURSOR_SECRET: 'c'.repeat(32) });
  const b = loadConfig({ AUTH_JWT_PUBLIC_KEY: pem, CURSOR_SECRET: 'd'.repeat(32) });
  assert.is.not(a.graphql.cursorSecret, b.graphql.cursorSecret);
});

claims('METRICS_PORT and METRICS_TOKEN are validated', () => {
  assert.is(configError({ AUTH_JWT_SECRET: SECRET, METRICS_PORT: 'x' }).variable, 'METRICS_PORT');
  assert.is(
    configError({ AUTH_JWT_SECRET: SECRET, PORT: '9000', METRICS_PORT: '9000' }).variable,
    'METRICS_PORT',
  );
  assert.is(
    configError({ AUTH_JWT_SECRET: SECRET, METRICS_TOKEN: 'short' }).variable,
    'METRICS_TOKEN',
  );
});

claims.run();

// ---------------------------------------------------------------------------------------------
interface ServerCtx {
  server: TestServer;
}
const live = suite<ServerCtx>('against a server', { server: undefined as unknown as TestServer });
let metricsPort = 0;
const METRICS_TOKEN = 'metrics-token-0123456789';

live.before(async (ctx) => {
  metricsPort = await freePort();
  ctx.server = await startTestServer({
    database: 'postgres',
    hub: 'memory',
    env: { METRICS_PORT: String(metricsPort), METRICS_TOKEN },
  });
});
live.after(async (ctx) => {
  await ctx.server?.stop();
});

live('a websocket is closed with 4401 when the token it was admitted with expires', async (ctx) => {
  const pair = await openPair(ctx.server.url);
  // Party B's identity with a token that expires in two seconds.
  const claimsB = claimsOf(pair.tokenB);
  const expiring = await token(claimsB.sub!, claimsB.did, { expiresIn: '2s' });
  const device = connectDevice(ctx.server.wsUrl, pair.sessionId, expiring);
  try {
    await device.synced();
    await waitFor(() => device.closes.length > 0, 8_000, 'still open 8 s later');
    assert.is(device.closes[0]!.code, 4401, device.closes[0]!.reason);
  } finally {
    device.destroy();
  }
  // A token already expired is refused at the door, as before.
  const { closed } = rawSocket(
    `${ctx.server.wsUrl}/${pair.sessionId}?token=${encodeURIComponent(expiring)}`,
  );
  assert.is((await closed).code, 4401);
});

live('a GraphQL subscription ends when the token it was opened with expires', async (ctx) => {
  const pair = await openPair(ctx.server.url);
  const claimsA = claimsOf(pair.tokenA);
  const query = `subscription($id: ID!) { sessionChanged(id: $id) { id } }`;
  const lasting = await subscribe(ctx.server.url, pair.tokenA, query, { id: pair.sessionId });
  const expiring = await subscribe(
    ctx.server.url,
    await token(claimsA.sub!, claimsA.did, { expiresIn: '2s' }),
    query,
    { id: pair.sessionId },
  );
  try {
    assert.match(expiring.contentType, /text\/event-stream/);
    await waitFor(() => expiring.ended, 8_000, 'the stream outlived its token');
    assert.not.ok(lasting.ended, 'a subscription with a valid token goes on');
  } finally {
    await expiring.close();
    await lasting.close();
  }
});

live(
  'a sealed cursor holding a bad id or time answers BAD_USER_INPUT, never INTERNAL',
  async (ctx) => {
    const viewer = 'cursor-viewer';
    const bearer = await token(viewer, 'phone');
    const codec = createCursorCodec(
      loadConfig({ AUTH_JWT_SECRET: TEST_SECRET }).graphql.cursorSecret,
    );
    const query = `query($after: String) { constats(first: 5, after: $after) { edges { cursor } } }`;
    for (const position of [
      { position: '2025-01-01T00:00:00.000000Z', id: 'not-a-uuid' },
      { position: '1', id: '00000000-0000-4000-8000-000000000000' },
      { position: '99999-12-31T00:00:00Z', id: '00000000-0000-4000-8000-000000000000' },
    ]) {
      const res = await gql(ctx.server.url, bearer, query, {
        after: codec.encode(viewer, position),
      });
      assert.is(
        errorCode(res),
        'BAD_USER_INPUT',
        `${JSON.stringify(position)}: ${JSON.stringify(res.errors)}`,
      );
    }
    const good = await gql(ctx.server.url, bearer, query, {
      after: codec.encode(viewer, {
        position: '2025-01-01T00:00:00.000000Z',
        id: '00000000-0000-4000-8000-000000000000',
      }),
    });
    assert.is(good.errors, undefined, JSON.stringify(good.errors));
  },
);

live('/metrics is on METRICS_PORT only, behind its token', async (ctx) => {
  const publicRes = await fetch(`${ctx.server.url}/metrics`);
  assert.is(publicRes.status, 404, 'not on the public port');
  const base = `http://127.0.0.1:${metricsPort}/metrics`;
  assert.is((await fetch(base)).status, 401);
  assert.is(
    (await fetch(base, { headers: { authorization: 'Bearer wrong-token-000000000' } })).status,
    401,
  );
  const ok = await fetch(base, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
  assert.is(ok.status, 200);
  assert.match(await ok.text(), /constat_/);
});

live.run();
