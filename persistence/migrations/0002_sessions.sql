-- Session state for a deployment without Redis (the embedded default), so a restarted server
-- still knows its sessions. With Redis, the same state lives there instead.

create table sessions (
  id text primary key,
  -- The session record (sync/session-record.ts) as JSON; `status` mirrors record->>'status'
  -- so compare-and-set transitions can be expressed in the WHERE clause.
  record jsonb not null,
  status text not null,
  -- Kept past expiry so a late device is told "expired", not "unknown".
  retain_until timestamptz not null
);

create table join_codes (
  code text primary key,
  session_id text not null,
  expires_at timestamptz not null
);

create table throttle_counters (
  key text primary key,
  count integer not null,
  window_ends timestamptz not null
);
