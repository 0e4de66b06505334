/**
 * Bearer token verification: HS256 development tokens, ES256/RS256 public keys, a JWKS URL
 * (served by a local HTTP server), refused claims and algorithms, and the `constat token`
 * command.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  exportJWK,
  exportSPKI,
  generateKeyPair,
  SignJWT,
  UnsecuredJWT,
  type CryptoKey,
  type JWTPayload,
} from 'jose';
import {
  bearerToken,
  createTokenVerifier,
  mintDevelopmentToken,
  type TokenVerifier,
} from '../server/auth.js';
import { DEVELOPMENT_JWT_SECRET, loadConfig, type AuthConfig } from '../server/config.js';
import { ConstatError } from '../constat/errors.js';
import { setUp } from './support/suite.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SECRET = 'auth-test-secret-0123456789abcdef0123';
const hs256: AuthConfig = { kind: 'hs256', secret: SECRET, isDevelopmentSecret: false };

async function refused(verifier: TokenVerifier, token: string, message: string): Promise<void> {
  try {
    await verifier.verify(token);
  } catch (err) {
    assert.instance(err, ConstatError, `${message}: ${String(err)}`);
    assert.is((err as ConstatError).code, 'UNAUTHENTICATED', message);
    return;
  }
  assert.unreachable(`${message}: the token was accepted`);
}

function sign(
  claims: JWTPayload,
  alg: string,
  key: CryptoKey | Uint8Array,
  opts: { kid?: string; exp?: string | number } = {},
): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg, ...(opts.kid ? { kid: opts.kid } : {}) })
    .setIssuedAt()
    .setExpirationTime(opts.exp ?? '10m')
    .sign(key);
}

const secretKey = (secret: string) => new TextEncoder().encode(secret);

const hs = suite('auth: HS256');

hs('a development token round-trips to its principal', async () => {
  const token = await mintDevelopmentToken({
    secret: SECRET,
    userId: 'u1',
    deviceId: 'd1',
    name: 'Amine',
    roles: ['insurer:saa', 'admin'],
  });
  const principal = await createTokenVerifier(hs256).verify(token);
  assert.equal(principal, {
    userId: 'u1',
    deviceId: 'd1',
    name: 'Amine',
    roles: ['insurer:saa', 'admin'],
  });
  const bare = await createTokenVerifier(hs256).verify(
    await mintDevelopmentToken({ secret: SECRET, userId: 'u2', deviceId: 'd2' }),
  );
  assert.equal(bare, { userId: 'u2', deviceId: 'd2', name: undefined, roles: [] });
});

hs('tokens without usable sub or did claims are refused', async () => {
  const verifier = createTokenVerifier(hs256);
  const key = secretKey(SECRET);
  await refused(verifier, await sign({ sub: 'u1' }, 'HS256', key), 'no did');
  await refused(verifier, await sign({ did: 'd1' }, 'HS256', key), 'no sub');
  await refused(verifier, await sign({ sub: '', did: 'd1' }, 'HS256', key), 'empty sub');
  await refused(verifier, await sign({ sub: 'u1', did: '' }, 'HS256', key), 'empty did');
  await refused(verifier, await sign({ sub: 'u1', did: 42 }, 'HS256', key), 'numeric did');
  await refused(verifier, await sign({ sub: 'u'.repeat(201), did: 'd' }, 'HS256', key), 'long');
  await refused(
    verifier,
    await sign({ sub: 'u1', did: 'd1', roles: 'admin' }, 'HS256', key),
    'roles not a list',
  );
});

hs('expired, not-yet-valid, foreign-signed and malformed tokens are refused', async () => {
  const verifier = createTokenVerifier(hs256);
  const claims = { sub: 'u1', did: 'd1' };
  await refused(
    verifier,
    await sign(claims, 'HS256', secretKey(SECRET), { exp: Math.floor(Date.now() / 1000) - 60 }),
    'expired',
  );
  await refused(
    verifier,
    await new SignJWT(claims)
      .setProtectedHeader({ alg: 'HS256' })
      .setNotBefore('1h')
      .setExpirationTime('2h')
      .sign(secretKey(SECRET)),
    'not before',
  );
  await refused(
    verifier,
    await sign(claims, 'HS256', secretKey('another-secret-0123456789abcdef-xyz')),
    'other secret',
  );
  for (const garbage of ['', 'abc', 'a.b.c', 'eyJhbGciOiJIUzI1NiJ9..']) {
    await refused(verifier, garbage, `garbage ${JSON.stringify(garbage)}`);
  }
  // A tampered payload no longer matches the signature.
  const [header, , signature] = (await sign(claims, 'HS256', secretKey(SECRET))).split('.');
  const forged = Buffer.from(JSON.stringify({ sub: 'admin', did: 'd1' })).toString('base64url');
  await refused(verifier, `${header}.${forged}.${signature}`, 'tampered');
});

hs('only HS256 is accepted with a secret (no "none", no other HMAC)', async () => {
  const verifier = createTokenVerifier(hs256);
  const claims = { sub: 'u1', did: 'd1' };
  await refused(verifier, new UnsecuredJWT(claims).setExpirationTime('10m').encode(), 'alg none');
  await refused(verifier, await sign(claims, 'HS512', secretKey(SECRET)), 'HS512');
  const { privateKey } = await generateKeyPair('ES256');
  await refused(verifier, await sign(claims, 'ES256', privateKey), 'ES256');
});

hs(
  'a token verified once is still refused once it expires (verified tokens are cached)',
  async () => {
    const verifier = createTokenVerifier(hs256);
    const exp = Math.floor(Date.now() / 1000) + 1;
    const token = await new SignJWT({ did: 'd1' })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('u1')
      .setIssuedAt()
      .setExpirationTime(exp)
      .sign(secretKey(SECRET));
    const first = await verifier.verify(token);
    assert.is(await verifier.verify(token), first, 'the second check is answered from the cache');
    await new Promise((r) => setTimeout(r, exp * 1000 - Date.now() + 50));
    await refused(verifier, token, 'expired after being cached');
    // A different token for the same device is verified on its own.
    await refused(verifier, `${token}x`, 'altered after being cached');
  },
);

hs('bearerToken reads the Authorization header', () => {
  assert.is(bearerToken('Bearer abc.def.ghi'), 'abc.def.ghi');
  assert.is(bearerToken('bearer   abc'), 'abc');
  assert.is(bearerToken('  Bearer abc  '), 'abc');
  assert.is(bearerToken('Basic dTpw'), undefined);
  assert.is(bearerToken('Bearer'), undefined);
  assert.is(bearerToken('Bearer a b'), undefined);
  assert.is(bearerToken(''), undefined);
  assert.is(bearerToken(undefined), undefined);
  assert.is(bearerToken(null), undefined);
});

hs.run();

for (const algorithm of ['ES256', 'RS256'] as const) {
  const pk = suite(`auth: ${algorithm} public key`);

  pk(`a token signed with the private key verifies against the SPKI PEM`, async () => {
    const { publicKey, privateKey } = await generateKeyPair(algorithm, { extractable: true });
    const pem = await exportSPKI(publicKey);
    const verifier = createTokenVerifier({ kind: 'public-key', algorithm, publicKeyPem: pem });
    const principal = await verifier.verify(
      await sign({ sub: 'u1', did: 'd1', name: 'Lina' }, algorithm, privateKey),
    );
    assert.equal(principal, { userId: 'u1', deviceId: 'd1', name: 'Lina', roles: [] });
    // The same PEM through the configuration loader (newlines escaped, as in an env file).
    const config = loadConfig({
      AUTH_JWT_PUBLIC_KEY: pem.replace(/\n/g, '\\n'),
      AUTH_JWT_ALGORITHM: algorithm,
      CURSOR_SECRET: 'c'.repeat(32),
    });
    const fromEnv = createTokenVerifier(config.auth);
    assert.is(
      (await fromEnv.verify(await sign({ sub: 'u2', did: 'd2' }, algorithm, privateKey))).userId,
      'u2',
    );
  });

  pk('another key, another algorithm, an HMAC over the PEM and "none" are refused', async () => {
    const { publicKey, privateKey } = await generateKeyPair(algorithm, { extractable: true });
    const pem = await exportSPKI(publicKey);
    const verifier = createTokenVerifier({ kind: 'public-key', algorithm, publicKeyPem: pem });
    const claims = { sub: 'u1', did: 'd1' };
    const other = await generateKeyPair(algorithm);
    await refused(verifier, await sign(claims, algorithm, other.privateKey), 'other key');
    const otherAlgorithm = algorithm === 'ES256' ? 'RS256' : 'ES256';
    const otherPair = await generateKeyPair(otherAlgorithm);
    await refused(verifier, await sign(claims, otherAlgorithm, otherPair.privateKey), 'other alg');
    if (algorithm === 'RS256') {
      // Same RSA key, different padding/hash: still not the configured algorithm.
      const ps = await generateKeyPair('PS256', { extractable: true });
      await refused(verifier, await sign(claims, 'PS256', ps.privateKey), 'PS256');
    }
    // Algorithm confusion: the public key used as an HMAC secret.
    await refused(verifier, await sign(claims, 'HS256', secretKey(pem)), 'HS256 with the PEM');
    await refused(verifier, await sign(claims, 'HS256', secretKey(SECRET)), 'HS256');
    await refused(verifier, new UnsecuredJWT(claims).setExpirationTime('10m').encode(), 'alg none');
    // And the right key still works.
    assert.is((await verifier.verify(await sign(claims, algorithm, privateKey))).deviceId, 'd1');
  });

  pk.run();
}

const jwks = suite<{
  server?: http.Server;
  url: string;
  keys: { kid: string; privateKey: CryptoKey }[];
  requests: number;
}>('auth: JWKS URL', { url: '', keys: [], requests: 0 });

setUp(jwks, async (ctx) => {
  const published: object[] = [];
  for (const [kid, alg] of [
    ['es-key-1', 'ES256'],
    ['rs-key-1', 'RS256'],
  ] as const) {
    const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
    published.push({ ...(await exportJWK(publicKey)), kid, alg, use: 'sig' });
    ctx.keys.push({ kid, privateKey });
  }
  const server = http.createServer((req, res) => {
    ctx.requests++;
    if (req.url !== '/.well-known/jwks.json') {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ keys: published }));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  ctx.server = server;
  ctx.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`;
});
jwks.after(async (ctx) => {
  ctx.server?.closeAllConnections();
  await new Promise<void>((resolve) =>
    ctx.server ? ctx.server.close(() => resolve()) : resolve(),
  );
});

jwks('ES256 (and RS256) tokens verify against keys fetched from the JWKS URL', async (ctx) => {
  // Plain http to loopback: allowed in development mode only (production needs https).
  const config = loadConfig({
    AUTH_JWKS_URL: ctx.url,
    CONSTAT_DEV: '1',
    CURSOR_SECRET: 'c'.repeat(32),
  });
  assert.equal(config.auth, { kind: 'jwks', url: ctx.url });
  const verifier = createTokenVerifier(config.auth);
  const es = ctx.keys.find((k) => k.kid === 'es-key-1')!;
  const rs = ctx.keys.find((k) => k.kid === 'rs-key-1')!;
  const principal = await verifier.verify(
    await sign({ sub: 'u1', did: 'd1', roles: ['insurer:trust'] }, 'ES256', es.privateKey, {
      kid: es.kid,
    }),
  );
  assert.equal(principal, {
    userId: 'u1',
    deviceId: 'd1',
    name: undefined,
    roles: ['insurer:trust'],
  });
  assert.is(
    (
      await verifier.verify(
        await sign({ sub: 'u2', did: 'd2' }, 'RS256', rs.privateKey, { kid: rs.kid }),
      )
    ).userId,
    'u2',
  );
  assert.ok(ctx.requests >= 1, 'the key set was fetched');
});

jwks('tokens from unknown keys, HS256 and "none" are refused', async (ctx) => {
  const verifier = createTokenVerifier({ kind: 'jwks', url: ctx.url });
  const claims = { sub: 'u1', did: 'd1' };
  const stranger = await generateKeyPair('ES256');
  await refused(
    verifier,
    await sign(claims, 'ES256', stranger.privateKey, { kid: 'es-key-1' }),
    'unknown key claiming a published kid',
  );
  await refused(
    verifier,
    await sign(claims, 'ES256', stranger.privateKey, { kid: 'nobody' }),
    'unknown kid',
  );
  await refused(verifier, await sign(claims, 'HS256', secretKey(SECRET)), 'HS256');
  await refused(verifier, new UnsecuredJWT(claims).setExpirationTime('10m').encode(), 'none');
  const es = ctx.keys.find((k) => k.kid === 'es-key-1')!;
  await refused(
    verifier,
    await sign({ sub: 'u1' }, 'ES256', es.privateKey, { kid: es.kid }),
    'published key, but no did',
  );
});

jwks.run();

const cli = suite('auth: constat token');

async function constatToken(args: string[], env: NodeJS.ProcessEnv) {
  const child = spawn(process.execPath, ['bin/constat.js', 'token', ...args], {
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
  return { code, stdout, stderr };
}

/** The environment without any verification-key settings inherited from the caller. */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of Object.keys(env)) if (name.startsWith('AUTH_')) delete env[name];
  delete env.NODE_ENV;
  return { ...env, ...extra };
}

