// Sessions retention (SESSIONS_RETENTION, docs/design.md §5) on a real PostgreSQL, with a retention of
// seconds: closed sessions older than it go, and the users they leave without any session; open
// sessions of any age, closed sessions within the retention, instances and every other user stay; the
// counters say what went. The same on a database filled at the previous schema and upgraded by
// Pulse's start, and on PGlite. With 0, nothing is removed.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createPgDb } from '../../src/db/driver.js';
import { loadMigrations, migrate } from '../../src/db/migrate.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { silentLogger } from '../helpers/logger.js';
import { startPulse, type RunningPulse } from '../helpers/pulse.js';
import { connectClient, eventually } from '../helpers/ws-client.js';

const OTHER_INSTANCE = '00000000-0000-4000-8000-000000000001';
const STOPPED_INSTANCE = '00000000-0000-4000-8000-000000000002';

/**
 * Rows the test writes itself, next to what the running Pulse writes: another live instance (its
 * heartbeat far ahead, so that no sweep closes its sessions) and one stopped long ago.
 *  - `gone`: only closed sessions, older than the retention, and last seen long ago → removed with them;
 *  - `mixed`: old closed sessions, one open since long ago and one closed "in the future" (within the
 *    retention for the whole test) → keeps the latter two;
 *  - `recent`: closed sessions within the retention → all kept.
 */
async function seed(db: TestDatabase): Promise<{ oldClosed: number; kept: string[] }> {
  await db.query(
    `INSERT INTO instances (id, hostname, pid, started_at, heartbeat_at, stopped_at) VALUES
       ($1, 'other', 1, now() - interval '2 days', now() + interval '1 day', NULL),
       ($2, 'stopped', 2, now() - interval '40 days', now() - interval '39 days', now() - interval '39 days')`,
    [OTHER_INSTANCE, STOPPED_INSTANCE],
  );
  await db.query(
    `INSERT INTO users (id, name, first_seen_at, last_seen_at) VALUES
       ('gone-1', 'Gone 1', now() - interval '40 days', now() - interval '39 days'),
       ('gone-2', 'Gone 2', now() - interval '40 days', now() - interval '39 days'),
       ('mixed', 'Mixed', now() - interval '40 days', now() - interval '1 day'),
       ('recent', 'Recent', now() - interval '40 days', now())`,
  );
  // 2,500 old closed sessions: more than one batch (2,000).
  await db.query(
    `INSERT INTO sessions (id, user_id, instance_id, protocol, connected_at, disconnected_at, close_code, close_reason)
     SELECT gen_random_uuid(), (ARRAY['gone-1', 'gone-2', 'mixed'])[1 + i % 3], $1, 'json',
            now() - interval '39 days' - i * interval '1 second', now() - interval '39 days' + i * interval '1 second', 1000, 'old'
     FROM generate_series(1, 2500) AS i`,
    [STOPPED_INSTANCE],
  );
  const kept = await db.query<{ id: string }>(
    `INSERT INTO sessions (id, user_id, instance_id, protocol, connected_at, disconnected_at, close_code, close_reason) VALUES
       (gen_random_uuid(), 'mixed', $1, 'json', now() - interval '20 days', NULL, NULL, NULL),
       (gen_random_uuid(), 'mixed', $1, 'text', now() - interval '1 hour', now() + interval '1 hour', 1000, 'within the retention'),
       (gen_random_uuid(), 'recent', $1, 'json', now() - interval '1 hour', now() + interval '1 hour', 1001, 'within the retention'),
       (gen_random_uuid(), 'recent', $1, 'json', now() - interval '1 hour', now() + interval '2 hours', 1006, NULL)
     RETURNING id::text`,
    [OTHER_INSTANCE],
  );
  return { oldClosed: 2500, kept: kept.map((row) => row.id) };
}

async function counter(pulse: RunningPulse, name: string): Promise<number> {
  const text = await (await fetch(`${pulse.baseUrl}/metrics`)).text();
  const match = new RegExp(`^${name} (\\d+)$`, 'm').exec(text);
  return match ? Number(match[1]) : Number.NaN;
}

