// Every statement of src/db/queries.ts against a real PostgreSQL, with the notifications it
// commits: what other instances learn, and that a retried batch announces nothing twice.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { createPgDb, type Db } from '../../src/db/driver.js';
import { migrate } from '../../src/db/migrate.js';
import {
  PRESENCE_CHANNEL,
  heartbeat,
  loadRemotePresence,
  registerInstance,
  resyncOwnSessions,
  stopInstance,
  sweepLostInstances,
  userSessions,
  writeBatch,
  type SessionOpenRow,
} from '../../src/db/queries.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { silentLogger } from '../helpers/logger.js';

const A = '00000000-0000-4000-8000-00000000000a';
const B = '00000000-0000-4000-8000-00000000000b';
const uuid = (n: number) => `00000000-0000-4000-9000-${String(n).padStart(12, '0')}`;

let database: TestDatabase;
let db: Db;
let listener: pg.Client;
const notifications: Record<string, unknown>[] = [];

/** Waits until `count` notifications arrived since `from`, and returns them. */
async function notified(from: number, count: number): Promise<Record<string, unknown>[]> {
  const deadline = Date.now() + 5_000;
  while (notifications.length < from + count) {
    assert.ok(Date.now() < deadline, `expected ${count} notification(s), got ${notifications.length - from}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return notifications.slice(from, from + count);
}

/** No further notification within a short while (the check for "announced nothing"). */
async function silentLoggerAfter(from: number): Promise<void> {
  // A marker NOTIFY from the same session is delivered after anything committed before it.
  await database.query(`SELECT pg_notify('${PRESENCE_CHANNEL}', '{"marker":1}')`);
  const [next] = await notified(from, 1);
  assert.deepEqual(next, { marker: 1 }, 'nothing was announced before the marker');
}

const open = (id: string, user: string, at = '2026-01-01T00:00:00.000Z'): SessionOpenRow => ({
  id,
  user_id: user,
  name: user.toUpperCase(),
  protocol: 'json',
  addr: '127.0.0.1',
  ua: null,
  at,
});

before(async () => {
  database = await createTestDatabase('pulse_queries');
  db = createPgDb(database.url, silentLogger);
  await migrate(db);
  await registerInstance(db, A, 'host-a', 1);
  await registerInstance(db, B, 'host-b', 2);
  listener = new pg.Client({ connectionString: database.url });
  await listener.connect();
  listener.on('notification', (msg) => notifications.push(JSON.parse(msg.payload ?? 'null') as Record<string, unknown>));
  await listener.query(`LISTEN ${PRESENCE_CHANNEL}`);
});

after(async () => {
  await listener?.end();
  await db?.close();
  await database?.drop();
});

describe('db/queries on PostgreSQL', { timeout: 60_000 }, () => {
  test('writeBatch: rows, and one notification of per-user deltas with the next batch number', async () => {
    const from = notifications.length;
    await writeBatch(db, A, [open(uuid(1), 'ada'), open(uuid(2), 'ada'), open(uuid(3), 'bob')], []);
    const [first] = await notified(from, 1);
    assert.equal(first!.i, A);
    assert.equal(first!.s, 1);
    assert.deepEqual(
      (first!.d as unknown[][]).map(([user, name, delta]) => [user, name, delta]).sort(),
      [
        ['ada', 'ADA', 2],
        ['bob', 'BOB', 1],
      ],
    );
    await writeBatch(db, A, [], [{ id: uuid(3), at: '2026-01-01T00:01:00.000Z', code: 1000, reason: 'bye' }]);
    const [second] = await notified(from + 1, 1);
    assert.equal(second!.s, 2);
    assert.deepEqual((second!.d as unknown[][]).map(([user, , delta]) => [user, delta]), [['bob', -1]]);
    const rows = await database.query<{ id: string; disconnected_at: Date | null; close_code: number | null }>(
      'SELECT id::text, disconnected_at, close_code FROM sessions ORDER BY id',
    );
    assert.deepEqual(rows.map((r) => [r.id, r.close_code]), [[uuid(1), null], [uuid(2), null], [uuid(3), 1000]]);
  });

  test('writeBatch retried after a lost reply changes nothing and announces nothing twice', async () => {
    const batch = [open(uuid(4), 'cy')];
    const from = notifications.length;
    await writeBatch(db, A, batch, []);
    await notified(from, 1);
    await writeBatch(db, A, batch, []); // the same batch again
    await silentLoggerAfter(from + 1);
    const count = await database.query<{ n: number }>(`SELECT count(*)::int AS n FROM sessions WHERE id = $1`, [uuid(4)]);
    assert.equal(count[0]!.n, 1);
    // The retry of an open that also carries its close: the close is applied, announced once.
    const closing = notifications.length;
    const retried = { ...open(uuid(4), 'cy'), closed_at: '2026-01-01T00:02:00.000Z', code: 4001, reason: 'late close' };
    await writeBatch(db, A, [retried], []);
    const [leave] = await notified(closing, 1);
    assert.deepEqual((leave!.d as unknown[][]).map(([user, , delta]) => [user, delta]), [['cy', -1]]);
    await writeBatch(db, A, [retried], []);
    await silentLoggerAfter(closing + 1);
  });

  test('an open and close in one batch: a closed row, and no notification (nobody came online)', async () => {
    const from = notifications.length;
    await writeBatch(db, A, [{ ...open(uuid(5), 'dee'), closed_at: '2026-01-01T00:00:01.000Z', code: 1001, reason: 'gone' }], []);
    await silentLoggerAfter(from);
    const [row] = await database.query<{ close_code: number }>('SELECT close_code FROM sessions WHERE id = $1', [uuid(5)]);
    assert.equal(row!.close_code, 1001);
  });

  test('a batch whose notification would pass 8000 bytes sends a reload hint instead', async () => {
    const from = notifications.length;
    const many = Array.from({ length: 200 }, (_, i) => open(uuid(1000 + i), `user-with-a-long-name-${i}`));
    await writeBatch(db, B, many, []);
    const [hint] = await notified(from, 1);
    assert.deepEqual(hint, { i: B, s: 1, r: 1 });
  });

  test('loadRemotePresence: open sessions per user of the other live instances, with their batch numbers', async () => {
    const rows = await loadRemotePresence(db, B);
    const byUser = new Map(rows.map((r) => [r.user_id, r]));
    assert.ok(rows.every((r) => r.instance_id === A && r.seq === 4), JSON.stringify(rows.slice(0, 3)));
    assert.equal(byUser.get('ada')!.sessions, 2);
    assert.equal(byUser.has('bob'), false, 'closed sessions are not online');
    assert.equal((await loadRemotePresence(db, A, B)).length, 200);
  });

  test('resyncOwnSessions: the live sessions reopened, every other open one closed, and a reload hint', async () => {
    const from = notifications.length;
    const live = [open(uuid(1), 'ada'), open(uuid(6), 'eve')];
    const { gone } = await resyncOwnSessions(db, { id: A, hostname: 'host-a', pid: 1 }, live);
    assert.equal(gone, 1, 'uuid(2) was open in the database but not in memory');
    const [hint] = await notified(from, 1);
    assert.deepEqual(hint, { i: A, s: 5, r: 1 });
    const open_ = await database.query<{ id: string }>(
      `SELECT id::text FROM sessions WHERE instance_id = $1 AND disconnected_at IS NULL ORDER BY id`,
      [A],
    );
    assert.deepEqual(open_.map((r) => r.id), [uuid(1), uuid(6)]);
  });

  test('sweep: a silent instance\'s sessions close with 1006 and a reason naming it; its heartbeat then says so', async () => {
    await database.query(`UPDATE instances SET heartbeat_at = now() - interval '1 hour' WHERE id = $1`, [B]);
    const from = notifications.length;
    const swept = await sweepLostInstances(db, A, 15_000);
    assert.deepEqual(swept, { instances: 1, sessions: 200 });
    const [notice] = await notified(from, 1);
    assert.deepEqual(notice, { swept: [B] });
    const [row] = await database.query<{ close_code: number; close_reason: string }>(
      `SELECT close_code, close_reason FROM sessions WHERE instance_id = $1 LIMIT 1`,
      [B],
    );
    assert.equal(row!.close_code, 1006);
    assert.match(row!.close_reason, new RegExp(`^instance ${B} lost: no heartbeat since \\d{4}-\\d\\d-\\d\\dT`));
    assert.equal(await heartbeat(db, B), false, 'the swept instance learns it was declared lost');
    assert.equal(await heartbeat(db, A), true);
    assert.deepEqual(await sweepLostInstances(db, A, 15_000), { instances: 0, sessions: 0 }, 'a second sweep finds nothing');
  });

  test('stopInstance: open sessions closed with 1001, the instance stopped, and the others told', async () => {
    const from = notifications.length;
    assert.equal(await stopInstance(db, A), 2);
    const [notice] = await notified(from, 1);
    assert.deepEqual(notice, { stopped: A });
    const [instance] = await database.query<{ stopped: boolean }>(`SELECT stopped_at IS NOT NULL AS stopped FROM instances WHERE id = $1`, [A]);
    assert.equal(instance!.stopped, true);
    const history = await userSessions(db, 'ada', 10);
    assert.deepEqual(history.map((s) => [s.id, s.close_code, s.close_reason]), [
      [uuid(1), 1001, 'server shutting down'],
      [uuid(2), null, 'closed while the database was unreachable (close code not recorded; rewritten by resync)'],
    ]);
    assert.equal((await userSessions(db, 'ada', 1)).length, 1, 'the limit holds');
  });
});
