/**
 * An insurer's side of the REST API, as a small client (the local stack's webhook insurer and
 * the benchmark): a client assertion signed with its private key, an access token kept until
 * shortly before it expires, and claim events signed per Standard Webhooks.
 */
import { randomUUID } from 'node:crypto';
import { importJWK, SignJWT, type JWK } from 'jose';
import { signatureHeaders } from '../../integrations/webhook-signature.js';

export interface InsurerCredentials {
  company: string;
  clientId: string;
  /** `whsec_…`: signs request bodies. */
  bodySecret: string;
  privateJwk: JWK;
}

/** Reads what `constat companies credentials <uid>` printed. */
export function parseCredentials(company: string, printed: string): InsurerCredentials {
  const clientId = /client_id: (\S+)/.exec(printed)?.[1];
  const bodySecret = /body signing secret[^:]*: (whsec_\S+)/.exec(printed)?.[1];
  const jwk = /private key \(JWK[^:]*: (\{.*\})/.exec(printed)?.[1];
  if (!clientId || !bodySecret || !jwk)
    throw new Error(`unexpected credentials output: ${printed}`);
  return { company, clientId, bodySecret, privateJwk: JSON.parse(jwk) as JWK };
}

export class InsurerRestClient {
  #token: { value: string; until: number } | undefined;

  constructor(
    readonly baseUrl: string,
    readonly credentials: InsurerCredentials,
  ) {}

  async token(): Promise<string> {
    if (this.#token && this.#token.until > Date.now()) return this.#token.value;
    const { clientId, privateJwk } = this.credentials;
    const alg = (privateJwk.alg as string | undefined) ?? 'ES256';
    const assertion = await new SignJWT({})
      .setProtectedHeader({ alg })
      .setIssuer(clientId)
      .setSubject(clientId)
      .setAudience(`${this.baseUrl}/v1/oauth/token`)
      .setJti(randomUUID())
      .setIssuedAt()
      .setExpirationTime('2m')
      .sign(await importJWK(privateJwk, alg));
    const res = await fetch(`${this.baseUrl}/v1/oauth/token`, {
      method: 'POST',
      body: new URLSearchParams({
        grant_type: 'client_credentials',
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
        client_assertion: assertion,
      }),
    });
    const body = (await res.json()) as {
      access_token?: string;
      expires_in?: number;
      error?: string;
    };
    if (!res.ok || !body.access_token) throw new Error(`token refused: ${JSON.stringify(body)}`);
    this.#token = {
      value: body.access_token,
      until: Date.now() + ((body.expires_in ?? 60) - 30) * 1000,
    };
    return body.access_token;
  }

  /** POSTs one CloudEvent (structured mode); resolves with the HTTP status and answer. */
  async postEvent(event: object): Promise<{ status: number; body: unknown }> {
    const body = JSON.stringify(event);
    const res = await fetch(`${this.baseUrl}/v1/insurers/${this.credentials.company}/events`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${await this.token()}`,
        'content-type': 'application/cloudevents+json',
        ...signatureHeaders([this.credentials.bodySecret], `msg_${randomUUID()}`, body),
      },
      body,
    });
    return { status: res.status, body: await res.json() };
  }
}
