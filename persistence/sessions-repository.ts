/**
 * Session store in SQL (the embedded default has no Redis): the same contract as the Redis
 * store, with every check-and-set inside its statement so concurrent callers cannot both win.
 */
import type postgres from 'postgres';
import type { AddPartyResult, SessionStore } from '../sync/session-store.js';
import type { Party, SessionRecord } from '../constat/session-record.js';

export function createSessionsRepository(sql: postgres.Sql): SessionStore {
  const json = (value: unknown) => sql.json(value as postgres.JSONValue);
  return {
    async create(session, joinCode, joinCodeTtlMs, maxWaitingPerOpener) {
      return sql.begin(async (tx) => {
        if (maxWaitingPerOpener !== undefined) {
          // Counting and inserting in two statements would let parallel opens by one user all
          // see room for one more; the lock (per opener, released at commit) makes them queue.
          await tx`select pg_advisory_xact_lock(hashtext(${`constat-open:${session.parties.A.userId}`}))`;
          const waiting = await waitingOpenedBy(tx, session.parties.A.userId);
          if (waiting.length >= maxWaitingPerOpener) return 'too-many-waiting' as const;
        }
        // Claims the code unless a live one holds it; an expired row is taken over in place.
        const claimed = await tx`
          insert into join_codes (code, session_id, expires_at)
          values (${joinCode}, ${session.id}, now() + ${joinCodeTtlMs} * interval '1 millisecond')
          on conflict (code) do update set session_id = excluded.session_id, expires_at = excluded.expires_at
          where join_codes.expires_at <= now()
          returning 1
        `;
        if (claimed.length === 0) return 'code-taken' as const;
        await tx`
          insert into sessions (id, record, status, retain_until)
          values (${session.id}, ${json(session)}, ${session.status},
            ${session.expiresAt}::timestamptz + interval '24 hours')
        `;
        return 'created' as const;
      });
    },

    waitingOpenedBy(userId) {
      return waitingOpenedBy(sql, userId);
    },

    async get(id) {
      const [row] = await sql<{ record: SessionRecord }[]>`
        select record from sessions where id = ${id} and retain_until > now()
      `;
      return row ? row.record : null;
    },

    async peekJoinCode(code) {
      const [row] = await sql<{ session_id: string }[]>`
        select session_id from join_codes where code = ${code} and expires_at > now()
      `;
      return row ? row.session_id : null;
    },

    async consumeJoinCode(code, sessionId) {
      const rows = await sql`
        delete from join_codes where code = ${code} and session_id = ${sessionId} and expires_at > now()
        returning 1
      `;
      return rows.length > 0;
    },

    async addPartyB(sessionId: string, party: Party): Promise<AddPartyResult> {
      const [row] = await sql<{ record: SessionRecord }[]>`
        update sessions
        set record = jsonb_set(jsonb_set(record, '{parties,B}', ${json(party)}), '{status}', '"active"'),
          status = 'active'
        where id = ${sessionId} and status = 'waiting' and not (record -> 'parties' ? 'B')
          and retain_until > now()
        returning record
      `;
      if (row) return { ok: true, session: row.record };
      const [current] = await sql<{ record: SessionRecord }[]>`
        select record from sessions where id = ${sessionId} and retain_until > now()
      `;
      if (!current) return { ok: false, reason: 'not-found' };
      return { ok: false, reason: current.record.parties.B ? 'full' : 'closed' };
    },

    async transition(id, from, patch) {
      const [row] = await sql<{ record: SessionRecord }[]>`
        update sessions
        set record = record || ${json(patch)},
          status = coalesce(${patch.status ?? null}, status)
        where id = ${id} and status = any(${sql.array([...from])}) and retain_until > now()
        returning record
      `;
      return row ? row.record : null;
    },

    async recordFailure(key, windowMs) {
      // A window starts at the first failure and the counter restarts once it has ended.
      const [row] = await sql<{ count: number }[]>`
        insert into throttle_counters (key, count, window_ends)
        values (${key}, 1, now() + ${windowMs} * interval '1 millisecond')
        on conflict (key) do update set
          count = case when throttle_counters.window_ends <= now() then 1 else throttle_counters.count + 1 end,
          window_ends = case when throttle_counters.window_ends <= now() then excluded.window_ends
            else throttle_counters.window_ends end
        returning count
      `;
      return row!.count;
    },

    async forgiveFailure(key) {
      await sql`
        update throttle_counters set count = greatest(count - 1, 0)
        where key = ${key} and window_ends > now()
      `;
    },

    async failures(key) {
      const [row] = await sql<{ count: number }[]>`
        select count from throttle_counters where key = ${key} and window_ends > now()
      `;
      return row ? row.count : 0;
    },

    async expireDue() {
      const rows = await sql<{ record: SessionRecord }[]>`
        update sessions
        set record = record || '{"status":"expired"}'::jsonb, status = 'expired'
        where status in ('waiting', 'active') and (record ->> 'expiresAt')::timestamptz <= now()
        returning record
      `;
      return rows.map((r) => r.record);
    },

    async close() {
      // The connection belongs to the database module.
    },
  };
}

/** Uses the partial index of migration 0010. */
async function waitingOpenedBy(sql: postgres.ISql, userId: string): Promise<string[]> {
  const rows = await sql<{ id: string }[]>`
    select id from sessions
    where status = 'waiting' and record->'parties'->'A'->>'userId' = ${userId}
      and (record->>'expiresAt')::timestamptz > now()
    order by record->>'createdAt'
  `;
  return rows.map((r) => r.id);
}