describe('sessions retention', { timeout: 60_000 }, () => {
  test('SESSIONS_RETENTION=2s: old closed sessions and their orphan users go; open, recent, instances and other users stay', async () => {
    const db = await createTestDatabase('pulse_retention');
    let pulse: RunningPulse | undefined;
    try {
      pulse = await startPulse({ DATABASE_URL: db.url, SESSIONS_RETENTION: '2s' });
      await pulse.ready();
      const running = pulse;
      const { oldClosed, kept } = await seed(db);

      // A live client (its session open) and one that comes and goes (closed now: removed ~2 s later).
      const stays = await connectClient(`${running.wsUrl}?name=stays`);
      const leaves = await connectClient(`${running.wsUrl}?name=leaves`);
      const leavingSession = leaves.welcome!.sessionId;
      leaves.close();
      await leaves.closed;
      await eventually('the short session written closed', async () => {
        const rows = await db.query('SELECT 1 FROM sessions WHERE id = $1 AND disconnected_at IS NOT NULL', [leavingSession]);
        return rows.length === 1 ? true : undefined;
      });

      await eventually(
        'every expired session removed',
        async () => {
          const [row] = await db.query<{ n: number }>(
            `SELECT count(*)::int AS n FROM sessions WHERE disconnected_at IS NOT NULL AND disconnected_at < now() - interval '2 seconds'`,
          );
          const short = await db.query('SELECT 1 FROM sessions WHERE id = $1', [leavingSession]);
          return row?.n === 0 && short.length === 0 ? true : undefined;
        },
        { timeoutMs: 20_000, intervalMs: 200 },
      );

      const sessions = await db.query<{ id: string; user_id: string; open: boolean }>(
        'SELECT id::text, user_id, disconnected_at IS NULL AS open FROM sessions ORDER BY user_id, id',
      );
      const stayingSession = stays.welcome!.sessionId;
      assert.deepEqual(
        sessions.map((s) => s.id).sort(),
        [...kept, stayingSession].sort(),
        'exactly the open sessions and those closed within the retention remain',
      );
      assert.ok(sessions.find((s) => s.id === stayingSession)?.open, "the live client's session is still open");

      await eventually('the orphan users removed', async () => {
        const users = await db.query<{ id: string }>('SELECT id FROM users ORDER BY id');
        return users.map((u) => u.id).join(',') === 'mixed,recent,stays' ? true : undefined;
      });
      const [instances] = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM instances');
      assert.equal(instances?.n, 3, 'instance rows stay: this one, the other live one, the one stopped long ago');

      assert.equal(await counter(running, 'pulse_sessions_removed_total'), oldClosed + 1, 'the counter counts every removed session');
      // gone-1, gone-2 and the client that left (its user had no other session).
      assert.equal(await counter(running, 'pulse_users_removed_total'), 3);

      // The live client is unaffected: it is still served.
      assert.ok(stays.isOpen);
      stays.close();
      await stays.closed;
    } finally {
      await pulse?.stop();
      await db.drop();
    }
  });

  test('a database at the previous schema (001), filled, is upgraded in place and then trimmed', async () => {
    const db = await createTestDatabase('pulse_retention_upgrade');
    let pulse: RunningPulse | undefined;
    try {
      const old = createPgDb(db.url, silentLogger);
      await migrate(old, loadMigrations().filter((m) => m.version === 1));
      await old.close();
      const { kept } = await seed(db);
      const [before] = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM sessions');

      pulse = await startPulse({ DATABASE_URL: db.url, SESSIONS_RETENTION: '2s' });
      await pulse.ready();
      const running = pulse;
      await eventually('the old closed sessions removed', async () => ((await counter(running, 'pulse_sessions_removed_total')) === 2500 ? true : undefined), {
        timeoutMs: 20_000,
        intervalMs: 200,
      });
      const sessions = await db.query<{ id: string }>('SELECT id::text FROM sessions');
      assert.equal(before?.n, 2500 + kept.length);
      assert.deepEqual(sessions.map((s) => s.id).sort(), [...kept].sort(), 'the open session and those within the retention remain');
      await eventually('the orphan users removed', async () => {
        const users = await db.query<{ id: string }>('SELECT id FROM users ORDER BY id');
        return users.map((u) => u.id).join(',') === 'mixed,recent' ? true : undefined;
      });
      const versions = await db.query<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version');
      assert.deepEqual(versions.map((v) => v.version), [1, 2]);
    } finally {
      await pulse?.stop();
      await db.drop();
    }
  });

  test('on PGlite too: a closed session goes once it is older than the retention', async () => {
    const pulse = await startPulse({ SESSIONS_RETENTION: '2s' });
    try {
      await pulse.ready();
      const client = await connectClient(`${pulse.wsUrl}?name=lite`);
      const sessionId = client.welcome!.sessionId;
      client.close();
      await client.closed;
      const db = pulse.pulse.presence.database!;
      await eventually('the session written closed', async () => {
        const rows = await db.query('SELECT 1 FROM sessions WHERE id = $1 AND disconnected_at IS NOT NULL', [sessionId]);
        return rows.length === 1 ? true : undefined;
      });
      await eventually(
        'the session and its user removed',
        async () => {
          const rows = await db.query<{ n: number }>(
            `SELECT (SELECT count(*) FROM sessions WHERE id = $1)::int + (SELECT count(*) FROM users WHERE id = 'lite')::int AS n`,
            [sessionId],
          );
          return rows[0]?.n === 0 ? true : undefined;
        },
        { timeoutMs: 20_000, intervalMs: 200 },
      );
      assert.equal(await counter(pulse, 'pulse_sessions_removed_total'), 1);
    } finally {
      await pulse.stop();
    }
  });
});
