-- The AI service's own state, in schema "ai" (its own database, or beside core's tables in the
-- embedded one). Core never reads these tables; the service never reads core's.

-- The feature store: identifiers seen in finalized constats, kept for the retention period.
create table ai.features (
  kind text not null,
  value text not null,
  constat_id uuid not null,
  -- 'A', 'B', or '' for features of the constat as a whole (the pair, the place).
  role text not null,
  -- When the constat was finalized: "earlier" means finalized before, so a replay or a
  -- redelivery sees exactly what the first pass saw.
  seen_at timestamptz not null,
  accident_at timestamptz,
  primary key (kind, value, constat_id, role)
);
create index features_seen on ai.features (seen_at);

-- One result per function and constat: the event published for it. A redelivered constat
-- republishes the stored event (same id, same content) instead of computing a new one.
create table ai.results (
  function text not null,
  constat_id uuid not null,
  event_id uuid not null unique,
  event jsonb not null,
  created_at timestamptz not null default now(),
  primary key (function, constat_id)
);

-- Dead letters kept by the embedded pipeline (with a broker they go to constats.ai.dlq).
create table ai.dead_letters (
  id uuid primary key,
  source_event_id text,
  function text,
  reason text not null,
  error text not null,
  payload text not null,
  created_at timestamptz not null default now()
);

-- How far the embedded pipeline has read core's outbox (no broker).
create table ai.feed_positions (
  feed text primary key,
  created_at timestamptz not null,
  id uuid not null
);
