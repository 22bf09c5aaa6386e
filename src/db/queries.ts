// Every SQL statement Pulse runs, next to the shape of its parameters. One statement per
// batch: data-modifying CTEs plus pg_notify, so rows and the notification commit together.

import { CloseCode } from '../protocol/codes.js';
import type { Queryable } from './driver.js';

export const PRESENCE_CHANNEL = 'pulse_presence';
const SWEEP_LOCK = 7_246_002;
const RETENTION_LOCK = 7_246_003;
/** PostgreSQL's NOTIFY payload limit is 8000 bytes; a larger batch announces a reload hint instead. */
export const MAX_NOTIFY_BYTES = 7_900;

export interface SessionOpenRow {
  id: string;
  user_id: string;
  name: string;
  protocol: 'json' | 'text';
  addr: string | null;
  ua: string | null;
  at: string;
  /** Set when the session also closed before its open was written. */
  closed_at?: string;
  code?: number | null;
  reason?: string | null;
}

export interface SessionCloseRow {
  id: string;
  at: string;
  code: number | null;
  reason: string | null;
}

export async function registerInstance(db: Queryable, id: string, hostname: string, pid: number): Promise<void> {
  await db.query(
    `INSERT INTO instances (id, hostname, pid) VALUES ($1, $2, $3)
     ON CONFLICT (id) DO UPDATE SET heartbeat_at = now(), stopped_at = NULL`,
    [id, hostname, pid],
  );
}

// The notification is built from the rows the statement really changed, so a retried batch
// (after a reply lost with the connection) announces nothing twice. Listeners use `s`, the
// instance's batch number, to spot a missed notification and reload that instance instead.
const WRITE_BATCH = `
WITH opened_users AS (
  INSERT INTO users (id, name, first_seen_at, last_seen_at)
  SELECT DISTINCT ON (o.user_id) o.user_id, o.name, o.at, o.at
  FROM jsonb_to_recordset($2::jsonb) AS o(user_id text, name text, at timestamptz)
  ORDER BY o.user_id, o.at DESC
  ON CONFLICT (id) DO UPDATE SET name = excluded.name, last_seen_at = greatest(users.last_seen_at, excluded.last_seen_at)
), opened AS (
  INSERT INTO sessions (id, user_id, instance_id, protocol, remote_addr, user_agent, connected_at, disconnected_at, close_code, close_reason)
  SELECT o.id, o.user_id, $1::uuid, o.protocol, o.addr, o.ua, o.at, o.closed_at, o.code, o.reason
  FROM jsonb_to_recordset($2::jsonb) AS o(id uuid, user_id text, protocol text, addr text, ua text, at timestamptz,
                                           closed_at timestamptz, code int, reason text)
  -- A retry after a lost reply may carry the close of an open that already committed: apply it.
  ON CONFLICT (id) DO UPDATE SET disconnected_at = excluded.disconnected_at, close_code = excluded.close_code, close_reason = excluded.close_reason
    WHERE sessions.disconnected_at IS NULL AND excluded.disconnected_at IS NOT NULL
  RETURNING user_id, connected_at, disconnected_at, (xmax = 0) AS inserted
), closed AS (
  UPDATE sessions s SET disconnected_at = c.at, close_code = c.code, close_reason = c.reason
  FROM jsonb_to_recordset($3::jsonb) AS c(id uuid, at timestamptz, code int, reason text)
  -- "OR c.id IS NULL" never holds (s.id = c.id), but it makes the open-row test a join condition:
  -- as a plain filter on s it matches the partial indexes' predicate, and with stale statistics
  -- (the default guess is 0.5 % of rows open) the planner hash-joined against every open session
  -- of every instance on each batch, ten times the cost of looking each close up by primary key.
  WHERE s.id = c.id AND (s.disconnected_at IS NULL OR c.id IS NULL)
  RETURNING s.user_id, c.at
), deltas AS (
  SELECT user_id, sum(d)::int AS d, max(at) AS at FROM (
    SELECT user_id, 1 AS d, connected_at AS at FROM opened WHERE inserted AND disconnected_at IS NULL
    UNION ALL
    SELECT user_id, -1, disconnected_at FROM opened WHERE NOT inserted
    UNION ALL
    SELECT user_id, -1, at FROM closed
  ) changes GROUP BY user_id HAVING sum(d) <> 0
), bumped AS (
  UPDATE instances SET seq = seq + 1 WHERE id = $1::uuid AND EXISTS (SELECT 1 FROM deltas) RETURNING seq
), payload AS (
  SELECT b.seq, json_build_object('i', $1::text, 's', b.seq, 'd', json_agg(json_build_array(
           d.user_id, coalesce(n.name, d.user_id), d.d, (extract(epoch FROM d.at) * 1000)::bigint)))::text AS text
  FROM bumped b
  CROSS JOIN deltas d
  LEFT JOIN (SELECT DISTINCT ON (user_id) user_id, name FROM jsonb_to_recordset($2::jsonb) AS o(user_id text, name text)) n
    ON n.user_id = d.user_id
  GROUP BY b.seq
)
-- The commit does not wait for the WAL flush (this transaction only). NOTIFY serialises the commits
-- of every instance on one lock held through that flush, so waiting for it capped the whole cluster
-- at a few hundred batches a second. A PostgreSQL crash may then lose the batches of its last moments
-- (wal_writer_delay, 3 × 200 ms at most): every instance's LISTEN connection drops with it, and each
-- rewrites its rows from memory when it is back (Presence, resync 'reconnected').
-- One row always, so that set_config runs even when nothing is announced.
SELECT set_config('synchronous_commit', 'off', true) AS commit_mode,
       (SELECT count(pg_notify('${PRESENCE_CHANNEL}',
          CASE WHEN octet_length(text) <= ${MAX_NOTIFY_BYTES} THEN text
               ELSE json_build_object('i', $1::text, 's', seq, 'r', 1)::text END))
        FROM payload) AS notified`;

