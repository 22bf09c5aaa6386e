// The retention statement (src/db/queries.ts removeExpiredSessions) against a real PostgreSQL: which
// sessions and users it removes, and that it neither waits for nor breaks the writer.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { createPgDb, type Db } from '../../src/db/driver.js';
import { migrate } from '../../src/db/migrate.js';
import { registerInstance, removeExpiredSessions } from '../../src/db/queries.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { silentLogger } from '../helpers/logger.js';

const INSTANCE = '00000000-0000-4000-8000-0000000000aa';
const HOUR = 3_600_000;
let database: TestDatabase;
let db: Db;
let next = 0;

async function user(id: string, lastSeenHoursAgo: number): Promise<void> {
  await database.query(`INSERT INTO users (id, name, last_seen_at) VALUES ($1, $1, now() - $2::float8 * interval '1 hour')`, [id, lastSeenHoursAgo]);
}

/** A session of `userId`; closed that many hours ago, or open (null). */
async function session(userId: string, closedHoursAgo: number | null): Promise<string> {
  const id = `00000000-0000-4000-9000-${String(++next).padStart(12, '0')}`;
  await database.query(
    `INSERT INTO sessions (id, user_id, instance_id, protocol, connected_at, disconnected_at, close_code)
     VALUES ($1, $2, $3, 'json', now() - interval '100 hours',
             CASE WHEN $4::float8 IS NULL THEN NULL ELSE now() - $4::float8 * interval '1 hour' END,
             CASE WHEN $4::float8 IS NULL THEN NULL ELSE 1000 END)`,
    [id, userId, INSTANCE, closedHoursAgo],
  );
  return id;
}

const remaining = async (): Promise<{ users: string[]; sessions: number }> => {
  const users = await database.query<{ id: string }>('SELECT id FROM users ORDER BY id');
  const [row] = await database.query<{ n: number }>('SELECT count(*)::int AS n FROM sessions');
  return { users: users.map((u) => u.id), sessions: row!.n };
};

before(async () => {
  database = await createTestDatabase('pulse_retention_stmt');
  db = createPgDb(database.url, silentLogger);
  await migrate(db);
  await registerInstance(db, INSTANCE, 'host', 1);
});

after(async () => {
  await db?.close();
  await database?.drop();
});

describe('the retention statement on PostgreSQL', { timeout: 60_000 }, () => {
  test('old closed sessions go in batches; a user goes with the last of them, unless still in use', async () => {
    await user('spread', 48); // three old sessions: goes with the batch that takes the last
    for (let i = 0; i < 3; i++) await session('spread', 30 + i);
    await user('online', 48); // an old session and an open one: stays, so does the open one
    await session('online', 40);
    await session('online', null);
    await user('recent', 1); // seen within the retention: stays without sessions
    await session('recent', 25);
    await user('fresh', 48); // a session closed within the retention: everything stays
    await session('fresh', 1);

    const retention = 24 * HOUR;
    const first = await removeExpiredSessions(db, retention, 2);
    assert.deepEqual(first, { held: true, sessions: 2, users: 0 }, 'the two oldest: spread keeps one session');
    const second = await removeExpiredSessions(db, retention, 2);
    assert.equal(second.sessions, 2);
    const third = await removeExpiredSessions(db, retention, 2);
    assert.equal(third.sessions, 1);
    assert.equal(first.users + second.users + third.users, 1, 'spread, with its last session');
    assert.deepEqual(await removeExpiredSessions(db, retention, 2), { held: true, sessions: 0, users: 0 });
    assert.deepEqual(await remaining(), { users: ['fresh', 'online', 'recent'], sessions: 2 });
  });

  test('a user the writer is giving a session is skipped without waiting, and keeps it', async () => {
    await user('racer', 48);
    await session('racer', 30);
    const writer = new pg.Client({ connectionString: database.url });
    await writer.connect();
    try {
      // The writer's batch, not committed yet: the user upserted (row locked), a new session inserted.
      await writer.query('BEGIN');
      await writer.query(`INSERT INTO users (id, name) VALUES ('racer', 'racer') ON CONFLICT (id) DO UPDATE SET last_seen_at = now()`);
      await writer.query(
        `INSERT INTO sessions (id, user_id, instance_id, protocol, connected_at) VALUES ('00000000-0000-4000-9000-0000000fffff', 'racer', $1, 'json', now())`,
        [INSTANCE],
      );
      const started = Date.now();
      const removed = await removeExpiredSessions(db, 24 * HOUR, 100);
      assert.ok(Date.now() - started < 2_000, 'the removal did not wait for the writer');
      assert.deepEqual(removed, { held: true, sessions: 1, users: 0 });
      await writer.query('COMMIT');
      const rows = await database.query<{ user_id: string; open: boolean }>(`SELECT user_id, disconnected_at IS NULL AS open FROM sessions WHERE user_id = 'racer'`);
      assert.deepEqual(rows, [{ user_id: 'racer', open: true }], 'the writer committed its session; the user is still there');
    } finally {
      await writer.end();
    }
  });

  test('while one instance removes, another finds the work taken and does nothing', async () => {
    for (let i = 0; i < 50; i++) {
      await user(`crowd-${i}`, 48);
      await session(`crowd-${i}`, 30);
    }
    const holder = new pg.Client({ connectionString: database.url });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT pg_advisory_xact_lock(7246003)'); // the lock a batch holds while it runs
      assert.deepEqual(await removeExpiredSessions(db, 24 * HOUR, 100), { held: false, sessions: 0, users: 0 });
      await holder.query('COMMIT');
      assert.deepEqual(await removeExpiredSessions(db, 24 * HOUR, 100), { held: true, sessions: 50, users: 50 });
    } finally {
      await holder.end();
    }
  });
});
