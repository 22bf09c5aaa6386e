import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Queryable } from '../../../src/db/driver.js';
import { retentionPassIntervalMs, SessionRetention } from '../../../src/presence/retention.js';
import { silentLogger } from '../../helpers/logger.js';

test('the pass interval: half the retention, between 1 s and 30 s', () => {
  assert.equal(retentionPassIntervalMs(2_000), 1_000);
  assert.equal(retentionPassIntervalMs(500), 1_000, 'floor of a second');
  assert.equal(retentionPassIntervalMs(45_000), 22_500);
  assert.equal(retentionPassIntervalMs(90_000), 30_000);
  assert.equal(retentionPassIntervalMs(30 * 86_400_000), 30_000, 'within a minute of crossing it at any retention');
});

/** A database that answers the two retention statements from a script. */
function scripted(sessionBatches: { held: boolean; removed: number; users: string[] }[], userReplies: (number | Error)[]) {
  const calls: string[] = [];
  const db: Queryable = {
    async query<R>(text: string, params?: unknown[]) {
      if (text.includes('DELETE FROM sessions')) {
        calls.push('sessions');
        const batch = sessionBatches.shift() ?? { held: true, removed: 0, users: [] };
        return [batch] as R[];
      }
      calls.push(`users:${(params?.[0] as string[]).join(',')}`);
      const reply = userReplies.shift() ?? 0;
      if (reply instanceof Error) throw reply;
      return [{ removed: reply }] as R[];
    },
  };
  return { db, calls };
}

function counting() {
  const counted = { sessions: 0, users: 0 };
  return { counted, metrics: { sessionsRemoved: (n: number) => void (counted.sessions += n), usersRemoved: (n: number) => void (counted.users += n) } };
}

test('a pass deletes batch after batch until one comes back short, then checks the users it touched', async () => {
  const { db, calls } = scripted(
    [
      { held: true, removed: 3, users: ['a', 'b'] },
      { held: true, removed: 3, users: ['b', 'c'] },
      { held: true, removed: 1, users: ['d'] },
    ],
    [2, 1],
  );
  const { counted, metrics } = counting();
  const retention = new SessionRetention({ retentionMs: 1_000, metrics, log: silentLogger, batchSize: 3 });
  assert.deepEqual(await retention.pass(db), { sessions: 7, users: 3, held: true });
  assert.deepEqual(calls, ['sessions', 'sessions', 'sessions', 'users:a,b,c', 'users:d']);
  assert.deepEqual(counted, { sessions: 7, users: 3 });
});

test('another instance holding the work ends the pass at once', async () => {
  const { db, calls } = scripted([{ held: false, removed: 0, users: [] }], []);
  const { counted, metrics } = counting();
  const retention = new SessionRetention({ retentionMs: 1_000, metrics, log: silentLogger, batchSize: 3 });
  assert.deepEqual(await retention.pass(db), { sessions: 0, users: 0, held: false });
  assert.deepEqual(calls, ['sessions']);
  assert.deepEqual(counted, { sessions: 0, users: 0 });
});

test('a user who gained a session meanwhile (foreign key) is checked again at the next pass; other errors fail the pass', async () => {
  const race = Object.assign(new Error('violates foreign key constraint'), { code: '23503' });
  const { db, calls } = scripted([{ held: true, removed: 1, users: ['a'] }], [race, 1]);
  const { counted, metrics } = counting();
  const retention = new SessionRetention({ retentionMs: 1_000, metrics, log: silentLogger, batchSize: 3 });
  assert.deepEqual(await retention.pass(db), { sessions: 1, users: 0, held: true });
  assert.deepEqual(await retention.pass(db), { sessions: 0, users: 1, held: true });
  assert.deepEqual(calls, ['sessions', 'users:a', 'sessions', 'users:a']);
  assert.deepEqual(counted, { sessions: 1, users: 1 });

  const broken = scripted([{ held: true, removed: 1, users: ['b'] }], [new Error('connection lost')]);
  await assert.rejects(new SessionRetention({ retentionMs: 1_000, metrics, log: silentLogger }).pass(broken.db), /connection lost/);
});
