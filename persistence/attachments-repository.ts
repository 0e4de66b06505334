/**
 * Attachment rows (migration 0006): one per upload slot, with what the server found when it
 * checked the file. The cleanup's choice of what may go is made inside its statement: a file a
 * finalized constat's content names is never selected, whatever state its row is in.
 */
import type postgres from 'postgres';
import type {
  AttachmentRecord,
  AttachmentRecords,
  AttachmentStatus,
  ExifFacts,
} from '../media/attachment-records.js';

interface Row {
  id: string;
  session_id: string;
  role: 'A' | 'B';
  user_id: string;
  kind: string;
  content_type: string;
  byte_size: number;
  sha256: string;
  object_key: string;
  status: AttachmentStatus;
  problem: string | null;
  exif: ExifFacts | null;
  created_at: Date;
}

function record(row: Row): AttachmentRecord {
  return {
    id: row.id,
    sessionId: row.session_id,
    role: row.role,
    userId: row.user_id,
    kind: row.kind,
    contentType: row.content_type,
    byteSize: row.byte_size,
    sha256: row.sha256,
    objectKey: row.object_key,
    status: row.status,
    problem: row.problem,
    exif: row.exif,
    createdAt: row.created_at,
  };
}

export function createAttachmentsRepository(sql: postgres.Sql): AttachmentRecords {
  return {
    async create(a, maxPerParty) {
      return sql.begin(async (tx) => {
        // The session row is locked so that concurrent slot requests count one after another:
        // a count-then-insert without it lets two requests both see room for one more.
        await tx`select 1 from sessions where id = ${a.sessionId} for update`;
        const rows = await tx`
          insert into attachments
            (id, session_id, role, user_id, kind, content_type, byte_size, sha256, object_key)
          select ${a.id}, ${a.sessionId}, ${a.role}, ${a.userId}, ${a.kind}, ${a.contentType},
            ${a.byteSize}, ${a.sha256}, ${a.objectKey}
          where (select count(*) from attachments
                 where session_id = ${a.sessionId} and role = ${a.role}) < ${maxPerParty}
          returning 1
        `;
        return rows.length === 1;
      });
    },

    async forSession(sessionId) {
      const rows = await sql<Row[]>`
        select * from attachments where session_id = ${sessionId} order by created_at, id
      `;
      return rows.map(record);
    },

    async byIds(sessionId, ids) {
      if (ids.length === 0) return [];
      const rows = await sql<Row[]>`
        select * from attachments where session_id = ${sessionId} and id = any(${ids}::uuid[])
      `;
      return rows.map(record);
    },

    async setStatus(id, status, problem, exif) {
      await sql`
        update attachments
        set status = ${status}, problem = ${problem},
          exif = coalesce(${exif === undefined ? null : sql.json(exif as postgres.JSONValue)}, exif),
          verified_at = case when ${status} = 'verified' then now() else verified_at end
        where id = ${id}
      `;
    },

    async expired(olderThanMs, limit) {
      // Past retention and either: its session ended without a constat (abandoned, expired,
      // or gone), or its session's constat does not name it (never referenced, replaced).
      const rows = await sql<Row[]>`
        select a.* from attachments a
        left join sessions s on s.id = a.session_id
        left join constats c on c.session_id = a.session_id
        where a.created_at < now() - ${olderThanMs} * interval '1 millisecond'
          and (
            (c.id is null and (s.id is null or s.status in ('abandoned', 'expired')))
            or (c.id is not null
                and not coalesce(c.content->'vehicleA'->'attachments' ? a.id::text, false)
                and not coalesce(c.content->'vehicleB'->'attachments' ? a.id::text, false)
                and not coalesce(c.content->'accident'->'attachments' ? a.id::text, false))
          )
        order by a.created_at
        limit ${limit}
      `;
      return rows.map(record);
    },

    async remove(id) {
      // Same guard as `expired`, again at the moment of deleting: a row that a constat names
      // is never deleted, even if it was selected before that constat was committed.
      const rows = await sql`
        delete from attachments a
        where a.id = ${id}
          and not exists (
            select 1 from constats c
            where c.session_id = a.session_id
              and (coalesce(c.content->'vehicleA'->'attachments' ? a.id::text, false)
                or coalesce(c.content->'vehicleB'->'attachments' ? a.id::text, false)
                or coalesce(c.content->'accident'->'attachments' ? a.id::text, false)))
        returning 1
      `;
      return rows.length === 1;
    },

    async knownKeys(keys) {
      if (keys.length === 0) return new Set();
      const rows = await sql<{ object_key: string }[]>`
        select object_key from attachments where object_key = any(${keys})
      `;
      return new Set(rows.map((r) => r.object_key));
    },

    async isFinalized(sessionId) {
      const [row] = await sql`select 1 from constats where session_id = ${sessionId}`;
      return row !== undefined;
    },
  };
}