cli('`constat token --user u --device d` prints a JWT the server accepts', async () => {
  const env = cleanEnv({ AUTH_JWT_SECRET: SECRET });
  const { code, stdout, stderr } = await constatToken(
    ['--user', 'u', '--device', 'd', '--name', 'Samir', '--role', 'admin'],
    env,
  );
  assert.is(code, 0, stderr);
  assert.match(stdout, /^[\w-]+\.[\w-]+\.[\w-]+\n$/);
  // Verified exactly as the server verifies: the verifier built from the same environment.
  const verifier = createTokenVerifier(loadConfig(env).auth);
  assert.equal(await verifier.verify(stdout.trim()), {
    userId: 'u',
    deviceId: 'd',
    name: 'Samir',
    roles: ['admin'],
  });
  await refused(
    createTokenVerifier(loadConfig(cleanEnv({ CONSTAT_DEV: '1' })).auth),
    stdout.trim(),
    'dev server',
  );
});

cli('`constat token --help` prints its usage and exits 0', async () => {
  for (const flag of ['--help', '-h']) {
    const { code, stdout, stderr } = await constatToken([flag], cleanEnv({}));
    assert.is(code, 0, stderr);
    assert.match(stdout, /^usage: constat token --user U --device D/, flag);
    assert.match(stdout, /--role R/);
    assert.is(stderr, '', `${flag}: no error`);
  }
});

cli('without AUTH_JWT_SECRET it signs with the development secret', async () => {
  const { code, stdout, stderr } = await constatToken(
    ['--user', 'u', '--device', 'd'],
    cleanEnv({}),
  );
  assert.is(code, 0, stderr);
  const config = loadConfig(cleanEnv({ CONSTAT_DEV: '1' }));
  assert.equal(config.auth, {
    kind: 'hs256',
    secret: DEVELOPMENT_JWT_SECRET,
    isDevelopmentSecret: true,
  });
  const principal = await createTokenVerifier(config.auth).verify(stdout.trim());
  assert.is(principal.userId, 'u');
  assert.is(principal.deviceId, 'd');
});

cli('`constat token` without --device is a usage error', async () => {
  const { code, stdout, stderr } = await constatToken(['--user', 'u'], cleanEnv({}));
  assert.is(code, 2);
  assert.is(stdout, '');
  assert.match(stderr, /--device/);
});

cli.run();
