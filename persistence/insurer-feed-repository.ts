/**
 * The constats an insurer polls for (`GET /v1/insurers/{uid}/constats?since=…`): those naming
 * it as party A's or B's insurer, oldest first after a position (finalization time, id).
 *
 * A row only appears once it has settled for SETTLE_SECONDS: `finalized_at` is its transaction's
 * start, so a transaction that commits late could otherwise land behind a position a poller has
 * already passed, and be skipped for good.
 */
import type postgres from 'postgres';

export const SETTLE_SECONDS = 5;

export interface FeedRow {
  id: string;
  sessionId: string;
  formVersion: string;
  contentHash: string;
  insurerA: string | null;
  insurerB: string | null;
  finalizedAt: Date;
  /** Exact finalization time (microseconds, UTC text), for the next cursor. */
  position: string;
}

export interface InsurerFeedRepository {
  page(
    company: string,
    after: { position: string; id: string } | undefined,
    limit: number,
  ): Promise<{ rows: FeedRow[]; hasMore: boolean }>;
}

export function createInsurerFeedRepository(sql: postgres.Sql): InsurerFeedRepository {
  return {
    async page(company, after, limit) {
      const rows = await sql<FeedRow[]>`
        select id, session_id as "sessionId", form_version as "formVersion",
          content_hash as "contentHash", insurer_a as "insurerA", insurer_b as "insurerB",
          finalized_at as "finalizedAt",
          to_char(finalized_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as position
        from constats
        where (insurer_a = ${company} or insurer_b = ${company})
          and finalized_at < now() - ${SETTLE_SECONDS} * interval '1 second'
          ${after ? sql`and (finalized_at, id) > (${after.position}::text::timestamptz, ${after.id}::uuid)` : sql``}
        order by finalized_at, id
        limit ${limit + 1}
      `;
      return { rows: rows.slice(0, limit), hasMore: rows.length > limit };
    },
  };
}
