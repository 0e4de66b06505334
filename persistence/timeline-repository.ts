/** Events insurers and AI services sent about a constat, idempotent by event id. */
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
  /** Stores the event; false when an event with this id was already stored. */
  add(event: Omit<TimelineEvent, 'receivedAt'>): Promise<boolean>;
  forConstat(constatId: string): Promise<TimelineEvent[]>;
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
  return {
    async add(e) {
      const rows = await sql`
        insert into constat_events (event_id, constat_id, topic, source, type, time, data)
        values (${e.eventId}, ${e.constatId}, ${e.topic}, ${e.source}, ${e.type}, ${e.time},
          ${sql.json(e.data as postgres.JSONValue)})
        on conflict (event_id) do nothing
        returning 1
      `;
      return rows.length > 0;
    },
    async forConstat(constatId) {
      const rows = await sql<Row[]>`
        select * from constat_events where constat_id = ${constatId} order by time, received_at
      `;
      return rows.map((r) => ({
        eventId: r.event_id,
        constatId: r.constat_id,
        topic: r.topic,
        source: r.source,
        type: r.type,
        time: r.time,
        data: r.data,
        receivedAt: r.received_at,
      }));
    },
  };
}
