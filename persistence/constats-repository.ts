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

/** Builds a constat's event once its id and parties are known. */
export type OutboxBuilder = (constatId: string, parties: { a: string; b: string }) => OutboxEvent;

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
  finalize(constat: NewConstat, outbox: OutboxBuilder): Promise<FinalizeOutcome>;
  /**
   * `finalize` for several sessions in one transaction (group commit): one outcome per item,
   * in order. A session named twice is finalized once (the second is told `exists`).
   */
  finalizeMany(
    items: ReadonlyArray<{ constat: NewConstat; outbox: OutboxBuilder }>,
  ): Promise<FinalizeOutcome[]>;
  get(id: string): Promise<StoredConstat | null>;
  /** The insurers a constat names; null when there is no such constat. */
  insurers(id: string): Promise<{ insurerA: string | null; insurerB: string | null } | null>;
  bySession(sessionId: string): Promise<StoredConstat | null>;
}

/** One constat with its event, as the finalization statement reads it (`jsonb_to_recordset`). */
interface FinalizeRow {
  id: string;
  session_id: string;
  form_version: string;
  content: unknown;
  canonical_json: string;
  content_hash: string;
  /** base64: the rows travel as one JSON parameter. */
  snapshot: string;
  signatures: unknown;
  party_a_user: string;
  party_b_user: string;
  insurer_a: string | null;
  insurer_b: string | null;
  signed_at: string;
  topics: readonly string[];
  message_key: string;
  payload: unknown;
  headers: Record<string, string>;
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
  const repository: ConstatsRepository = {
    async finalize(constat, outbox) {
      const [outcome] = await repository.finalizeMany([{ constat, outbox }]);
      return outcome!;
    },

    async finalizeMany(items) {
      if (items.length === 0) return [];
      const ids = [...new Set(items.map((i) => i.constat.sessionId))];
      return sql.begin(async (tx) => {
        // Lock the session rows (in id order, so two groups sharing sessions cannot deadlock):
        // racing finalizers queue here, and the loser then finds the constat (a pre-check
        // outside the transaction would let both insert).
        const found = await tx<
          {
            id: string;
            record: {
              status: string;
              parties: { A: { userId: string }; B?: { userId: string } };
              constatId?: string;
            };
            constat_id: string | null;
          }[]
        >`
          select s.id, s.record, c.id as constat_id
          from sessions s left join constats c on c.session_id = s.id
          where s.id = any(${tx.array(ids)}::text[])
          order by s.id
          for update of s
        `;
        const sessions = new Map(found.map((row) => [row.id, row]));
        const created = new Map<string, string>();
        const rows: FinalizeRow[] = [];
        const outcomes = items.map(({ constat, outbox }): FinalizeOutcome => {
          const session = sessions.get(constat.sessionId);
          // A finalizer that waited for the lock sees the row as the winner left it: the
          // record names the constat, while the join still reads the snapshot from before.
          const existing =
            session?.constat_id ?? session?.record.constatId ?? created.get(constat.sessionId);
          if (existing) return { kind: 'exists', constatId: existing };
          if (!session) return { kind: 'not-signable', reason: 'unknown session' };
          const { status, parties } = session.record;
          if (status !== 'active' || !parties.B) {
            return { kind: 'not-signable', reason: `session is ${status}` };
          }
          const id = randomUUID();
          created.set(constat.sessionId, id);
          const event = outbox(id, { a: parties.A.userId, b: parties.B.userId });
          rows.push({
            id,
            session_id: constat.sessionId,
            form_version: constat.formVersion,
            content: constat.content,
            canonical_json: constat.canonicalJson,
            content_hash: constat.contentHash,
            snapshot: Buffer.from(constat.snapshot).toString('base64'),
            signatures: constat.signatures,
            party_a_user: parties.A.userId,
            party_b_user: parties.B.userId,
            insurer_a: constat.insurerA,
            insurer_b: constat.insurerB,
            signed_at: constat.signedAt,
            topics: event.topics,
            message_key: event.key,
            payload: event.payload,
            headers: event.headers,
          });
          return { kind: 'created', constatId: id };
        });
        if (rows.length === 0) return outcomes;
        // One statement for everything the constats change, whatever their number and the
        // number of topics (each event is sent once, unnested into a row per topic): the cost
        // of a finalization is its statements.
        await tx`
          with input as (
            select * from jsonb_to_recordset(${json(rows)}) as x(id uuid, session_id text,
              form_version text, content jsonb, canonical_json text, content_hash text,
              snapshot text, signatures jsonb, party_a_user text, party_b_user text,
              insurer_a text, insurer_b text, signed_at timestamptz, topics jsonb,
              message_key text, payload jsonb, headers jsonb)
          ), constat as (
            insert into constats (id, session_id, form_version, content, canonical_json, content_hash, snapshot,
              signatures, party_a_user, party_b_user, insurer_a, insurer_b, signed_at)
            select id, session_id, form_version, content, canonical_json, content_hash,
              decode(snapshot, 'base64'), signatures, party_a_user, party_b_user, insurer_a,
              insurer_b, signed_at
            from input
          ), events as (
            insert into outbox (id, topic, message_key, payload, headers)
            select gen_random_uuid(), topic, i.message_key, i.payload, i.headers
            from input i, jsonb_array_elements_text(i.topics) as topic
          ), draft as (
            update drafts d set status = 'finalized', state = decode(i.snapshot, 'base64'),
              updated_at = now(), version = d.version + 1
            from input i where d.session_id = i.session_id
          ), superseded as (
            -- The signed snapshot is the finalized draft's whole content: updates appended
            -- after it was taken were never signed.
            delete from draft_updates u using input i where u.session_id = i.session_id
          )
          update sessions s
          set record = s.record || jsonb_build_object('status', 'finalized', 'constatId', i.id),
            status = 'finalized'
          from input i where s.id = i.session_id
        `;
        return outcomes;
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
  return repository;
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
