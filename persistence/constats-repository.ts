/**
 * Finalized constats. `finalize` is the one transaction that turns a signed session into a
 * permanent record: the constat row, its outbox rows, the draft and the session marked
 * finalized — all or nothing, and exactly once per session however many finalizers race.
 */
import { randomUUID } from 'node:crypto';
import type postgres from 'postgres';

export interface NewConstat {
  sessionId: string;
  formVersion: string;
  content: unknown;
  canonicalJson: string;
  contentHash: string;
  snapshot: Uint8Array;
  signatures: unknown;
  insurerA: string | null;
  insurerB: string | null;
  signedAt: string;
}

/** One event for the outbox: a row per topic, all carrying the same event. */
export interface OutboxEvent {
  topics: readonly string[];
  key: string;
  payload: unknown;
  headers: Record<string, string>;
}

export interface StoredConstat {
  id: string;
  sessionId: string;
  formVersion: string;
  content: unknown;
  canonicalJson: string;
  contentHash: string;
  snapshot: Uint8Array;
  signatures: unknown;
  partyAUser: string;
  partyBUser: string;
  insurerA: string | null;
  insurerB: string | null;
  signedAt: Date;
  finalizedAt: Date;
}

export type FinalizeOutcome =
  | { kind: 'created'; constatId: string }
  | { kind: 'exists'; constatId: string }
  | { kind: 'not-signable'; reason: string };

/** Who is asking: a driver (constats they are a party of) and/or insurer staff (their companies'). */
export interface Viewer {
  userId: string;
  insurers: readonly string[];
}

/** Claim status as the latest claim event says; FINALIZED before any insurer answered. */
export type ConstatStatus = 'FINALIZED' | 'IN_PROGRESS' | 'SETTLED' | 'REJECTED' | 'CLOSED';

export interface PageRequest {
  first: number;
  /** From `position` of the last row of the previous page. */
  after?: { position: string; id: string };
  status?: ConstatStatus;
}

export interface ConstatsRepository {
  /** One page of the constats the viewer may see, newest first (one statement). */
  listVisible(
    viewer: Viewer,
    page: PageRequest,
  ): Promise<{
    rows: Array<StoredConstat & { status: ConstatStatus; position: string }>;
    hasNext: boolean;
  }>;
  /** Constats by id among those the viewer may see (one statement, for batched loading). */
  getVisible(
    viewer: Viewer,
    ids: readonly string[],
  ): Promise<Array<StoredConstat & { status: ConstatStatus }>>;
  /**
   * Writes the constat and its outbox rows (the event built by `outbox(constatId)`, one row
   * per topic) in one transaction,
   * unless the session already has a constat; then returns the existing id.
   */
  finalize(
    constat: NewConstat,
    outbox: (constatId: string, parties: { a: string; b: string }) => OutboxEvent,
  ): Promise<FinalizeOutcome>;
  get(id: string): Promise<StoredConstat | null>;
  /** The insurers a constat names; null when there is no such constat. */
  insurers(id: string): Promise<{ insurerA: string | null; insurerB: string | null } | null>;
  bySession(sessionId: string): Promise<StoredConstat | null>;
}

interface Row {
  status?: ConstatStatus;
  position?: string;
  id: string;
  session_id: string;
  form_version: string;
  content: unknown;
  canonical_json: string;
  content_hash: string;
  snapshot: Uint8Array;
  signatures: unknown;
  party_a_user: string;
  party_b_user: string;
  insurer_a: string | null;
  insurer_b: string | null;
  signed_at: Date;
  finalized_at: Date;
}

