// The PostgreSQL driver when the server ends a connection under it: the statement in flight fails,
// and the process does not crash (an unhandled 'error' on a pg client would end Pulse).

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import pg from 'pg';
import { createPgDb } from '../../src/db/driver.js';
import { loadMigrations, migrate } from '../../src/db/migrate.js';
import { createTestDatabase } from '../helpers/database.js';
import { silentLogger } from '../helpers/logger.js';
import { eventually } from '../helpers/ws-client.js';

describe('PostgreSQL driver', { timeout: 30_000 }, () => {
  test('a connection terminated inside a transaction fails the transaction, not the process', async () => {
    const database = await createTestDatabase('pulse_driver');
    const logged: string[] = [];
    const db = createPgDb(database.url, { ...silentLogger, debug: (_fields: object, message: string) => void logged.push(message) });
    try {
      const outcome = db.transaction(async (tx) => {
        const [row] = await tx.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
        const pid = row!.pid;
        // Between two statements the client is checked out and idle: nothing of pg-pool listens.
        await database.query('SELECT pg_terminate_backend($1)', [pid]);
        await eventually('the termination to arrive', async () => (await database.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [pid])).length === 0, { timeoutMs: 5_000 });
        // The error reaches the idle, checked-out client: Pulse's listener takes it (no crash).
        await eventually('the error to be logged', () => logged.includes('database connection error'), { timeoutMs: 5_000 });
        await tx.query('SELECT 1');
      });
      await assert.rejects(outcome);
      assert.deepEqual(await db.query('SELECT 1 AS one'), [{ one: 1 }], 'the pool serves the next statement');
    } finally {
      await db.close();
      await database.drop();
    }
  });

  test('a migration may outlast the pool\'s query timeout (a long index build is not cut short and retried)', async () => {
    const database = await createTestDatabase('pulse_driver_migrate');
    const db = createPgDb(database.url, silentLogger, { queryTimeoutMs: 300 });
    const holder = new pg.Client({ connectionString: database.url });
    try {
      await migrate(db, loadMigrations().slice(0, 1));
      await holder.connect();
      // Stands in for a build that takes long: migration 002's CREATE INDEX waits for this lock.
      await holder.query('BEGIN');
      await holder.query('LOCK TABLE sessions IN ACCESS EXCLUSIVE MODE');
      const migrating = migrate(db);
      await assert.rejects(db.query('SELECT count(*) FROM sessions'), /timeout/i, 'the pool\'s own statements do time out');
      await new Promise((resolve) => setTimeout(resolve, 700));
      await holder.query('COMMIT');
      assert.deepEqual(await migrating, [2]);
      const index = await database.query(`SELECT 1 FROM pg_indexes WHERE indexname = 'sessions_closed_by_time'`);
      assert.equal(index.length, 1);
    } finally {
      await holder.end().catch(() => undefined);
      await db.close();
      await database.drop();
    }
  });
});
