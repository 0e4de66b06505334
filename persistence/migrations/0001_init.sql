-- Applied by persistence/migrate.ts inside a transaction together with its schema_migrations
-- row: no BEGIN/COMMIT here. Never edit a migration once it has shipped; add a new file.

-- One row per live collaboration session: the latest compacted Yjs document.
create table drafts (
  session_id text primary key,
  -- The form version the document was created with (see sync/), needed to read it back.
  form_version text not null,
  -- A Yjs update (Y.encodeStateAsUpdate) that rebuilds the whole document.
  state bytea not null,
  -- Y.encodeStateVector of the same document, when the writer supplies it.
  state_vector bytea,
  -- Only 'live' drafts are written to; the other statuses are final.
  status text not null default 'live'
    check (status in ('live', 'abandoned', 'expired', 'finalized')),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  -- Incremented on every save.
  version bigint not null default 1
);