/**
 * Writes one batch of opens and closes and notifies the other instances, atomically. Idempotent on
 * retry. Committed without waiting for the WAL flush: see the statement.
 */
export async function writeBatch(
  db: Queryable,
  instanceId: string,
  opens: SessionOpenRow[],
  closes: SessionCloseRow[],
): Promise<void> {
  await db.query(WRITE_BATCH, [instanceId, JSON.stringify(opens), JSON.stringify(closes)], 'pulse_write_batch');
}

const RESYNC_OWN = `
WITH live AS (
  SELECT * FROM jsonb_to_recordset($2::jsonb) AS o(id uuid, user_id text, name text, protocol text, addr text, ua text, at timestamptz)
), was AS (
  -- The row as it was before this statement: stopped means another instance had swept this one.
  SELECT stopped_at IS NOT NULL AS swept FROM instances WHERE id = $1::uuid
), instance AS (
  INSERT INTO instances (id, hostname, pid, seq) VALUES ($1::uuid, $3, $4, 1)
  ON CONFLICT (id) DO UPDATE SET seq = instances.seq + 1, heartbeat_at = now(), stopped_at = NULL
  RETURNING seq
), live_users AS (
  INSERT INTO users (id, name, first_seen_at, last_seen_at)
  SELECT DISTINCT ON (user_id) user_id, name, at, at FROM live ORDER BY user_id, at DESC
  ON CONFLICT (id) DO UPDATE SET name = excluded.name, last_seen_at = greatest(users.last_seen_at, excluded.last_seen_at)
), live_sessions AS (
  INSERT INTO sessions (id, user_id, instance_id, protocol, remote_addr, user_agent, connected_at)
  SELECT id, user_id, $1::uuid, protocol, addr, ua, at FROM live
  ON CONFLICT (id) DO UPDATE SET disconnected_at = NULL, close_code = NULL, close_reason = NULL
), gone AS (
  UPDATE sessions s SET disconnected_at = now(), close_code = NULL,
    close_reason = 'closed while the database was unreachable (close code not recorded; rewritten by resync)'
  WHERE s.instance_id = $1::uuid AND s.disconnected_at IS NULL AND s.id NOT IN (SELECT id FROM live)
    AND NOT (s.id = ANY ($5::uuid[]))
  RETURNING s.id
)
SELECT pg_notify('${PRESENCE_CHANNEL}', json_build_object('i', $1::text, 's', (SELECT seq FROM instance), 'r', 1)::text),
       (SELECT count(*) FROM gone)::int AS gone, coalesce((SELECT swept FROM was), false) AS swept`;

