/**
 * Drafts: the latest compacted Yjs document of each collaboration session, one row per session.
 * Binary columns go in and come out as Uint8Array (postgres.js maps bytea to Buffer both on a
 * real server and on PGlite over its socket; callers get plain Uint8Array copies).
 */
import type postgres from 'postgres';

export const DRAFT_STATUSES = ['live', 'abandoned', 'expired', 'finalized'] as const;
export type DraftStatus = (typeof DRAFT_STATUSES)[number];

export interface Draft {
  sessionId: string;
  formVersion: string;
  /** A Yjs update that rebuilds the whole document. */
  state: Uint8Array;
  stateVector: Uint8Array | null;
  status: DraftStatus;
  createdAt: Date;
  updatedAt: Date;
  /** 1 on first save, +1 on every save after. */
  version: number;
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
  load(sessionId: string): Promise<Draft | null>;
  /**
   * Move a live draft to `status`. Resolves false when there is no such draft or it is already
   * closed with another status (closed statuses are final); true when it now has `status`.
   */
  setStatus(sessionId: string, status: DraftStatus): Promise<boolean>;
}

interface DraftRow {
  session_id: string;
  form_version: string;
  state: Uint8Array;
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
      const [row] = await sql<DraftRow[]>`
        select session_id, form_version, state, state_vector, status, created_at, updated_at,
          version
        from drafts
        where session_id = ${sessionId}
      `;
      return row ? toDraft(row) : null;
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

function toDraft(row: DraftRow): Draft {
  return {
    sessionId: row.session_id,
    formVersion: row.form_version,
    state: toBytes(row.state, 'state'),
    stateVector: row.state_vector === null ? null : toBytes(row.state_vector, 'state_vector'),
    status: row.status,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    // bigint arrives as a string; drafts are saved every few seconds, far from 2^53.
    version: Number(row.version),
  };
}
