/**
 * Drafts: the Yjs document of each collaboration session, stored incrementally: one row per
 * session (`drafts.state`, the base) plus the updates appended since (`draft_updates`), which a
 * fold merges into the base now and then. Saving an edit costs the edit, not the document.
 * Binary columns go in and come out as Uint8Array (postgres.js maps bytea to Buffer both on a
 * real server and on PGlite over its socket; callers get plain Uint8Array copies).
 */
import type postgres from 'postgres';
import type { AppendOutcome } from '../sync/draft-store.js';

export const DRAFT_STATUSES = ['live', 'abandoned', 'expired', 'finalized'] as const;
export type DraftStatus = (typeof DRAFT_STATUSES)[number];

export interface Draft {
  sessionId: string;
  formVersion: string;
  /** The base: a Yjs update that rebuilds the document as of the last fold. */
  state: Uint8Array;
  /** Updates appended since, in order: the document is `state` with each of these applied. */
  updates: Uint8Array[];
  /** Their row ids, for `fold`. */
  updateSeqs: number[];
  stateVector: Uint8Array | null;
  status: DraftStatus;
  createdAt: Date;
  updatedAt: Date;
  /** 1 on first save, +1 on every save and fold after. */
  version: number;
}

export interface FoldDraft {
  sessionId: string;
  /** The version the base was read at: the fold is refused if anything rewrote it since. */
  version: number;
  /** The base merged with the updates `seqs`. */
  state: Uint8Array;
  stateVector: Uint8Array;
  seqs: number[];
}

export interface SaveDraft {
  sessionId: string;
  formVersion: string;
  state: Uint8Array;
  /** Omitted: stored as null (a vector of an older state would be wrong). */
  stateVector?: Uint8Array;
  /** Defaults to 'live'. */
  status?: DraftStatus;
}

export interface DraftsRepository {
  /**
   * Insert or replace the session's draft. Resolves false, writing nothing, when the stored
   * draft is no longer live.
   */
  save(draft: SaveDraft): Promise<boolean>;
  /** The draft with the updates appended since its last fold. */
  load(sessionId: string): Promise<Draft | null>;
  /**
   * Appends one update to a live draft. Nothing is written when the draft is closed or missing.
   */
  append(sessionId: string, update: Uint8Array): Promise<AppendOutcome>;
  /**
   * Replaces the base of a live draft by `state` and deletes the updates it merged. False,
   * changing nothing, when the draft was rewritten since `version` (another fold, a save) or
   * closed: the caller's merge is then stale.
   */
  fold(draft: FoldDraft): Promise<boolean>;
  /**
   * Move a live draft to `status`. Resolves false when there is no such draft or it is already
   * closed with another status (closed statuses are final); true when it now has `status`.
   */
  setStatus(sessionId: string, status: DraftStatus): Promise<boolean>;
}

/** The draft's own row (part 0), or one of its appended updates (part 1, by seq). */
interface PartRow {
  part: number;
  seq: string | null;
  bytes: Uint8Array;
  form_version: string;
  state_vector: Uint8Array | null;
  status: DraftStatus;
  created_at: Date;
  updated_at: Date;
  version: string;
}

/**
 * `sql` may be the pool, a reserved connection or a transaction (`ISql` is what they share), so
 * a caller can change a draft in the same transaction as other rows.
 */