/**
 * Rewrites this instance's open sessions from memory: the live ones are (re)opened, every other open
 * row of this instance is closed, except those in `closing` (their close is still queued, with its
 * code). Used after the event queue overflowed, after being swept, or after LISTEN reconnected.
 * `swept`: the instance's row had been stopped by another instance's sweep.
 */
export async function resyncOwnSessions(
  db: Queryable,
  instance: { id: string; hostname: string; pid: number },
  live: Omit<SessionOpenRow, 'closed_at' | 'code' | 'reason'>[],
  closing: string[] = [],
): Promise<{ gone: number; swept: boolean }> {
  const rows = await db.query<{ gone: number; swept: boolean }>(RESYNC_OWN, [instance.id, JSON.stringify(live), instance.hostname, instance.pid, closing]);
  return { gone: rows[0]?.gone ?? 0, swept: rows[0]?.swept === true };
}

/** Renews the heartbeat. Returns false when another instance has already declared this one lost. */
export async function heartbeat(db: Queryable, instanceId: string): Promise<boolean> {
  const rows = await db.query<{ stopped_at: Date | null }>(
    'UPDATE instances SET heartbeat_at = now() WHERE id = $1 RETURNING stopped_at',
    [instanceId],
    'pulse_heartbeat',
  );
  return rows.length === 1 && rows[0]!.stopped_at === null;
}

const SWEEP = `
WITH lock AS (
  SELECT pg_try_advisory_xact_lock(${SWEEP_LOCK}) AS held
), dead AS (
  UPDATE instances SET stopped_at = now()
  WHERE stopped_at IS NULL AND id <> $1::uuid
    AND heartbeat_at < now() - make_interval(secs => $2::double precision / 1000)
    AND (SELECT held FROM lock)
  RETURNING id, heartbeat_at
), closed AS (
  UPDATE sessions s SET disconnected_at = now(), close_code = ${CloseCode.ABNORMAL},
    close_reason = 'instance ' || d.id || ' lost: no heartbeat since '
      || to_char(d.heartbeat_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
  FROM dead d
  WHERE s.instance_id = d.id AND s.disconnected_at IS NULL
  RETURNING s.id
), notified AS (
  SELECT pg_notify('${PRESENCE_CHANNEL}', json_build_object('swept', json_agg(d.id))::text) FROM dead d HAVING count(*) > 0
)
SELECT (SELECT count(*) FROM dead)::int AS instances, (SELECT count(*) FROM closed)::int AS sessions,
       (SELECT count(*) FROM notified)::int AS notified`;

/** Closes the sessions of instances whose heartbeat is older than `ttlMs`. Concurrent sweepers skip. */
export async function sweepLostInstances(
  db: Queryable,
  selfId: string,
  ttlMs: number,
): Promise<{ instances: number; sessions: number }> {
  const rows = await db.query<{ instances: number; sessions: number }>(SWEEP, [selfId, ttlMs], 'pulse_sweep');
  return { instances: rows[0]?.instances ?? 0, sessions: rows[0]?.sessions ?? 0 };
}

/** Graceful stop: closes what is still open for this instance with 1001 and marks it stopped. */
export async function stopInstance(db: Queryable, instanceId: string): Promise<number> {
  const rows = await db.query<{ closed: number }>(
    `WITH closed AS (
       UPDATE sessions SET disconnected_at = now(), close_code = ${CloseCode.GOING_AWAY}, close_reason = 'server shutting down'
       WHERE instance_id = $1::uuid AND disconnected_at IS NULL RETURNING id
     ), stopped AS (
       UPDATE instances SET stopped_at = now() WHERE id = $1::uuid
     )
     SELECT pg_notify('${PRESENCE_CHANNEL}', json_build_object('stopped', $1::text)::text),
            (SELECT count(*) FROM closed)::int AS closed`,
    [instanceId],
  );
  return rows[0]?.closed ?? 0;
}

