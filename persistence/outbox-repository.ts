/**
 * The outbox: events written in the same transaction as what they announce, published later
 * by the relay. `claim` locks a batch (FOR UPDATE SKIP LOCKED) inside a transaction the caller
 * keeps open while publishing, so two relays never publish the same row at once. Rows of a
 * company that takes webhooks only (`kafka` false, migration 0011) are not Kafka's to publish.
 */
import type postgres from 'postgres';

export interface OutboxRow {
  id: string;
  topic: string;
  key: string;
  payload: unknown;
  headers: Record<string, string>;
  attempts: number;
}

export interface OutboxBatch {
  rows: OutboxRow[];
  markSent(ids: string[]): Promise<void>;
  markFailed(ids: string[], error: string, retryInMs: number): Promise<void>;
}

export interface OutboxRepository {
  /** Runs `publish` on a locked batch of due rows, in one transaction. */
  withBatch<T>(limit: number, publish: (batch: OutboxBatch) => Promise<T>): Promise<T | undefined>;
  /** Whether any row is due (one statement, no lock): an idle poll asks this first. */
  due(): Promise<boolean>;
  backlog(): Promise<{ pending: number; oldestAgeSeconds: number }>;
  /**
   * Every row of a topic, sent or not, after a position (created_at, id), oldest first: how
   * the embedded AI service reads finalized constats when there is no broker. `createdAt` is
   * text with the column's full (microsecond) precision: a JavaScript Date would cut it to
   * milliseconds and the row at the position would be read again and again (and the value is
   * passed as text: postgres.js would serialise a timestamptz parameter through a Date).
   */
  readTopic(
    topic: string,
    after: { createdAt: string; id: string } | undefined,
    limit: number,
  ): Promise<Array<{ id: string; createdAt: string; payload: unknown }>>;
}

interface Row {
  id: string;
  topic: string;
  message_key: string;
  payload: unknown;
  headers: Record<string, string>;
  attempts: number;
}

export function createOutboxRepository(sql: postgres.Sql): OutboxRepository {
  return {
    async withBatch<T>(
      limit: number,
      publish: (batch: OutboxBatch) => Promise<T>,
    ): Promise<T | undefined> {
      return sql.begin(async (tx) => {
        const rows = await tx<Row[]>`
          select id, topic, message_key, payload, headers, attempts from outbox
          where sent_at is null and kafka and next_attempt_at <= now()
          order by created_at
          limit ${limit}
          for update skip locked
        `;
        if (rows.length === 0) return undefined;
        return publish({
          rows: rows.map((r) => ({
            id: r.id,
            topic: r.topic,
            key: r.message_key,
            payload: r.payload,
            headers: r.headers,
            attempts: r.attempts,
          })),
          async markSent(ids) {
            await tx`update outbox set sent_at = now(), attempts = attempts + 1, last_error = null where id = any(${tx.array(ids)}::uuid[])`;
          },
          async markFailed(ids, error, retryInMs) {
            await tx`
              update outbox
              set attempts = attempts + 1, last_error = ${error.slice(0, 2000)},
                next_attempt_at = now() + ${retryInMs} * interval '1 millisecond'
              where id = any(${tx.array(ids)}::uuid[])
            `;
          },
        });
      }) as Promise<T | undefined>;
    },
    async due() {
      const [row] = await sql<{ due: boolean }[]>`
        select exists (
          select 1 from outbox where sent_at is null and kafka and next_attempt_at <= now()
        ) as due
      `;
      return row?.due ?? false;
    },
    async readTopic(topic, after, limit) {
      const rows = await sql<{ id: string; created_at: string; payload: unknown }[]>`
        select id, created_at::text as created_at, payload from outbox
        where topic = ${topic}
          ${after ? sql`and (created_at, id) > (${after.createdAt}::text::timestamptz, ${after.id}::uuid)` : sql``}
        order by created_at, id
        limit ${limit}
      `;
      return rows.map((r) => ({ id: r.id, createdAt: r.created_at, payload: r.payload }));
    },
    async backlog() {
      const [row] = await sql<{ pending: string; oldest: number | null }[]>`
        select count(*) as pending, extract(epoch from now() - min(created_at))::float8 as oldest
        from outbox where sent_at is null and kafka
      `;
      return { pending: Number(row?.pending ?? 0), oldestAgeSeconds: row?.oldest ?? 0 };
    },
  };
}
