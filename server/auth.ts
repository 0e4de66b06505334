/**
 * Bearer JWT verification. Claims: `sub` (user id), `did` (device id), optional `name` and
 * `roles`. HS256 for development; ES256/RS256 public key or a JWKS URL in production.
 */
import {
  createRemoteJWKSet,
  importSPKI,
  jwtVerify,
  SignJWT,
  type JWTPayload,
  type JWTVerifyOptions,
} from 'jose';
import type { AuthConfig, TokenPolicy } from './config.js';
import { ConstatError } from '../constat/errors.js';

export interface Principal {
  userId: string;
  deviceId: string;
  name: string | undefined;
  roles: string[];
}

export interface VerifiedToken {
  principal: Principal;
  /** When the token stops being valid (epoch ms): its `exp`, or `iat` + the maximum age. */
  expiresAt: number;
}

export interface TokenVerifier {
  verify(token: string): Promise<Principal>;
  /** The principal and when the token expires (a websocket is closed then). */
  verifyToken(token: string): Promise<VerifiedToken>;
}

const DEFAULT_POLICY: TokenPolicy = {
  issuer: undefined,
  audience: undefined,
  maxTokenAgeMs: 24 * 3600_000,
};

type Verify = (token: string) => Promise<JWTPayload>;

// Verified tokens are remembered for a while: a device presents the same token on every
// request, and verifying it (WebCrypto, or a key set) is the costliest part of a small request.
// Never past the token's own expiry; bounded, oldest out first.
const CACHE_MS = 60_000;
const CACHE_MAX = 10_000;

export function createTokenVerifier(
  config: AuthConfig,
  policy: TokenPolicy = DEFAULT_POLICY,
): TokenVerifier {
  let verifierPromise: Promise<Verify> | undefined;
  const verifier = () => (verifierPromise ??= buildVerify(config, policy));
  const verified = new Map<string, { token: VerifiedToken; until: number }>();
  const verifyToken = async (token: string): Promise<VerifiedToken> => {
    const now = Date.now();
    const hit = verified.get(token);
    if (hit && now < hit.until) return hit.token;
    if (hit) verified.delete(token);
    const verify = await verifier();
    let payload: JWTPayload;
    try {
      payload = await verify(token);
    } catch (err) {
      throw new ConstatError('UNAUTHENTICATED', `invalid token: ${(err as Error).message}`);
    }
    const principal = Object.freeze(principalFromClaims(payload));
    // jwtVerify required both: `exp` always, `iat` through the maximum token age.
    const expiresAt = Math.min(payload.exp! * 1000, payload.iat! * 1000 + policy.maxTokenAgeMs);
    const result = Object.freeze({ principal, expiresAt });
    const until = Math.min(now + CACHE_MS, expiresAt);
    if (verified.size >= CACHE_MAX) verified.delete(verified.keys().next().value!);
    // Keyed by a copy: the token is often a slice of a header that would stay alive with it.
    verified.set(Buffer.from(token).toString(), { token: result, until });
    return result;
  };
  return {
    verifyToken,
    async verify(token) {
      return (await verifyToken(token)).principal;
    },
  };
}

async function buildVerify(config: AuthConfig, policy: TokenPolicy): Promise<Verify> {
  // A token without `exp` would be valid forever; `iat` bounds its age whatever `exp` says;
  // `iss` / `aud` keep out tokens the same identity provider issued for other applications.
  const options = (algorithms: string[]): JWTVerifyOptions => ({
    algorithms,
    requiredClaims: ['exp', 'iat'],
    maxTokenAge: Math.floor(policy.maxTokenAgeMs / 1000),
    ...(policy.issuer ? { issuer: policy.issuer } : {}),
    ...(policy.audience ? { audience: policy.audience } : {}),
  });
  switch (config.kind) {
    case 'hs256': {
      // Imported once: given the raw bytes, jose imports the key again for every token
      // (a third to a half of the CPU a verification takes).
      const secret = await crypto.subtle.importKey(
        'raw',
        new TextEncoder().encode(config.secret),
        { name: 'HMAC', hash: 'SHA-256' },
        false,
        ['verify'],
      );
      const opts = options(['HS256']);
      return async (token) => (await jwtVerify(token, secret, opts)).payload;
    }
    case 'public-key': {
      const key = await importSPKI(config.publicKeyPem, config.algorithm);
      const opts = options([config.algorithm]);
      return async (token) => (await jwtVerify(token, key, opts)).payload;
    }
    case 'jwks': {
      const keySet = createRemoteJWKSet(new URL(config.url));
      const opts = options(['ES256', 'RS256']);
      return async (token) => (await jwtVerify(token, keySet, opts)).payload;
    }
  }
}

export function principalFromClaims(payload: JWTPayload): Principal {
  const { sub, did, name, roles } = payload as JWTPayload & Record<string, unknown>;
  if (typeof sub !== 'string' || sub === '' || sub.length > 200) {
    throw new ConstatError('UNAUTHENTICATED', 'token has no usable "sub" claim');
  }
  if (typeof did !== 'string' || did === '' || did.length > 200) {
    throw new ConstatError('UNAUTHENTICATED', 'token has no usable "did" (device id) claim');
  }
  if (
    roles !== undefined &&
    (!Array.isArray(roles) || !roles.every((r) => typeof r === 'string'))
  ) {
    throw new ConstatError('UNAUTHENTICATED', 'token "roles" claim must be a list of strings');
  }
  return {
    userId: sub,
    deviceId: did,
    name: typeof name === 'string' ? name : undefined,
    roles: (roles as string[] | undefined) ?? [],
  };
}

/** Pulls the bearer token out of an `Authorization` header value. */
export function bearerToken(header: string | undefined | null): string | undefined {
  if (!header) return undefined;
  const match = /^Bearer\s+(\S+)$/i.exec(header.trim());
  return match?.[1];
}

export interface MintOptions {
  secret: string;
  userId: string;
  deviceId: string;
  name?: string;
  roles?: string[];
  expiresIn?: string | number;
  issuer?: string;
  audience?: string;
}

/** Mints an HS256 token, for development and tests (`constat token`). */
export async function mintDevelopmentToken(opts: MintOptions): Promise<string> {
  const claims: Record<string, unknown> = { did: opts.deviceId };
  if (opts.name) claims.name = opts.name;
  if (opts.roles && opts.roles.length > 0) claims.roles = opts.roles;
  const jwt = new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(opts.userId)
    .setIssuedAt()
    .setExpirationTime(opts.expiresIn ?? '12h');
  if (opts.issuer) jwt.setIssuer(opts.issuer);
  if (opts.audience) jwt.setAudience(opts.audience);
  return jwt.sign(new TextEncoder().encode(opts.secret));
}
