// Presence wired to a fake database: notifications reach the online view, reloads query the
// database for the right instance, and a sweep of this instance rewrites its sessions. The
// decisions themselves are tested in remote-feed.test.ts.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Db, Transaction } from '../../../src/db/driver.js';
import type { RemoteUserRow } from '../../../src/db/queries.js';
import type { LiveSession } from '../../../src/presence/live-sessions.js';
import { Presence, type PresenceMetrics } from '../../../src/presence/presence.js';
import { settle } from '../../helpers/fake-clock.js';
import { silentLogger } from '../../helpers/logger.js';

const SINCE = new Date(Date.UTC(2026, 0, 1));

/** Rows of loadRemotePresence() for `instance`: one per user, or the empty-instance row. */
function remote(instance: string, seq: number, users: Record<string, number>): RemoteUserRow[] {
  const rows = Object.entries(users).map(([user, sessions]) => ({ instance_id: instance, seq, user_id: user, name: user, sessions, since: SINCE }));
  return rows.length > 0 ? rows : [{ instance_id: instance, seq, user_id: null, name: null, sessions: 0, since: null }];
}

/**
 * A database that answers loadRemotePresence() from `state.remote` (all instances, or the one asked
 * for) and everything else with no rows; it hands the LISTEN callbacks to the test.
 */
function fakeDb() {
  const state = { remote: [] as RemoteUserRow[] };
  const statements: { sql: string; params: unknown[] }[] = [];
  const channel = { notify: (_payload: string) => undefined as void, resubscribe: () => undefined as void };
  const query = async <R,>(sql: string, params: unknown[] = []): Promise<R[]> => {
    statements.push({ sql, params });
    if (sql.includes('FROM instances i')) {
      const only = params[1] as string | null;
      return state.remote.filter((row) => only === null || row.instance_id === only) as R[];
    }
    return [];
  };
  const db: Db = {
    kind: 'pg',
    query,
    transaction: <T,>(fn: (tx: Transaction) => Promise<T>) => fn({ query, exec: async () => undefined }),
    async listen(_channel, onMessage, onConnected) {
      channel.notify = onMessage;
      channel.resubscribe = onConnected;
      onConnected();
    },
    close: async () => undefined,
  };
  /** The instances asked for by the reloads so far: null for "every other instance". */
  const reloads = () => statements.filter((s) => s.sql.includes('FROM instances i')).map((s) => s.params[1] as string | null);
  return { db, state, statements, channel, reloads };
}

async function started(remoteRows: RemoteUserRow[] = []) {
  const fake = fakeDb();
  fake.state.remote = remoteRows;
  const seen = { reloads: [] as string[], warnings: [] as string[] };
  const noop = () => undefined;
  const metrics: PresenceMetrics = {
    batchSize: noop,
    batchSeconds: noop,
    eventLagSeconds: noop,
    queueDepth: noop,
    written: noop,
    failed: noop,
    resync: noop,
    sweptSessions: noop,
    sessionsRemoved: noop,
    usersRemoved: noop,
    remoteReload: (reason) => seen.reloads.push(reason),
  };
  const presence = new Presence({
    openDb: async () => fake.db,
    // Heartbeats and sweeps would query the fake database at random moments: never during a test.
    heartbeatIntervalMs: 3_600_000,
    instanceTtlMs: 3_600_000,
    sweepIntervalMs: 3_600_000,
    maxQueueBytes: 1e6,
    leaveGraceMs: 0,
    sessionsRetentionMs: 0,
    metrics,
    log: { ...silentLogger, warn: (_: object, msg: string) => void seen.warnings.push(msg) },
  });
  await presence.start();
  await settle();
  const online = () => Object.fromEntries(presence.onlineUsers.list(100).users.map((u) => [u.id, u.sessions]));
  const notify = async (message: object | string) => {
    fake.channel.notify(typeof message === 'string' ? message : JSON.stringify(message));
    await settle();
  };
  const stop = () => presence.stop(Date.now() + 5_000);
  return { presence, ...fake, seen, online, notify, stop };
}

