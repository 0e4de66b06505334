/**
 * The company registry: insurers a constat may name; each uid is also a Kafka topic. Besides
 * the seed and the list the server reads, the operator's changes (`constat companies`).
 */
import type postgres from 'postgres';
import type { StoredSecret } from './webhook-deliveries-repository.js';

export type DeliveryMode = 'kafka' | 'webhook' | 'both';

export interface CompanyRow {
  uid: string;
  name: string;
  kind: string;
  active: boolean;
  /** CloudEvents content mode of core's events on the company's topic. */
  eventMode: 'structured' | 'binary';
  /** Which channel carries core's events to the company. */
  delivery: DeliveryMode;
  webhookUrl: string | null;
  webhookDisabledAt: Date | null;
  webhookDisabledReason: string | null;
  webhookFailingSince: Date | null;
}

export interface CompaniesRepository {
  /** Inserts the companies that are missing; never overwrites an operator's edits. */
  seed(companies: ReadonlyArray<{ uid: string; name: string; kind: string }>): Promise<number>;
  list(): Promise<CompanyRow[]>;
  /** False when the uid is taken. */
  add(company: { uid: string; name: string; kind: string }): Promise<boolean>;
  /**
   * Sets the delivery mode (and the endpoint, when given): a new endpoint is enabled and its
   * run of failures forgotten. False when there is no such company.
   */
  setDelivery(uid: string, mode: DeliveryMode, webhookUrl?: string): Promise<boolean>;
  webhookSecrets(uid: string): Promise<StoredSecret[] | null>;
  setWebhookSecrets(uid: string, secrets: StoredSecret[]): Promise<void>;
  /** Re-enables a disabled endpoint (deliveries that waited go out). */
  enableWebhook(uid: string): Promise<boolean>;
  setActive(uid: string, active: boolean): Promise<boolean>;
}

export function createCompaniesRepository(sql: postgres.Sql): CompaniesRepository {
  return {
    async seed(companies) {
      let inserted = 0;
      for (const c of companies) {
        const rows = await sql`
          insert into companies (uid, name, kind) values (${c.uid}, ${c.name}, ${c.kind})
          on conflict (uid) do nothing
          returning 1
        `;
        inserted += rows.length;
      }
      return inserted;
    },
    async list() {
      return sql<CompanyRow[]>`
        select uid, name, kind, active, event_mode as "eventMode", delivery,
          webhook_url as "webhookUrl", webhook_disabled_at as "webhookDisabledAt",
          webhook_disabled_reason as "webhookDisabledReason",
          webhook_failing_since as "webhookFailingSince"
        from companies order by uid
      `;
    },
    async add(c) {
      const rows = await sql`
        insert into companies (uid, name, kind) values (${c.uid}, ${c.name}, ${c.kind})
        on conflict (uid) do nothing
        returning 1
      `;
      return rows.length > 0;
    },
    async setDelivery(uid, mode, webhookUrl) {
      const rows = await sql`
        update companies set delivery = ${mode}
          ${
            webhookUrl === undefined
              ? sql``
              : sql`, webhook_url = ${webhookUrl}, webhook_disabled_at = null,
                  webhook_disabled_reason = null, webhook_failing_since = null`
          }
        where uid = ${uid}
        returning 1
      `;
      return rows.length > 0;
    },
    async webhookSecrets(uid) {
      const [row] = await sql<{ secrets: StoredSecret[] }[]>`
        select webhook_secrets as secrets from companies where uid = ${uid}
      `;
      return row ? row.secrets : null;
    },
    async setWebhookSecrets(uid, secrets) {
      await sql`update companies set webhook_secrets = ${sql.json(secrets as unknown as postgres.JSONValue)} where uid = ${uid}`;
    },
    async enableWebhook(uid) {
      const rows = await sql`
        update companies set webhook_disabled_at = null, webhook_disabled_reason = null,
          webhook_failing_since = null
        where uid = ${uid}
        returning 1
      `;
      return rows.length > 0;
    },
    async setActive(uid, active) {
      const rows =
        await sql`update companies set active = ${active} where uid = ${uid} returning 1`;
      return rows.length > 0;
    },
  };
}
