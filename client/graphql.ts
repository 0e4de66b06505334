/**
 * What a phone says to the server over GraphQL, and the development tokens it carries: open a
 * session, join it by code, register a device key, sign, read the session. Tokens are minted
 * with the development secret (`AUTH_JWT_SECRET`, or the built-in one), as `constat token` does.
 */
import { DEVELOPMENT_JWT_SECRET } from '../server/config.js';
import { mintDevelopmentToken } from '../server/auth.js';
import type { Role } from '../constat/permissions.js';

export type { Role };

export interface GraphQLError {
  message: string;
  extensions?: { code?: string; [k: string]: unknown };
}

export interface GraphQLResponse<T = Record<string, unknown>> {
  status: number;
  data: T | null | undefined;
  errors: GraphQLError[] | undefined;
}

/** The secret the server verifies development tokens with. */
export function developmentSecret(env: NodeJS.ProcessEnv = process.env): string {
  return env.AUTH_JWT_SECRET || DEVELOPMENT_JWT_SECRET;
}

/** A token for the simulated phone; `iss` / `aud` as the server expects them when set. */
export function mintToken(
  secret: string,
  userId: string,
  deviceId: string,
  extra: { roles?: string[] } = {},
): Promise<string> {
  return mintDevelopmentToken({
    secret,
    userId,
    deviceId,
    expiresIn: '2h',
    issuer: process.env.AUTH_JWT_ISSUER,
    audience: process.env.AUTH_JWT_AUDIENCE,
    ...extra,
  });
}

export async function gql<T = Record<string, any>>(
  baseUrl: string,
  bearer: string | undefined,
  query: string,
  variables: Record<string, unknown> = {},
  timeoutMs = 30_000,
): Promise<GraphQLResponse<T>> {
  const res = await fetch(`${baseUrl}/graphql`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(bearer ? { authorization: `Bearer ${bearer}` } : {}),
    },
    body: JSON.stringify({ query, variables }),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await res.text();
  let body: { data?: T; errors?: GraphQLError[] };
  try {
    body = JSON.parse(text) as typeof body;
  } catch {
    throw new GraphQLCallError(`HTTP ${res.status} from ${baseUrl}/graphql: ${text.slice(0, 200)}`);
  }
  return { status: res.status, data: body.data, errors: body.errors };
}

/** A GraphQL call that failed; `code` is the first error's `extensions.code`. */
export class GraphQLCallError extends Error {
  constructor(
    message: string,
    readonly code?: string,
  ) {
    super(message);
    this.name = 'GraphQLCallError';
  }
}

/** The data of a call that must succeed; throws a GraphQLCallError naming the operation. */
export async function mustGql<T>(
  what: string,
  baseUrl: string,
  bearer: string | undefined,
  query: string,
  variables: Record<string, unknown> = {},
): Promise<T> {
  const res = await gql<T>(baseUrl, bearer, query, variables);
  if (res.errors?.length || !res.data) {
    const first = res.errors?.[0];
    throw new GraphQLCallError(
      `${what} failed: ${first?.message ?? `HTTP ${res.status}`}`,
      first?.extensions?.code,
    );
  }
  return res.data;
}

/** The first error's `extensions.code` (undefined when the call succeeded). */
export function errorCode(res: GraphQLResponse<unknown>): string | undefined {
  return res.errors?.[0]?.extensions?.code;
}

// The documents the phone sends. Their selections are what the simulator, the benchmarks and
// the tests read back (the tests check more of the answer than the simulator does).

export const OPEN_SESSION = `mutation Open($formVersion: String) {
  openSession(formVersion: $formVersion) { role joinCode qrPayload syncUrl joinCodeExpiresAt session { id status formVersion } }
}`;

export const JOIN_SESSION = `mutation Join($code: String!) {
  joinSession(code: $code) { role syncUrl session { id status parties { role userId deviceId } } }
}`;

export const REGISTER_DEVICE = `mutation Register($publicKey: String!) {
  registerDevice(publicKey: $publicKey) { userId deviceId publicKey registeredAt updatedAt }
}`;

const SESSION_FIELDS = `id status myRole constatId contentHash
  signatures { role hash signature userId deviceId signedAt }`;

export const SIGN_CONSTAT = `mutation Sign($sessionId: ID!, $contentHash: String!, $signature: String!) {
  signConstat(sessionId: $sessionId, contentHash: $contentHash, signature: $signature) { ${SESSION_FIELDS} }
}`;

export const SESSION = `query Session($id: ID!) { session(id: $id) { ${SESSION_FIELDS} } }`;

export const ABANDON_SESSION = `mutation Abandon($sessionId: ID!) {
  abandonSession(sessionId: $sessionId) { id status }
}`;

export const INSURERS = `query { insurers { uid } }`;

export interface SessionView {
  id: string;
  status: string;
  myRole: Role;
  constatId: string | null;
  contentHash: string;
  signatures: Array<{
    role: Role;
    hash: string;
    signature: string;
    userId: string;
    deviceId: string;
    signedAt: string;
  }>;
}

export interface OpenedPair {
  sessionId: string;
  joinCode: string;
  tokenA: string;
  tokenB: string;
  /** The websocket base both devices connect to (the room is the session id). */
  syncBaseA: string;
  syncBaseB: string;
}

/** Opens a session as A on `urlA` and joins it as B on `urlB` (two instances, or the same). */
export async function openAndJoin(
  urls: { a: string; b: string },
  secret: string,
  tag: string,
): Promise<OpenedPair> {
  const tokenA = await mintToken(secret, `sim-user-a-${tag}`, `sim-phone-a-${tag}`);
  const tokenB = await mintToken(secret, `sim-user-b-${tag}`, `sim-phone-b-${tag}`);
  const opened = await mustGql<{
    openSession: { joinCode: string; syncUrl: string; session: { id: string } };
  }>('openSession', urls.a, tokenA, OPEN_SESSION, { formVersion: 'dz' });
  const joinCode = opened.openSession.joinCode;
  const joined = await mustGql<{ joinSession: { syncUrl: string } }>(
    'joinSession',
    urls.b,
    tokenB,
    JOIN_SESSION,
    { code: joinCode },
  );
  return {
    sessionId: opened.openSession.session.id,
    joinCode,
    tokenA,
    tokenB,
    syncBaseA: syncBase(opened.openSession.syncUrl),
    syncBaseB: syncBase(joined.joinSession.syncUrl),
  };
}

/** The provider's server URL: the session's syncUrl without its last segment (the room). */
export function syncBase(syncUrl: string): string {
  return syncUrl.replace(/\/[^/]*$/, '');
}
