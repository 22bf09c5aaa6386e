// The PostgreSQL driver when the server ends a connection under it: the statement in flight fails,
// and the process does not crash (an unhandled 'error' on a pg client would end Pulse).

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createPgDb } from '../../src/db/driver.js';
import { createTestDatabase } from '../helpers/database.js';
import { silentLogger } from '../helpers/logger.js';
import { eventually } from '../helpers/ws-client.js';

describe('PostgreSQL driver', { timeout: 30_000 }, () => {
  test('a connection terminated inside a transaction fails the transaction, not the process', async () => {
    const database = await createTestDatabase('pulse_driver');
    const db = createPgDb(database.url, silentLogger);
    try {
      const outcome = db.transaction(async (tx) => {
        const [row] = await tx.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
        const pid = row!.pid;
        // Between two statements the client is checked out and idle: nothing of pg-pool listens.
        await database.query('SELECT pg_terminate_backend($1)', [pid]);
        await eventually('the termination to arrive', async () => (await database.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [pid])).length === 0, { timeoutMs: 5_000 });
        await new Promise((resolve) => setTimeout(resolve, 100));
        await tx.query('SELECT 1');
      });
      await assert.rejects(outcome);
      assert.deepEqual(await db.query('SELECT 1 AS one'), [{ one: 1 }], 'the pool serves the next statement');
    } finally {
      await db.close();
      await database.drop();
    }
  });
});
