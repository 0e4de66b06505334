/**
 * The webhook channel's deliveries (one per event and company, routed from the outbox by the
 * trigger of migration 0011). Senders on every instance share the work through leases: a
 * claimed row is held until `leased_until`, so a sender that died mid-attempt delays its row
 * by the lease and nothing else. Order per (company, constat) is kept by claiming only the
 * oldest pending delivery of each constat.
 */
import type postgres from 'postgres';

export interface ClaimedDelivery {
  id: string;
  company: string;
  eventId: string;
  orderingKey: string;
  attempts: number;
  payload: unknown;
  createdAt: Date;
}

/** A Standard Webhooks secret and when it stops being used (null: current), newest first. */
export interface StoredSecret {
  secret: string;
  expiresAt: string | null;
}

export interface WebhookEndpoint {
  url: string;
  secrets: StoredSecret[];
}

export interface DeliveryRow {
  id: string;
  company: string;
  eventId: string;
  orderingKey: string;
  status: 'pending' | 'delivered' | 'dead';
  attempts: number;
  lastStatus: number | null;
  lastError: string | null;
  nextAttemptAt: Date;
  createdAt: Date;
  deadAt: Date | null;
}

export interface FailingEndpoint {
  company: string;
  url: string | null;
  failingSince: Date | null;
  disabledAt: Date | null;
  disabledReason: string | null;
  pending: number;
  dead: number;
}

export interface WebhookDeliveriesRepository {
  /** Companies with a delivery due now whose endpoint is set and enabled. */
  dueCompanies(limit: number): Promise<string[]>;
  /** Leases up to `limit` due deliveries of a company, at most one per constat, oldest first. */
  claim(
    company: string,
    limit: number,
    leaseMs: number,
  ): Promise<{ endpoint: WebhookEndpoint | null; deliveries: ClaimedDelivery[] }>;
  delivered(id: string, status: number): Promise<void>;
  /** A failed attempt: retried after `retryInMs`, or dead-lettered when it is null. */
  failed(
    id: string,
    outcome: { status: number | null; error: string; retryInMs: number | null },
  ): Promise<void>;
  /** The endpoint answered: its run of failures ends. */
  endpointSucceeded(company: string): Promise<void>;
  /** The endpoint failed: starts (or continues) its run; disables it past `disableAfterMs`. */
  endpointFailed(company: string, disableAfterMs: number): Promise<{ disabled: boolean }>;
  disableEndpoint(company: string, reason: string): Promise<void>;
  failing(): Promise<FailingEndpoint[]>;
  dead(company: string | undefined, limit: number): Promise<DeliveryRow[]>;
  /** Dead deliveries back to pending with a fresh schedule: one by id, or all of a company's. */
  replay(which: { id: string } | { company: string }): Promise<number>;
  get(id: string): Promise<DeliveryRow | null>;
}

interface Row {
  id: string;
  company: string;
  event_id: string;
  ordering_key: string;
  status: DeliveryRow['status'];
  attempts: number;
  last_status: number | null;
  last_error: string | null;
  next_attempt_at: Date;
  created_at: Date;
  dead_at: Date | null;
}

const toDelivery = (r: Row): DeliveryRow => ({
  id: r.id,
  company: r.company,
  eventId: r.event_id,
  orderingKey: r.ordering_key,
  status: r.status,
  attempts: r.attempts,
  lastStatus: r.last_status,
  lastError: r.last_error,
  nextAttemptAt: r.next_attempt_at,
  createdAt: r.created_at,
  deadAt: r.dead_at,
});

