/**
 * API clients of insurers (migration 0012): the public key their client assertions verify
 * against, the secrets their request bodies are signed with, and the assertion ids already
 * used (replay protection).
 */
import type postgres from 'postgres';
import type { StoredSecret } from './webhook-deliveries-repository.js';

export interface InsurerClient {
  clientId: string;
  company: string;
  publicJwk: Record<string, unknown>;
  bodySecrets: StoredSecret[];
  /** False when revoked or the company is inactive. */
  usable: boolean;
  createdAt: Date;
}

export interface InsurerClientsRepository {
  create(client: {
    clientId: string;
    company: string;
    publicJwk: Record<string, unknown>;
    bodySecrets: StoredSecret[];
  }): Promise<void>;
  get(clientId: string): Promise<InsurerClient | null>;
  list(company?: string): Promise<InsurerClient[]>;
  /** Records an assertion id; false when it was already used (a replay). */
  useAssertion(clientId: string, jti: string, expiresAt: Date): Promise<boolean>;
  setBodySecrets(clientId: string, secrets: StoredSecret[]): Promise<void>;
  revoke(clientId: string): Promise<boolean>;
}

interface Row {
  client_id: string;
  company: string;
  public_jwk: Record<string, unknown>;
  body_secrets: StoredSecret[];
  usable: boolean;
  created_at: Date;
}

const toClient = (r: Row): InsurerClient => ({
  clientId: r.client_id,
  company: r.company,
  publicJwk: r.public_jwk,
  bodySecrets: r.body_secrets,
  usable: r.usable,
  createdAt: r.created_at,
});

export function createInsurerClientsRepository(sql: postgres.Sql): InsurerClientsRepository {
  const select = sql`
    select k.client_id, k.company, k.public_jwk, k.body_secrets, k.created_at,
      (k.revoked_at is null and c.active) as usable
    from insurer_clients k join companies c on c.uid = k.company
  `;
  return {
    async create(client) {
      await sql`
        insert into insurer_clients (client_id, company, public_jwk, body_secrets)
        values (${client.clientId}, ${client.company},
          ${sql.json(client.publicJwk as postgres.JSONValue)},
          ${sql.json(client.bodySecrets as unknown as postgres.JSONValue)})
      `;
    },
    async get(clientId) {
      const [row] = await sql<Row[]>`${select} where k.client_id = ${clientId}`;
      return row ? toClient(row) : null;
    },
    async list(company) {
      const rows = await sql<Row[]>`
        ${select} ${company ? sql`where k.company = ${company}` : sql``} order by k.created_at
      `;
      return rows.map(toClient);
    },
    async useAssertion(clientId, jti, expiresAt) {
      // The primary key is the check: two instances given the same assertion at once cannot
      // both insert it. Expired ids are swept here, now and then.
      if (Math.random() < 0.01) await sql`delete from insurer_assertions where expires_at < now()`;
      const rows = await sql`
        insert into insurer_assertions (client_id, jti, expires_at)
        values (${clientId}, ${jti}, ${expiresAt})
        on conflict do nothing
        returning 1
      `;
      return rows.length > 0;
    },
    async setBodySecrets(clientId, secrets) {
      await sql`
        update insurer_clients set body_secrets = ${sql.json(secrets as unknown as postgres.JSONValue)}
        where client_id = ${clientId}
      `;
    },
    async revoke(clientId) {
      const rows = await sql`
        update insurer_clients set revoked_at = now()
        where client_id = ${clientId} and revoked_at is null
        returning 1
      `;
      return rows.length > 0;
    },
  };
}
