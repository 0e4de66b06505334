-- Device keys, finalized constats and the outbox of events to publish.

-- The Ed25519 public key each device signs with (raw 32 bytes). Re-registering replaces it.
create table devices (
  user_id text not null,
  device_id text not null,
  public_key bytea not null check (length(public_key) = 32),
  registered_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  primary key (user_id, device_id)
);

-- A finalized constat never changes: nothing updates this table.
create table constats (
  id uuid primary key,
  -- One constat per session: the unique key is what makes racing finalizers safe.
  session_id text not null unique,
  form_version text not null,
  content jsonb not null,
  -- The canonical JSON (RFC 8785) exactly as hashed, so a verifier needs no re-canonicalisation.
  canonical_json text not null,
  content_hash text not null check (content_hash ~ '^[0-9a-f]{64}$'),
  -- Yjs update rebuilding the document as signed.
  snapshot bytea not null,
  signatures jsonb not null,
  party_a_user text not null,
  party_b_user text not null,
  insurer_a text,
  insurer_b text,
  signed_at timestamptz not null,
  finalized_at timestamptz not null default now()
);
create index constats_party_a on constats (party_a_user, finalized_at desc);
create index constats_party_b on constats (party_b_user, finalized_at desc);

-- Events waiting to be published (transactional outbox). One row per topic and event.
create table outbox (
  id uuid primary key,
  topic text not null,
  message_key text not null,
  -- The whole CloudEvents envelope (structured JSON mode).
  payload jsonb not null,
  headers jsonb not null default '{}',
  created_at timestamptz not null default now(),
  sent_at timestamptz,
  attempts integer not null default 0,
  last_error text,
  next_attempt_at timestamptz not null default now()
);
create index outbox_pending on outbox (next_attempt_at) where sent_at is null;