export function createDraftsRepository(sql: postgres.ISql): DraftsRepository {
  return {
    async save(draft) {
      const status = draft.status ?? 'live';
      assertStatus(status);
      // The `where` makes "only live drafts change" part of the upsert itself. A separate
      // "load, check status, then save" would race: a compaction that read 'live' could
      // overwrite the draft right after the finalizer (or the expiry sweep) closed it, and a
      // closed draft must keep the exact content that was signed or abandoned.
      const rows = await sql`
        insert into drafts (session_id, form_version, state, state_vector, status)
        values (
          ${draft.sessionId},
          ${draft.formVersion},
          ${bytes(draft.state)},
          ${draft.stateVector ? bytes(draft.stateVector) : null},
          ${status}
        )
        on conflict (session_id) do update set
          form_version = excluded.form_version,
          state = excluded.state,
          state_vector = excluded.state_vector,
          status = excluded.status,
          updated_at = now(),
          version = drafts.version + 1
        where drafts.status = 'live'
        returning 1
      `;
      return rows.length > 0;
    },

    async load(sessionId) {
      // One statement, so the base and its updates come from one snapshot: a fold committing
      // in between cannot make an update appear twice or go missing. One row per part rather
      // than an array of them: the driver decodes a bytea column natively, but an array of
      // bytea character by character (seconds of event loop for a few MB).
      const rows = await sql<PartRow[]>`
        select 0 as part, null::bigint as seq, state as bytes, form_version, state_vector, status,
          created_at, updated_at, version
        from drafts where session_id = ${sessionId}
        union all
        select 1, seq, update, null::text, null::bytea, null::text, null::timestamptz,
          null::timestamptz, null::bigint
        from draft_updates where session_id = ${sessionId}
        order by part, seq
      `;
      const [head, ...updates] = rows;
      if (!head || head.part !== 0) return null;
      return toDraft(sessionId, head, updates);
    },

    async append(sessionId, update) {
      // `for share` holds the draft row until the insert commits: a finalization or expiry
      // closing the draft waits for it, or it waits for them and then sees the draft closed.
      // A separate status check followed by an insert would race with them.
      const [row] = await sql<
        { status: DraftStatus; inserted: number; rows: number; bytes: string; base_bytes: number }[]
      >`
        with d as (
          select status, octet_length(state) as base_bytes from drafts
          where session_id = ${sessionId}
          for share
        ), ins as (
          insert into draft_updates (session_id, update)
          select ${sessionId}, ${bytes(update)} from d where d.status = 'live'
          returning 1
        )
        select d.status, d.base_bytes,
          (select count(*) from ins)::int as inserted,
          (select count(*) from draft_updates where session_id = ${sessionId})::int as rows,
          (select coalesce(sum(octet_length(update)), 0) from draft_updates
            where session_id = ${sessionId})::bigint as bytes
        from d
      `;
      if (!row) return { kind: 'missing' };
      if (row.inserted === 0) return { kind: 'closed' };
      // The counts are of the statement's snapshot, which does not include its own row.
      return {
        kind: 'appended',
        pendingRows: row.rows + 1,
        pendingBytes: Number(row.bytes) + update.byteLength,
        baseBytes: row.base_bytes,
      };
    },

    async fold(draft) {
      // Deletes exactly the rows that were merged (by id, not "up to a seq"): an append whose
      // identity was drawn earlier may commit later, and must survive the fold.
      const [row] = await sql<{ folded: number }[]>`
        with folded as (
          update drafts set state = ${bytes(draft.state)}, state_vector = ${bytes(draft.stateVector)},
            updated_at = now(), version = version + 1
          where session_id = ${draft.sessionId} and version = ${draft.version} and status = 'live'
          returning 1
        ), dropped as (
          delete from draft_updates
          where session_id = ${draft.sessionId} and seq = any(${sql.array(draft.seqs)}::bigint[])
            and exists (select 1 from folded)
        )
        select (select count(*) from folded)::int as folded
      `;
      return row!.folded > 0;
    },

    async setStatus(sessionId, status) {
      assertStatus(status);
      // Same reasoning as in save: the transition rule lives in the statement. Setting the
      // status a draft already has counts as success so retries are harmless.
      const rows = await sql`
        update drafts
        set status = ${status}, updated_at = now()
        where session_id = ${sessionId} and (status = 'live' or status = ${status})
        returning 1
      `;
      return rows.length > 0;
    },
  };
}

function assertStatus(status: string): asserts status is DraftStatus {
  if (!(DRAFT_STATUSES as readonly string[]).includes(status)) {
    throw new TypeError(`unknown draft status ${JSON.stringify(status)}`);
  }
}

/** postgres.js sends a Buffer as bytea; wrap without copying. */
function bytes(value: Uint8Array): Buffer {
  return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
}

/**
 * A copy as a plain Uint8Array: the driver's Buffer may be a slice of Node's shared pool, and
 * Buffer#slice shares memory where Uint8Array#slice copies.
 */
function toBytes(value: unknown, column: string): Uint8Array {
  if (!(value instanceof Uint8Array)) {
    throw new TypeError(`drafts.${column} did not come back as bytes (got ${typeof value})`);
  }
  return new Uint8Array(value);
}

function toDraft(sessionId: string, row: PartRow, updates: PartRow[]): Draft {
  return {
    sessionId,
    formVersion: row.form_version,
    state: toBytes(row.bytes, 'state'),
    updates: updates.map((u) => toBytes(u.bytes, 'update')),
    updateSeqs: updates.map((u) => Number(u.seq)),
    stateVector: row.state_vector === null ? null : toBytes(row.state_vector, 'state_vector'),
    status: row.status,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    // bigint arrives as a string; drafts are saved every few seconds, far from 2^53.
    version: Number(row.version),
  };
}
