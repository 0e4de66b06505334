-- Applied by persistence/migrate.ts inside a transaction together with its schema_migrations
-- row: no BEGIN/COMMIT here. Never edit a migration once it has shipped; add a new file.

-- Drafts are stored incrementally: a save appends the updates made since the previous save
-- (a few bytes to a few KB) instead of rewriting the whole document, which for a large sketch
-- is megabytes. A draft's document is `drafts.state` with every row here applied in `seq`
-- order (Yjs updates commute and are idempotent, so a row already folded in is harmless).
-- Rows are folded into `drafts.state` in the background and then deleted.
create table draft_updates (
  session_id text not null references drafts (session_id) on delete cascade,
  seq bigint generated always as identity,
  -- A Yjs update (several merged into one).
  update bytea not null,
  created_at timestamptz not null default now(),
  primary key (session_id, seq)
);
