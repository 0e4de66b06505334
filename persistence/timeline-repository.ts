/**
 * Events insurers and AI services sent about a constat, idempotent by topic and event id, in
 * the order core received them.
 */
import type postgres from 'postgres';

export interface TimelineEvent {
  eventId: string;
  constatId: string;
  topic: string;
  source: string;
  type: string;
  time: Date;
  data: unknown;
  receivedAt: Date;
}

export interface TimelineRepository {
  /** Stores the event; false when this topic already delivered an event with this id. */
  add(event: Omit<TimelineEvent, 'receivedAt'>): Promise<boolean>;
  /** Oldest first, in the order received. */
  forConstat(constatId: string): Promise<TimelineEvent[]>;
  /** Timelines of several constats in one statement (batched loading). */
  forConstats(constatIds: readonly string[]): Promise<Map<string, TimelineEvent[]>>;
}

interface Row {
  event_id: string;
  constat_id: string;
  topic: string;
  source: string;
  type: string;
  time: Date;
  data: unknown;
  received_at: Date;
}

export function createTimelineRepository(sql: postgres.Sql): TimelineRepository {
  const forConstats = async (constatIds: readonly string[]) => {
    const map = new Map<string, TimelineEvent[]>(constatIds.map((id) => [id, []]));
    if (constatIds.length === 0) return map;
    const rows = await sql<Row[]>`
      select * from constat_events where constat_id = any(${sql.array([...constatIds])}::uuid[])
      order by seq
    `;
    for (const r of rows) map.get(r.constat_id)?.push(toEvent(r));
    return map;
  };
  return {
    async add(e) {
      const rows = await sql`
        insert into constat_events (event_id, constat_id, topic, source, type, time, data)
        values (${e.eventId}, ${e.constatId}, ${e.topic}, ${e.source}, ${e.type}, ${e.time},
          ${sql.json(e.data as postgres.JSONValue)})
        on conflict (topic, event_id) do nothing
        returning 1
      `;
      return rows.length > 0;
    },
    async forConstat(constatId) {
      return (await forConstats([constatId])).get(constatId) ?? [];
    },
    forConstats,
  };
}

function toEvent(r: Row): TimelineEvent {
  return {
    eventId: r.event_id,
    constatId: r.constat_id,
    topic: r.topic,
    source: r.source,
    type: r.type,
    time: r.time,
    data: r.data,
    receivedAt: r.received_at,
  };
}
