-- The company registry (company uid = Kafka topic name) and the timeline of events insurers
-- and AI services send back about a constat.

create table companies (
  uid text primary key check (uid ~ '^[a-z0-9][a-z0-9-]{0,48}$'),
  name text not null,
  kind text not null,
  active boolean not null default true,
  created_at timestamptz not null default now()
);

create table constat_events (
  -- The CloudEvents id: delivering the same event twice stores it once.
  event_id text primary key,
  constat_id uuid not null references constats (id),
  topic text not null,
  source text not null,
  type text not null,
  time timestamptz not null,
  data jsonb not null,
  received_at timestamptz not null default now()
);
create index constat_events_timeline on constat_events (constat_id, time);
