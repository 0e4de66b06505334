/**
 * Authentication of insurers' systems: OAuth 2.0 client credentials (RFC 6749 §4.4) with a
 * signed JWT client assertion (RFC 7523, `private_key_jwt`). The insurer keeps its private key;
 * the registry holds the public JWK (`constat companies credentials`). An assertion is accepted
 * once (its `jti`), for at most 5 minutes, only for this server's token endpoint (`aud`); the
 * access token issued for it names the company and lives INSURER_TOKEN_TTL_S.
 */
import { randomUUID } from 'node:crypto';
import {
  decodeJwt,
  decodeProtectedHeader,
  importJWK,
  jwtVerify,
  SignJWT,
  errors as joseErrors,
  type JWK,
} from 'jose';
import type { InsurerClientsRepository } from '../persistence/insurer-clients-repository.js';

export const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
export const TOKEN_PATH = '/v1/oauth/token';
const ASSERTION_ALGORITHMS = ['ES256', 'EdDSA', 'RS256', 'PS256'];
const MAX_ASSERTION_LIFETIME_S = 300;
const ISSUER = 'constat';
const AUDIENCE = 'constat-insurer-api';

/** An OAuth error (RFC 6749 §5.2), rendered as `{ error, error_description }`. */
export class OAuthError extends Error {
  constructor(
    readonly code:
      'invalid_request' | 'invalid_client' | 'unsupported_grant_type' | 'invalid_token',
    message: string,
    readonly status: 400 | 401,
  ) {
    super(message);
  }
}

export interface InsurerPrincipal {
  company: string;
  clientId: string;
}

export interface InsurerAuth {
  /** The token endpoint: form fields in, access token out (throws OAuthError). */
  issueToken(
    form: Record<string, string>,
    tokenUrls: readonly string[],
  ): Promise<{ access_token: string; token_type: 'Bearer'; expires_in: number }>;
  /** The company an access token speaks for; the client must still be usable. */
  verifyToken(token: string): Promise<InsurerPrincipal>;
}

export function createInsurerAuth(
  clients: InsurerClientsRepository,
  settings: { tokenSecret: string; tokenTtlSeconds: number },
): InsurerAuth {
  const secret = new TextEncoder().encode(settings.tokenSecret);
  const invalidClient = (why: string) => new OAuthError('invalid_client', why, 401);
  return {
    async issueToken(form, tokenUrls) {
      if (form.grant_type !== 'client_credentials') {
        throw new OAuthError(
          'unsupported_grant_type',
          'grant_type must be client_credentials',
          400,
        );
      }
      if (form.client_assertion_type !== ASSERTION_TYPE || !form.client_assertion) {
        throw new OAuthError(
          'invalid_request',
          `client_assertion and client_assertion_type=${ASSERTION_TYPE} are required`,
          400,
        );
      }
      const assertion = form.client_assertion;
      let clientId: string | undefined;
      try {
        clientId = decodeJwt(assertion).iss;
        decodeProtectedHeader(assertion);
      } catch {
        throw invalidClient('client_assertion is not a JWT');
      }
      if (!clientId || (form.client_id !== undefined && form.client_id !== clientId)) {
        throw invalidClient('the assertion names no client, or another one than client_id');
      }
      const client = await clients.get(clientId);
      if (!client?.usable) throw invalidClient('unknown or revoked client');
      let payload;
      try {
        const key = await importJWK(client.publicJwk as JWK);
        ({ payload } = await jwtVerify(assertion, key, {
          issuer: clientId,
          subject: clientId,
          audience: [...tokenUrls],
          algorithms: ASSERTION_ALGORITHMS,
          requiredClaims: ['exp', 'jti'],
          clockTolerance: 30,
        }));
      } catch (err) {
        throw invalidClient(
          err instanceof joseErrors.JOSEError ? `assertion refused: ${err.message}` : 'bad key',
        );
      }
      const now = Math.floor(Date.now() / 1000);
      if (payload.exp! - now > MAX_ASSERTION_LIFETIME_S) {
        throw invalidClient(`an assertion may live ${MAX_ASSERTION_LIFETIME_S} s at most`);
      }
      if (
        !(await clients.useAssertion(clientId, String(payload.jti), new Date(payload.exp! * 1000)))
      ) {
        throw invalidClient('this assertion was already used');
      }
      const accessToken = await new SignJWT({ cid: clientId, scope: 'events:write constats:read' })
        .setProtectedHeader({ alg: 'HS256', typ: 'at+jwt' })
        .setIssuer(ISSUER)
        .setAudience(AUDIENCE)
        .setSubject(client.company)
        .setJti(randomUUID())
        .setIssuedAt(now)
        .setExpirationTime(now + settings.tokenTtlSeconds)
        .sign(secret);
      return {
        access_token: accessToken,
        token_type: 'Bearer',
        expires_in: settings.tokenTtlSeconds,
      };
    },

    async verifyToken(token) {
      let company: string | undefined;
      let clientId: unknown;
      try {
        const { payload } = await jwtVerify(token, secret, {
          issuer: ISSUER,
          audience: AUDIENCE,
          algorithms: ['HS256'],
          typ: 'at+jwt',
        });
        company = payload.sub;
        clientId = payload.cid;
      } catch {
        throw new OAuthError('invalid_token', 'invalid or expired access token', 401);
      }
      if (!company || typeof clientId !== 'string') {
        throw new OAuthError('invalid_token', 'invalid access token', 401);
      }
      // Revoking a client (or disabling its company) takes effect at once, not at expiry.
      const client = await clients.get(clientId);
      if (!client?.usable || client.company !== company) {
        throw new OAuthError('invalid_token', 'the client was revoked', 401);
      }
      return { company, clientId };
    },
  };
}
