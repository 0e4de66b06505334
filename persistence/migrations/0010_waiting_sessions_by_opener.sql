-- Applied by persistence/migrate.ts inside a transaction together with its schema_migrations
-- row: no BEGIN/COMMIT here. Never edit a migration once it has shipped; add a new file.

-- Opening a session counts the opener's sessions still waiting for party B (a user may hold
-- only a few: MAX_WAITING_SESSIONS_PER_USER); this keeps that count off a full scan.
create index sessions_waiting_by_opener on sessions ((record->'parties'->'A'->>'userId'))
  where status = 'waiting';
