// Migration 002 (the retention index) upgrades a database in place: one built at the 001 schema and
// filled with rows (users, live and stopped instances, open and closed sessions, old and new) keeps
// every row, byte for byte, through the full migrate; running it again applies nothing.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createPgDb } from '../../src/db/driver.js';
import { loadMigrations, migrate } from '../../src/db/migrate.js';
import { createTestDatabase } from '../helpers/database.js';
import { silentLogger } from '../helpers/logger.js';

const TABLES = ['instances', 'users', 'sessions'] as const;

test('migration 002 on a filled 001 database loses no row', { timeout: 60_000 }, async () => {
  const admin = await createTestDatabase('pulse_migrate');
  const db = createPgDb(admin.url, silentLogger);
  try {
    assert.deepEqual(await migrate(db, loadMigrations().filter((m) => m.version === 1)), [1], 'the database starts at the 001 schema');

    await db.query(
      `INSERT INTO instances (id, hostname, pid, started_at, heartbeat_at, stopped_at, seq)
       SELECT gen_random_uuid(), 'host-' || i, 1000 + i, now() - i * interval '1 day', now() - i * interval '1 day' + interval '1 hour',
              CASE WHEN i = 0 THEN NULL ELSE now() - i * interval '1 day' + interval '1 hour' END, i * 17
       FROM generate_series(0, 9) AS i`,
    );
    await db.query(
      `INSERT INTO users (id, name, first_seen_at, last_seen_at)
       SELECT 'user-' || i, 'User ' || i || ' ☃', now() - i * interval '3 hours', now() - i * interval '1 hour'
       FROM generate_series(1, 2000) AS i`,
    );
    // 50,000 sessions over 60 days, one in ten still open, with every optional column set on some.
    await db.query(
      `INSERT INTO sessions (id, user_id, instance_id, protocol, remote_addr, user_agent, connected_at, disconnected_at, close_code, close_reason)
       SELECT gen_random_uuid(), 'user-' || (1 + i % 2000),
              (SELECT id FROM instances ORDER BY hostname OFFSET (i % 10) LIMIT 1),
              CASE WHEN i % 4 = 0 THEN 'text' ELSE 'json' END,
              CASE WHEN i % 3 = 0 THEN NULL ELSE '10.0.' || (i % 256) || '.' || (i % 250) END,
              CASE WHEN i % 5 = 0 THEN NULL ELSE 'agent/' || i END,
              now() - (i % 60) * interval '1 day' - i * interval '1 second',
              CASE WHEN i % 10 = 0 THEN NULL ELSE now() - (i % 60) * interval '1 day' + i * interval '1 millisecond' END,
              CASE WHEN i % 10 = 0 THEN NULL WHEN i % 7 = 0 THEN 1006 ELSE 1000 END,
              CASE WHEN i % 10 = 0 OR i % 2 = 0 THEN NULL ELSE 'reason ' || i END
       FROM generate_series(1, 50000) AS i`,
    );

    const fingerprint = async () => {
      const out: Record<string, { rows: number; md5: string }> = {};
      for (const table of TABLES) {
        const [row] = await db.query<{ rows: number; md5: string }>(
          `SELECT count(*)::int AS rows, md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t.id), '')) AS md5 FROM ${table} t`,
        );
        out[table] = row!;
      }
      return out;
    };
    const before = await fingerprint();
    assert.deepEqual(
      Object.values(before).map((t) => t.rows),
      [10, 2000, 50_000],
    );

    assert.deepEqual(await migrate(db), [2], 'the full migrate applies 002 only');
    assert.deepEqual(await fingerprint(), before, 'every row of every table is as it was');
    const [index] = await db.query<{ def: string }>(`SELECT indexdef AS def FROM pg_indexes WHERE indexname = 'sessions_closed_by_time'`);
    assert.match(index?.def ?? '', /\(disconnected_at\) WHERE \(disconnected_at IS NOT NULL\)/);
    const [view] = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM connected_users');
    assert.equal(view?.n, 2000 / 10, 'the view still answers: every tenth user has an open session');

    assert.deepEqual(await migrate(db), [], 'a second run applies nothing');
    const versions = await db.query<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version');
    assert.deepEqual(versions.map((v) => v.version), [1, 2]);
  } finally {
    await db.close();
    await admin.drop();
  }
});

test('migration 002 replaces an index of its name that an interrupted CREATE INDEX CONCURRENTLY left invalid', { timeout: 60_000 }, async () => {
  const admin = await createTestDatabase('pulse_migrate_invalid');
  const db = createPgDb(admin.url, silentLogger);
  try {
    await migrate(db, loadMigrations().filter((m) => m.version === 1));
    await db.query(`INSERT INTO instances (id, hostname, pid) VALUES ('00000000-0000-4000-8000-000000000001', 'h', 1)`);
    await db.query(`INSERT INTO users (id, name) VALUES ('u', 'u')`);
    await db.query(
      `INSERT INTO sessions (id, user_id, instance_id, protocol, connected_at, disconnected_at, close_code)
       SELECT gen_random_uuid(), 'u', '00000000-0000-4000-8000-000000000001', 'json', now(), now(), 1000 FROM generate_series(1, 3)`,
    );
    // A unique build over equal close codes fails half-way, as an interrupted one would: invalid, and kept.
    await assert.rejects(admin.query('CREATE UNIQUE INDEX CONCURRENTLY sessions_closed_by_time ON sessions (close_code)'), /duplicate|unique/i);
    const invalid = await admin.query(`SELECT indisvalid AS valid FROM pg_index WHERE indexrelid = to_regclass('sessions_closed_by_time')`);
    assert.deepEqual(invalid, [{ valid: false }]);

    assert.deepEqual(await migrate(db), [2]);
    const rebuilt = await admin.query<{ valid: boolean; definition: string }>(
      `SELECT indisvalid AS valid, pg_get_indexdef(indexrelid) AS definition FROM pg_index WHERE indexrelid = to_regclass('sessions_closed_by_time')`,
    );
    assert.equal(rebuilt[0]?.valid, true);
    assert.match(rebuilt[0]?.definition ?? '', /\(disconnected_at\) WHERE \(disconnected_at IS NOT NULL\)/);
  } finally {
    await db.close();
    await admin.drop();
  }
});