const delta = (user: string, n: number) => [user, user, n, SINCE.getTime()];

test('other instances: loaded at start, batches applied in order, a gap reloads that instance alone', async () => {
  const { state, reloads, seen, online, notify, stop } = await started(remote('b', 5, { bob: 1 }));
  assert.deepEqual(reloads(), [null], 'every other instance loaded once subscribed');
  assert.deepEqual(online(), { bob: 1 });
  await notify({ i: 'b', s: 6, d: [delta('carol', 1)] });
  assert.deepEqual(online(), { bob: 1, carol: 1 });
  state.remote = [...remote('b', 8, { bob: 2 }), ...remote('c', 1, { dave: 1 })];
  await notify({ i: 'b', s: 8, d: [delta('bob', 1)] });
  assert.deepEqual(reloads(), [null, 'b'], 'only the instance with the gap');
  assert.deepEqual(online(), { bob: 2 }, 'replaced by its snapshot');
  assert.deepEqual(seen.reloads, ['subscribed', 'gap']);
  await stop();
});

test('a re-subscription reloads every other instance and forgets those no longer live', async () => {
  const { state, channel, reloads, online, stop } = await started([...remote('b', 1, { bob: 1 }), ...remote('c', 1, { carol: 1 })]);
  assert.deepEqual(online(), { bob: 1, carol: 1 });
  state.remote = remote('c', 3, { carol: 1, dave: 1 });
  channel.resubscribe();
  await settle();
  assert.deepEqual(reloads(), [null, null]);
  assert.deepEqual(online(), { carol: 1, dave: 1 });
  await stop();
});

test('swept naming this instance rewrites its open sessions from memory; naming another forgets its users', async () => {
  const { presence, statements, online, notify, stop } = await started(remote('b', 1, { bob: 1 }));
  const mine: LiveSession = { id: 's1', userId: 'alice', name: 'alice', protocol: 'json', remoteAddr: null, userAgent: null, connectedAt: SINCE.getTime() };
  presence.open(mine);
  await presence.writer.drain();
  await notify({ swept: ['b', presence.instanceId] });
  assert.deepEqual(online(), { alice: 1 }, 'bob, on the swept instance b, is forgotten');
  await presence.writer.drain();
  const resync = statements.find((s) => s.sql.includes('WITH live AS'));
  assert.ok(resync, 'a resync was written');
  assert.deepEqual((JSON.parse(resync.params[1] as string) as { id: string }[]).map((r) => r.id), ['s1']);
  await stop();
});

test('a stopped instance’s users are forgotten', async () => {
  const { online, notify, stop } = await started([...remote('b', 1, { bob: 1 }), ...remote('c', 1, { bob: 1, carol: 1 })]);
  assert.deepEqual(online(), { bob: 2, carol: 1 });
  await notify({ stopped: 'c' });
  assert.deepEqual(online(), { bob: 1 });
  await stop();
});

test('malformed notifications are logged and ignored, without throwing', async () => {
  const { online, notify, seen, stop } = await started(remote('b', 1, {}));
  for (const payload of ['{oops', 'null', '7', '{"i":"b","s":2,"d":5}', '{"i":"b","s":2,"d":[[1]]}']) await notify(payload);
  assert.equal(seen.warnings.filter((w) => w.includes('malformed')).length, 5);
  await notify({ i: 'b', s: 2, d: [delta('bob', 1)] });
  assert.deepEqual(online(), { bob: 1 }, 'later notifications still apply');
  await stop();
});

test('ready only after the other instances are loaded and that load was announced in one presence message', async () => {
  const { presence, stop } = await started(remote('b', 1, { bob: 1, carol: 1 }));
  assert.equal(presence.ready, false, 'loaded, but its joins not yet taken');
  assert.equal(await presence.pingDatabase(1_000), false, '/readyz says not ready');
  const first = presence.takeChanges();
  assert.deepEqual(first?.joined.map((u) => u.id).sort(), ['bob', 'carol'], 'the first load, announced to whoever is already connected');
  assert.equal(presence.ready, true);
  assert.equal(await presence.pingDatabase(1_000), true);
  await stop();
});
