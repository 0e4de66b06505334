/**
 * Rendered documents of constats (the signed PDF report, one row per version) and the queue of
 * renders to do. A render is leased, not locked: the renderer holds no transaction while the
 * browser works, and a lease that runs out (an instance died mid-render) lets another take it.
 */
import type postgres from 'postgres';
import type { OutboxEvent } from './constats-repository.js';

export interface StoredDocument {
  constatId: string;
  version: number;
  template: string;
  mediaKey: string;
  contentType: string;
  byteSize: number;
  sha256: string;
  createdAt: Date;
}

export type RenderReason = 'finalized' | 'rerender';

export interface RenderJob {
  constatId: string;
  reason: RenderReason;
  /** Attempts including this one. */
  attempts: number;
}

export type NewDocument = Omit<StoredDocument, 'version' | 'createdAt' | 'constatId'>;

export type CompleteOutcome =
  | { kind: 'recorded'; document: StoredDocument }
  /** A first render whose constat already has a document (another instance was faster). */
  | { kind: 'exists' }
  /** The job is gone: another instance completed it after this one's lease ran out. */
  | { kind: 'lost' };

export interface DocumentsRepository {
  /** Asks for a render; a `rerender` request upgrades a waiting first render. */
  enqueue(constatId: string, reason: RenderReason): Promise<void>;
  /** Queues a first render for every constat that has no document and no job (start-up scan). */
  enqueueMissing(): Promise<number>;
  /** Leases up to `limit` due jobs for `leaseMs`. */
  claim(limit: number, leaseMs: number): Promise<RenderJob[]>;
  /**
   * Records the next version of the constat's document, its announcement in the outbox (built
   * from the new version) and removes the job, in one transaction.
   */
  complete(
    job: RenderJob,
    document: NewDocument,
    announce: (document: StoredDocument) => OutboxEvent | undefined,
  ): Promise<CompleteOutcome>;
  /** Gives the job back, to be tried again in `retryInMs`. */
  fail(constatId: string, error: string, retryInMs: number): Promise<void>;
  /** Every version of each constat's document, oldest first (one statement). */
  listFor(constatIds: readonly string[]): Promise<Map<string, StoredDocument[]>>;
  pending(): Promise<number>;
}

interface Row {
  constat_id: string;
  version: number;
  template: string;
  media_key: string;
  content_type: string;
  byte_size: number;
  sha256: string;
  created_at: Date;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function createDocumentsRepository(sql: postgres.Sql): DocumentsRepository {
  const json = (value: unknown) => sql.json(value as postgres.JSONValue);
  return {
    async enqueue(constatId, reason) {
      await sql`
        insert into document_renders (constat_id, reason) values (${constatId}, ${reason})
        on conflict (constat_id) do update
          set reason = 'rerender', next_attempt_at = least(document_renders.next_attempt_at, now())
          where excluded.reason = 'rerender'
      `;
    },

    async enqueueMissing() {
      // One statement: a constat finalized meanwhile either has its job already (conflict) or
      // gets one here; a document recorded meanwhile makes the later job a no-op (`exists`).
      const rows = await sql`
        insert into document_renders (constat_id, reason)
        select c.id, 'finalized' from constats c
        where not exists (select 1 from constat_documents d where d.constat_id = c.id)
        on conflict (constat_id) do nothing
        returning constat_id
      `;
      return rows.length;
    },

    async claim(limit, leaseMs) {
      // SKIP LOCKED: two instances claiming at once take different jobs rather than queueing.
      const rows = await sql<{ constat_id: string; reason: RenderReason; attempts: number }[]>`
        update document_renders r
        set leased_until = now() + ${leaseMs} * interval '1 millisecond', attempts = r.attempts + 1
        where r.constat_id in (
          select constat_id from document_renders
          where next_attempt_at <= now() and (leased_until is null or leased_until < now())
          order by next_attempt_at
          limit ${limit}
          for update skip locked
        )
        returning r.constat_id, r.reason, r.attempts
      `;
      return rows.map((r) => ({ constatId: r.constat_id, reason: r.reason, attempts: r.attempts }));
    },

    async complete(job, document, announce) {
      return sql.begin(async (tx) => {
        // The job row is the lock: whoever deletes it recorded the version.
        const [current] = await tx<{ reason: RenderReason }[]>`
          select reason from document_renders where constat_id = ${job.constatId} for update
        `;
        if (!current) return { kind: 'lost' as const };
        const [{ latest } = { latest: 0 }] = await tx<{ latest: number }[]>`
          select coalesce(max(version), 0)::int as latest from constat_documents
          where constat_id = ${job.constatId}
        `;
        if (current.reason === 'finalized' && latest > 0) {
          await tx`delete from document_renders where constat_id = ${job.constatId}`;
          return { kind: 'exists' as const };
        }
        const [row] = await tx<Row[]>`
          insert into constat_documents
            (constat_id, version, template, media_key, content_type, byte_size, sha256)
          values (${job.constatId}, ${latest + 1}, ${document.template}, ${document.mediaKey},
            ${document.contentType}, ${document.byteSize}, ${document.sha256})
          returning *
        `;
        const stored = toDocument(row!);
        const event = announce(stored);
        if (event && event.topics.length > 0) {
          await tx`
            insert into outbox (id, topic, message_key, payload, headers)
            select gen_random_uuid(), topic, ${event.key}, ${json(event.payload)}, ${json(event.headers)}
            from unnest(${sql.array([...event.topics])}::text[]) as topic
          `;
        }
        await tx`delete from document_renders where constat_id = ${job.constatId}`;
        return { kind: 'recorded' as const, document: stored };
      });
    },

    async fail(constatId, error, retryInMs) {
      await sql`
        update document_renders
        set leased_until = null, last_error = ${error.slice(0, 2000)},
          next_attempt_at = now() + ${retryInMs} * interval '1 millisecond'
        where constat_id = ${constatId}
      `;
    },

    async listFor(constatIds) {
      const ids = constatIds.filter((id) => UUID.test(id));
      const result = new Map<string, StoredDocument[]>(ids.map((id) => [id, []]));
      if (ids.length === 0) return result;
      const rows = await sql<Row[]>`
        select * from constat_documents where constat_id = any(${sql.array(ids)}::uuid[])
        order by constat_id, version
      `;
      for (const row of rows) result.get(row.constat_id)?.push(toDocument(row));
      return result;
    },

    async pending() {
      const [row] = await sql<{ n: string }[]>`select count(*) as n from document_renders`;
      return Number(row?.n ?? 0);
    },
  };
}

function toDocument(row: Row): StoredDocument {
  return {
    constatId: row.constat_id,
    version: row.version,
    template: row.template,
    mediaKey: row.media_key,
    contentType: row.content_type,
    byteSize: row.byte_size,
    sha256: row.sha256,
    createdAt: row.created_at,
  };
}