export function createWebhookDeliveriesRepository(sql: postgres.Sql): WebhookDeliveriesRepository {
  return {
    async dueCompanies(limit) {
      const rows = await sql<{ company: string }[]>`
        select distinct d.company from webhook_deliveries d
        join companies c on c.uid = d.company
        where d.status = 'pending' and d.next_attempt_at <= now()
          and (d.leased_until is null or d.leased_until < now())
          and c.active and c.webhook_url is not null and c.webhook_disabled_at is null
        limit ${limit}
      `;
      return rows.map((r) => r.company);
    },

    async claim(company, limit, leaseMs) {
      const [endpoint] = await sql<{ url: string | null; secrets: StoredSecret[] }[]>`
        select webhook_url as url, webhook_secrets as secrets from companies
        where uid = ${company} and active and webhook_disabled_at is null
      `;
      if (!endpoint?.url) return { endpoint: null, deliveries: [] };
      // "Oldest pending of its constat" inside the statement: a check made before the update
      // would race with another instance's claim. A leased earlier delivery is still pending,
      // so the next one of that constat waits for its outcome.
      const rows = await sql<
        Array<{
          id: string;
          event_id: string;
          ordering_key: string;
          attempts: number;
          created_at: Date;
          payload: unknown;
        }>
      >`
        update webhook_deliveries w set leased_until = now() + ${leaseMs} * interval '1 millisecond'
        from outbox o
        where o.id = w.outbox_id and w.id in (
          select d.id from webhook_deliveries d
          where d.company = ${company} and d.status = 'pending' and d.next_attempt_at <= now()
            and (d.leased_until is null or d.leased_until < now())
            and not exists (
              select 1 from webhook_deliveries e
              where e.company = d.company and e.ordering_key = d.ordering_key
                and e.status = 'pending' and e.id < d.id
            )
          order by d.id
          limit ${limit}
          for update of d skip locked
        )
        returning w.id, w.event_id, w.ordering_key, w.attempts, w.created_at, o.payload
      `;
      return {
        endpoint: { url: endpoint.url, secrets: endpoint.secrets },
        deliveries: rows
          .map((r) => ({
            id: r.id,
            company,
            eventId: r.event_id,
            orderingKey: r.ordering_key,
            attempts: r.attempts,
            payload: r.payload,
            createdAt: r.created_at,
          }))
          .sort((a, b) => Number(a.id) - Number(b.id)),
      };
    },

    async delivered(id, status) {
      await sql`
        update webhook_deliveries
        set status = 'delivered', delivered_at = now(), attempts = attempts + 1,
          last_status = ${status}, last_error = null, leased_until = null
        where id = ${id}
      `;
    },

    async failed(id, outcome) {
      const dead = outcome.retryInMs === null;
      await sql`
        update webhook_deliveries
        set attempts = attempts + 1, last_status = ${outcome.status},
          last_error = ${outcome.error.slice(0, 2000)}, leased_until = null,
          status = ${dead ? 'dead' : 'pending'}, dead_at = ${dead ? sql`now()` : null},
          next_attempt_at = now() + ${outcome.retryInMs ?? 0} * interval '1 millisecond'
        where id = ${id}
      `;
    },

    async endpointSucceeded(company) {
      await sql`
        update companies set webhook_failing_since = null
        where uid = ${company} and webhook_failing_since is not null
      `;
    },

    async endpointFailed(company, disableAfterMs) {
      const [row] = await sql<{ disabled: boolean }[]>`
        update companies
        set webhook_failing_since = coalesce(webhook_failing_since, now()),
          webhook_disabled_at = case
            when webhook_failing_since < now() - ${disableAfterMs} * interval '1 millisecond'
              and webhook_disabled_at is null then now()
            else webhook_disabled_at end,
          webhook_disabled_reason = case
            when webhook_failing_since < now() - ${disableAfterMs} * interval '1 millisecond'
              and webhook_disabled_at is null
            then 'failing since ' || to_char(webhook_failing_since at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
            else webhook_disabled_reason end
        where uid = ${company}
        returning webhook_disabled_at is not null as disabled
      `;
      return { disabled: row?.disabled ?? false };
    },

    async disableEndpoint(company, reason) {
      await sql`
        update companies set webhook_disabled_at = now(), webhook_disabled_reason = ${reason}
        where uid = ${company} and webhook_disabled_at is null
      `;
    },

    async failing() {
      const rows = await sql<
        Array<{
          company: string;
          url: string | null;
          failing_since: Date | null;
          disabled_at: Date | null;
          disabled_reason: string | null;
          pending: string;
          dead: string;
        }>
      >`
        select c.uid as company, c.webhook_url as url, c.webhook_failing_since as failing_since,
          c.webhook_disabled_at as disabled_at, c.webhook_disabled_reason as disabled_reason,
          (select count(*) from webhook_deliveries d where d.company = c.uid and d.status = 'pending') as pending,
          (select count(*) from webhook_deliveries d where d.company = c.uid and d.status = 'dead') as dead
        from companies c
        where c.webhook_failing_since is not null or c.webhook_disabled_at is not null
          or exists (select 1 from webhook_deliveries d where d.company = c.uid and d.status = 'dead')
        order by c.uid
      `;
      return rows.map((r) => ({
        company: r.company,
        url: r.url,
        failingSince: r.failing_since,
        disabledAt: r.disabled_at,
        disabledReason: r.disabled_reason,
        pending: Number(r.pending),
        dead: Number(r.dead),
      }));
    },

    async dead(company, limit) {
      const rows = await sql<Row[]>`
        select * from webhook_deliveries
        where status = 'dead' ${company ? sql`and company = ${company}` : sql``}
        order by dead_at, id
        limit ${limit}
      `;
      return rows.map(toDelivery);
    },

    async replay(which) {
      const rows = await sql`
        update webhook_deliveries
        set status = 'pending', attempts = 0, next_attempt_at = now(), dead_at = null,
          leased_until = null
        where status = 'dead' and ${'id' in which ? sql`id = ${which.id}` : sql`company = ${which.company}`}
        returning 1
      `;
      return rows.length;
    },

    async get(id) {
      if (!/^\d{1,18}$/.test(id)) return null;
      const [row] = await sql<Row[]>`select * from webhook_deliveries where id = ${id}`;
      return row ? toDelivery(row) : null;
    },
  };
}
