-- Sessions retention (SESSIONS_RETENTION, docs/design.md §5): the oldest closed sessions are found by
-- a range scan of this index, a few thousand at a time, instead of a scan of the whole table. Partial:
-- open sessions are never removed, and leaving them out keeps the index off the open-session path.
--
-- A plain CREATE INDEX, inside the migration's transaction: it blocks the writer's inserts and updates
-- on sessions (reads go on) until it is built, about 0.4 s per million rows on two cores. A database past
-- a few million sessions can have it built beforehand with CREATE INDEX CONCURRENTLY under this name,
-- which this statement then leaves as it is (docs/operations.md §3).
-- A build CONCURRENTLY that was interrupted leaves an invalid index under that name, which the
-- planner ignores: drop it so that it is built here.
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_index WHERE indexrelid = to_regclass('sessions_closed_by_time') AND NOT indisvalid) THEN
    DROP INDEX sessions_closed_by_time;
  END IF;
END
$$;
CREATE INDEX IF NOT EXISTS sessions_closed_by_time ON sessions (disconnected_at) WHERE disconnected_at IS NOT NULL;
