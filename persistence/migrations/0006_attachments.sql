-- Photos and scanned papers attached to a session's document. A row is written when a device
-- asks for an upload slot, before the URL is handed out, so every object the server lets a
-- device write has a row (the cleanup finds the rest as orphans).
create table attachments (
  id uuid primary key,
  session_id text not null,
  -- The party that asked for the slot: a party may reference only its own uploads.
  role text not null check (role in ('A', 'B')),
  user_id text not null,
  kind text not null,
  content_type text not null,
  byte_size integer not null check (byte_size > 0),
  sha256 text not null check (sha256 ~ '^[0-9a-f]{64}$'),
  object_key text not null unique,
  -- pending (no file seen yet), verified, missing, mismatch (see media/attachment-service.ts).
  status text not null default 'pending',
  problem text,
  -- EXIF date and position, kept as metadata for fraud signals; the file itself is not altered.
  exif jsonb,
  created_at timestamptz not null default now(),
  verified_at timestamptz
);
create index attachments_session on attachments (session_id);
create index attachments_created on attachments (created_at);
