/**
 * The AI service's state in PostgreSQL (schema `ai`, migrations in ai/migrations/): the
 * feature store with its retention, the result of every function per constat, dead letters of
 * the embedded pipeline and its read position. The only module of ai/ with SQL.
 */
import type postgres from 'postgres';
import type { Logger } from 'pino';
import { migrate } from '../persistence/migrate.js';
import type { Feature, FeatureKind } from './fraud/features.js';
import type { SeenBefore } from './fraud/signals.js';
import type { Role } from './constat-view.js';

export const AI_MIGRATIONS = {
  dir: new URL('./migrations/', import.meta.url),
  table: 'ai.schema_migrations',
};

export interface StoredResult {
  eventId: string;
  event: Record<string, unknown>;
}

export interface AiStore {
  /** Records the constat's features (idempotent). */
  remember(constatId: string, features: Feature[], seenAt: Date, accidentAt?: Date): Promise<void>;
  /** For each feature, the earlier constats (finalized before `before`) that carried it. */
  seenBefore(
    constatId: string,
    features: Feature[],
    before: Date,
    windowDays: number,
  ): Promise<SeenBefore[]>;
  /** The stored result of a function for a constat, if any. */
  result(fn: string, constatId: string): Promise<StoredResult | undefined>;
  /** Every stored result of a constat, by function (one statement). */
  results(constatId: string): Promise<Map<string, StoredResult>>;
  /** Stores a result unless one exists; returns the one that is stored (first writer wins). */
  keepResult(fn: string, constatId: string, result: StoredResult): Promise<StoredResult>;
  deadLetter(d: {
    id: string;
    sourceEventId?: string;
    fn?: string;
    reason: string;
    error: string;
    payload: string;
  }): Promise<void>;
  deadLetters(): Promise<Array<{ reason: string; fn: string | null; error: string }>>;
  /** `createdAt` as text at full precision (see FeedRow). */
  position(feed: string): Promise<{ createdAt: string; id: string } | undefined>;
  setPosition(feed: string, at: { createdAt: string; id: string }): Promise<void>;
  /** Forgets features older than the retention period; returns how many rows went. */
  prune(retentionDays: number): Promise<number>;
  ping(): Promise<void>;
}

export async function migrateAiStore(sql: postgres.Sql, logger: Logger): Promise<void> {
  await migrate(sql, logger.child({ component: 'ai-migrate' }), AI_MIGRATIONS);
}

export function createAiStore(sql: postgres.Sql): AiStore {
  const result = async (fn: string, constatId: string): Promise<StoredResult | undefined> => {
    const [row] = await sql<{ event_id: string; event: Record<string, unknown> }[]>`
      select event_id, event from ai.results where function = ${fn} and constat_id = ${constatId}
    `;
    return row ? { eventId: row.event_id, event: row.event } : undefined;
  };
  return {
    async remember(constatId, features, seenAt, accidentAt) {
      if (features.length === 0) return;
      const rows = features.map((f) => ({
        kind: f.kind,
        value: f.value,
        constat_id: constatId,
        role: f.role ?? '',
        seen_at: seenAt,
        accident_at: accidentAt ?? null,
      }));
      await sql`insert into ai.features ${sql(rows)} on conflict do nothing`;
    },
    async seenBefore(constatId, features, before, windowDays) {
      if (features.length === 0) return [];
      const since = new Date(before.getTime() - windowDays * 86_400_000);
      const rows = await sql<{ kind: FeatureKind; value: string; seen: Date[] }[]>`
        select kind, value, array_agg(seen_at order by seen_at desc) as seen
        from (
          select distinct on (kind, value, constat_id) kind, value, constat_id, seen_at
          from ai.features
          join unnest(${sql.array(features.map((f) => f.kind))}::text[],
            ${sql.array(features.map((f) => f.value))}::text[]) as wanted (kind, value)
            using (kind, value)
          where constat_id <> ${constatId} and seen_at < ${before} and seen_at >= ${since}
        ) earlier
        group by kind, value
      `;
      return rows.map((r) => {
        const f = features.find((x) => x.kind === r.kind && x.value === r.value);
        return {
          kind: r.kind,
          value: r.value,
          role: (f?.role ?? null) as Role | null,
          earlier: r.seen.map((d) => new Date(d)),
        };
      });
    },
    result,
    async results(constatId) {
      const rows = await sql<
        { function: string; event_id: string; event: Record<string, unknown> }[]
      >`
        select function, event_id, event from ai.results where constat_id = ${constatId}
      `;
      return new Map(rows.map((r) => [r.function, { eventId: r.event_id, event: r.event }]));
    },
    async keepResult(fn, constatId, stored) {
      // The primary key decides the winner; only a loser reads the winner's result back.
      const inserted = await sql`
        insert into ai.results (function, constat_id, event_id, event)
        values (${fn}, ${constatId}, ${stored.eventId}, ${sql.json(stored.event as postgres.JSONValue)})
        on conflict do nothing
        returning 1
      `;
      return inserted.length > 0 ? stored : ((await result(fn, constatId)) ?? stored);
    },
    async deadLetter(d) {
      await sql`
        insert into ai.dead_letters (id, source_event_id, function, reason, error, payload)
        values (${d.id}, ${d.sourceEventId ?? null}, ${d.fn ?? null}, ${d.reason},
          ${d.error.slice(0, 2000)}, ${d.payload.slice(0, 1_000_000)})
        on conflict do nothing
      `;
    },
    async deadLetters() {
      return sql<Array<{ reason: string; fn: string | null; error: string }>>`
        select reason, function as fn, error from ai.dead_letters order by created_at
      `;
    },
    async position(feed) {
      const [row] = await sql<{ created_at: string; id: string }[]>`
        select created_at::text as created_at, id from ai.feed_positions where feed = ${feed}
      `;
      return row ? { createdAt: row.created_at, id: row.id } : undefined;
    },
    async setPosition(feed, at) {
      await sql`
        insert into ai.feed_positions (feed, created_at, id)
        values (${feed}, ${at.createdAt}::text::timestamptz, ${at.id})
        on conflict (feed) do update set created_at = excluded.created_at, id = excluded.id
      `;
    },
    async prune(retentionDays) {
      const rows = await sql`
        delete from ai.features where seen_at < now() - ${retentionDays} * interval '1 day'
        returning 1
      `;
      return rows.length;
    },
    async ping() {
      await sql`select 1 from ai.results limit 1`;
    },
  };
}