export function createConstatsRepository(sql: postgres.Sql): ConstatsRepository {
  const json = (value: unknown) => sql.json(value as postgres.JSONValue);
  return {
    async finalize(constat, outbox) {
      return sql.begin(async (tx) => {
        // Lock the session row: racing finalizers queue here, and the loser then finds the
        // constat (a pre-check outside the transaction would let both insert).
        const [session] = await tx<
          {
            record: {
              status: string;
              parties: { A: { userId: string }; B?: { userId: string } };
              constatId?: string;
            };
          }[]
        >`
          select record from sessions where id = ${constat.sessionId} for update
        `;
        const [existing] = await tx<
          { id: string }[]
        >`select id from constats where session_id = ${constat.sessionId}`;
        if (existing) return { kind: 'exists' as const, constatId: existing.id };
        if (!session) return { kind: 'not-signable' as const, reason: 'unknown session' };
        const { status, parties } = session.record;
        if (status !== 'active' || !parties.B) {
          return { kind: 'not-signable' as const, reason: `session is ${status}` };
        }
        const id = randomUUID();
        const event = outbox(id, { a: parties.A.userId, b: parties.B.userId });
        // One statement for everything the constat changes, and the event is sent once
        // whatever the number of topics: the cost of a finalization is its statements.
        await tx`
          with constat as (
            insert into constats (id, session_id, form_version, content, canonical_json, content_hash, snapshot,
              signatures, party_a_user, party_b_user, insurer_a, insurer_b, signed_at)
            values (${id}, ${constat.sessionId}, ${constat.formVersion}, ${json(constat.content)},
              ${constat.canonicalJson}, ${constat.contentHash}, ${Buffer.from(constat.snapshot)},
              ${json(constat.signatures)}, ${parties.A.userId}, ${parties.B.userId}, ${constat.insurerA},
              ${constat.insurerB}, ${constat.signedAt})
          ), events as (
            insert into outbox (id, topic, message_key, payload, headers)
            select gen_random_uuid(), topic, ${event.key}, ${json(event.payload)}, ${json(event.headers)}
            from unnest(${sql.array([...event.topics])}::text[]) as topic
          ), draft as (
            update drafts set status = 'finalized', state = ${Buffer.from(constat.snapshot)}, updated_at = now(),
              version = version + 1
            where session_id = ${constat.sessionId}
          )
          update sessions
          set record = record || ${json({ status: 'finalized', constatId: id })}, status = 'finalized'
          where id = ${constat.sessionId}
        `;
        return { kind: 'created' as const, constatId: id };
      });
    },

    async listVisible(viewer, page) {
      const rows = await sql<Row[]>`
        select * from (
          select c.*, ${statusColumn(sql)} as status, ${positionColumn(sql)} as position from constats c
          where (c.party_a_user = ${viewer.userId} or c.party_b_user = ${viewer.userId}
            or c.insurer_a = any(${sql.array([...viewer.insurers])}) or c.insurer_b = any(${sql.array([...viewer.insurers])}))
            ${page.after ? sql`and (c.finalized_at, c.id) < (${page.after.position}::text::timestamptz, ${page.after.id}::uuid)` : sql``}
        ) v
        ${page.status ? sql`where v.status = ${page.status}` : sql``}
        order by v.finalized_at desc, v.id desc
        limit ${page.first + 1}
      `;
      return {
        rows: rows
          .slice(0, page.first)
          .map((r) => ({ ...toConstat(r), status: r.status!, position: r.position! })),
        hasNext: rows.length > page.first,
      };
    },

    async getVisible(viewer, ids) {
      const valid = ids.filter((id) => UUID.test(id));
      if (valid.length === 0) return [];
      const rows = await sql<Row[]>`
        select c.*, ${statusColumn(sql)} as status from constats c
        where c.id = any(${sql.array(valid)}::uuid[])
          and (c.party_a_user = ${viewer.userId} or c.party_b_user = ${viewer.userId}
            or c.insurer_a = any(${sql.array([...viewer.insurers])}) or c.insurer_b = any(${sql.array([...viewer.insurers])}))
      `;
      return rows.map((r) => ({ ...toConstat(r), status: r.status! }));
    },

    async get(id) {
      if (!UUID.test(id)) return null;
      const [row] = await sql<Row[]>`select * from constats where id = ${id}`;
      return row ? toConstat(row) : null;
    },

    async insurers(id) {
      if (!UUID.test(id)) return null;
      const [row] = await sql<{ insurer_a: string | null; insurer_b: string | null }[]>`
        select insurer_a, insurer_b from constats where id = ${id}
      `;
      return row ? { insurerA: row.insurer_a, insurerB: row.insurer_b } : null;
    },

    async bySession(sessionId) {
      const [row] = await sql<Row[]>`select * from constats where session_id = ${sessionId}`;
      return row ? toConstat(row) : null;
    },
  };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The exact finalization time as text (microseconds; a JS Date would round to ms). */
function positionColumn(sql: postgres.Sql) {
  return sql`to_char(c.finalized_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;
}

/**
 * The status the latest claim event gives a constat (a correlated subquery on the timeline).
 * Latest as core received them (`seq`), not by the sender's `time`, which it chooses.
 */
function statusColumn(sql: postgres.Sql) {
  return sql`coalesce((
    select case e.type
      when 'dz.claim.settled.v1' then 'SETTLED'
      when 'dz.claim.rejected.v1' then 'REJECTED'
      when 'dz.claim.closed.v1' then 'CLOSED'
      else 'IN_PROGRESS' end
    from constat_events e
    where e.constat_id = c.id and e.type like 'dz.claim.%'
    order by e.seq desc
    limit 1
  ), 'FINALIZED')`;
}

function toConstat(row: Row): StoredConstat {
  return {
    id: row.id,
    sessionId: row.session_id,
    formVersion: row.form_version,
    content: row.content,
    canonicalJson: row.canonical_json,
    contentHash: row.content_hash,
    snapshot: new Uint8Array(row.snapshot),
    signatures: row.signatures,
    partyAUser: row.party_a_user,
    partyBUser: row.party_b_user,
    insurerA: row.insurer_a,
    insurerB: row.insurer_b,
    signedAt: row.signed_at,
    finalizedAt: row.finalized_at,
  };
}
