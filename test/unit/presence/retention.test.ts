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

/** A database that answers the retention statement from a script: a batch's counts, or an error. */
function scripted(batches: ({ held: boolean; sessions: number; users: number } | Error)[]) {
  const calls: number[] = [];
  const db: Queryable = {
    async query<R>(_text: string, params?: unknown[]) {
      calls.push(params?.[1] as number);
      const batch = batches.shift() ?? { held: true, sessions: 0, users: 0 };
      if (batch instanceof Error) throw batch;
      return [batch] as R[];
    },
  };
  return { db, calls };
}

function counting() {
  const counted = { sessions: 0, users: 0 };
  return { counted, metrics: { sessionsRemoved: (n: number) => void (counted.sessions += n), usersRemoved: (n: number) => void (counted.users += n) } };
}

test('a pass deletes batch after batch until one comes back short, counting the sessions and users removed', async () => {
  const { db, calls } = scripted([
    { held: true, sessions: 3, users: 2 },
    { held: true, sessions: 3, users: 0 },
    { held: true, sessions: 1, users: 1 },
  ]);
  const { counted, metrics } = counting();
  const retention = new SessionRetention({ retentionMs: 1_000, metrics, log: silentLogger, batchSize: 3 });
  assert.deepEqual(await retention.pass(db), { sessions: 7, users: 3, held: true });
  assert.deepEqual(calls, [3, 3, 3], 'three statements of at most 3 rows');
  assert.deepEqual(counted, { sessions: 7, users: 3 });
});

test('another instance holding the work ends the pass at once', async () => {
  const { db, calls } = scripted([{ held: false, sessions: 0, users: 0 }]);
  const { counted, metrics } = counting();
  const retention = new SessionRetention({ retentionMs: 1_000, metrics, log: silentLogger, batchSize: 3 });
  assert.deepEqual(await retention.pass(db), { sessions: 0, users: 0, held: false });
  assert.deepEqual(calls, [3]);
  assert.deepEqual(counted, { sessions: 0, users: 0 });
});

test('a failed batch fails the pass; the next pass starts again from the database', async () => {
  const race = Object.assign(new Error('violates foreign key constraint'), { code: '23503' });
  const { db } = scripted([race, { held: true, sessions: 1, users: 1 }]);
  const { counted, metrics } = counting();
  const retention = new SessionRetention({ retentionMs: 1_000, metrics, log: silentLogger, batchSize: 3 });
  await assert.rejects(retention.pass(db), /foreign key/);
  assert.deepEqual(await retention.pass(db), { sessions: 1, users: 1, held: true });
  assert.deepEqual(counted, { sessions: 1, users: 1 });
});

test('passes run on a timer, stop ends them (no batch after a backlog\'s pause), and a retention of 0 runs none', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const { metrics } = counting();
  const idle = scripted([]);
  new SessionRetention({ retentionMs: 0, metrics, log: silentLogger }).start(idle.db);
  t.mock.timers.tick(3_600_000);
  await settle();
  assert.deepEqual(idle.calls, [], '0 keeps everything: no statement at all');

  const backlog = scripted([{ held: true, sessions: 3, users: 0 }]);
  const retention = new SessionRetention({ retentionMs: 4_000, metrics, log: silentLogger, batchSize: 3 });
  retention.start(backlog.db);
  t.mock.timers.tick(1_999);
  await settle();
  assert.deepEqual(backlog.calls, [], 'the first pass waits half the retention');
  t.mock.timers.tick(1);
  await settle();
  assert.deepEqual(backlog.calls, [3], 'a full batch: the pass pauses before the next');
  retention.stop();
  await settle();
  t.mock.timers.tick(3_600_000);
  await settle();
  assert.deepEqual(backlog.calls, [3], 'stopped during the pause: no further batch, nor pass');
});

const settle = async (): Promise<void> => {
  for (let i = 0; i < 10; i++) await Promise.resolve();
};