// One short transaction per batch. The transaction-level advisory lock lets one instance at a time
// delete (the others find it taken and end their pass: the work is not theirs to share), and SKIP
// LOCKED leaves any row another transaction holds for a later pass rather than wait for it.
// The users whose last session the batch removes go in the same statement, so that no list of them
// has to outlive it. A user the writer is upserting is locked (skipped); one it upserted since this
// statement's snapshot has a fresh last_seen_at when the lock rechecks the row, and the foreign key
// is the backstop (23503: the caller tries again next pass).
const REMOVE_EXPIRED_SESSIONS = `
WITH lock AS (
  SELECT pg_try_advisory_xact_lock(${RETENTION_LOCK}) AS held
), expired AS (
  SELECT id, user_id FROM sessions
  WHERE disconnected_at IS NOT NULL AND disconnected_at < now() - make_interval(secs => $1::double precision / 1000)
    AND (SELECT held FROM lock)
  ORDER BY disconnected_at
  LIMIT $2
  FOR UPDATE SKIP LOCKED
), removed AS (
  DELETE FROM sessions s USING expired e WHERE s.id = e.id RETURNING 1
), orphans AS (
  SELECT u.id FROM users u
  WHERE u.id IN (SELECT user_id FROM expired)
    AND u.last_seen_at < now() - make_interval(secs => $1::double precision / 1000)
    -- Every statement of a WITH sees the same snapshot: the sessions deleted above are still there.
    AND NOT EXISTS (SELECT 1 FROM sessions s WHERE s.user_id = u.id AND s.id NOT IN (SELECT id FROM expired))
  FOR UPDATE SKIP LOCKED
), gone AS (
  DELETE FROM users u USING orphans o WHERE u.id = o.id RETURNING 1
)
SELECT (SELECT held FROM lock) AS held, (SELECT count(*) FROM removed)::int AS sessions, (SELECT count(*) FROM gone)::int AS users`;

export interface RemovedRows {
  /** False when another instance was removing at that moment: nothing was done. */
  held: boolean;
  sessions: number;
  /** Users whose last session went with this batch, and not seen within the retention. */
  users: number;
}

/**
 * Removes up to `limit` sessions closed more than `retentionMs` ago, oldest first, and the users
 * left without any session. Open sessions are never touched.
 */
export async function removeExpiredSessions(db: Queryable, retentionMs: number, limit: number): Promise<RemovedRows> {
  const rows = await db.query<RemovedRows>(REMOVE_EXPIRED_SESSIONS, [retentionMs, limit], 'pulse_remove_expired_sessions');
  const row = rows[0];
  return { held: row?.held === true, sessions: row?.sessions ?? 0, users: row?.users ?? 0 };
}

export interface RemoteUserRow {
  instance_id: string;
  seq: number;
  user_id: string | null;
  name: string | null;
  sessions: number;
  since: Date | null;
}

/**
 * Open sessions per user of every other live instance (or of one), with each instance's batch
 * number, in one statement so the rows and the numbers come from the same snapshot.
 */
export async function loadRemotePresence(db: Queryable, selfId: string, onlyInstance?: string): Promise<RemoteUserRow[]> {
  return db.query<RemoteUserRow>(
    `SELECT i.id::text AS instance_id, i.seq, s.user_id, u.name, count(s.id)::int AS sessions, min(s.connected_at) AS since
     FROM instances i
     LEFT JOIN sessions s ON s.instance_id = i.id AND s.disconnected_at IS NULL
     LEFT JOIN users u ON u.id = s.user_id
     WHERE i.stopped_at IS NULL AND i.id <> $1::uuid AND ($2::uuid IS NULL OR i.id = $2::uuid)
     GROUP BY i.id, i.seq, s.user_id, u.name`,
    [selfId, onlyInstance ?? null],
  );
}

export interface SessionHistoryRow {
  id: string;
  instance_id: string;
  protocol: string;
  connected_at: Date;
  disconnected_at: Date | null;
  close_code: number | null;
  close_reason: string | null;
}

export async function userSessions(db: Queryable, userId: string, limit: number): Promise<SessionHistoryRow[]> {
  return db.query<SessionHistoryRow>(
    `SELECT id::text, instance_id::text, protocol, connected_at, disconnected_at, close_code, close_reason
     FROM sessions WHERE user_id = $1 ORDER BY connected_at DESC, id LIMIT $2`,
    [userId, limit],
  );
}

export async function ping(db: Queryable): Promise<void> {
  await db.query('SELECT 1');
}
