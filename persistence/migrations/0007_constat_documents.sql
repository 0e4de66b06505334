-- The signed report of a constat (a PDF rendered after finalization) and the queue of renders
-- still to do.

-- One row per rendered version. Never updated: a re-render (new template) adds a version, so
-- every copy handed out stays retrievable and checkable by its hash.
create table constat_documents (
  constat_id uuid not null references constats (id),
  version integer not null check (version >= 1),
  -- Which template produced it (report/report-template.ts TEMPLATE_VERSION).
  template text not null,
  -- Where the bytes are in the media store.
  media_key text not null,
  content_type text not null,
  byte_size integer not null check (byte_size > 0),
  sha256 text not null check (sha256 ~ '^[0-9a-f]{64}$'),
  created_at timestamptz not null default now(),
  primary key (constat_id, version)
);

-- Renders waiting: written right after finalization (and by a scan at start for constats
-- finalized while no instance could render), removed when the document is recorded. A lease
-- rather than a held lock: rendering takes a second, and PGlite has one connection.
create table document_renders (
  constat_id uuid primary key references constats (id),
  -- 'finalized' (render once) or 'rerender' (add a version even if one exists).
  reason text not null check (reason in ('finalized', 'rerender')),
  attempts integer not null default 0,
  next_attempt_at timestamptz not null default now(),
  leased_until timestamptz,
  last_error text,
  created_at timestamptz not null default now()
);
create index document_renders_due on document_renders (next_attempt_at);
