// A crashed instance (kill -9) leaves no ghost (docs/design.md §5): another instance's sweeper closes the
// victim's sessions with 1006 and a reason naming it, marks it stopped, and the watcher's clients
// get a presence message with the victim's users in `left`. Checked in the rows and on the wire.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createTestDatabase } from '../helpers/database.js';
import { startPulse, type RunningPulse } from '../helpers/pulse.js';
import { startPulseProcess, type PulseProcess } from '../helpers/pulse-process.js';
import { connectClient, eventually, type PresenceMessage, type TestClient } from '../helpers/ws-client.js';

const HEARTBEAT_MS = 500;
const TTL_MS = 4_000;
const SWEEP_MS = 300;
const SHORT = {
  HEARTBEAT_INTERVAL_MS: String(HEARTBEAT_MS),
  INSTANCE_TTL_MS: String(TTL_MS),
  SWEEP_INTERVAL_MS: String(SWEEP_MS),
  SHUTDOWN_TIMEOUT_MS: '4000',
};
/** TTL + 2 sweeps, plus slack for this loaded, shared machine (the contract's own bound is 20 s at default settings). */
const GHOST_BOUND_MS = TTL_MS + 2 * SWEEP_MS + 6_000;

async function apiUsers(baseUrl: string): Promise<[string, number][]> {
  const res = await fetch(`${baseUrl}/api/users`, { signal: AbortSignal.timeout(5_000) });
  const body = (await res.json()) as { users: { id: string; sessions: number }[] };
  return body.users.map((u) => [u.id, u.sessions]);
}

describe('presence after a crash (kill -9)', { timeout: 120_000 }, () => {
  test("the victim's users leave connected_users, sessions closed 1006 naming it, stopped_at set, watchers told", async () => {
    const db = await createTestDatabase('pulse_crash');
    let watcher: RunningPulse | undefined;
    let victim: PulseProcess | undefined;
    const clients: TestClient[] = [];
    try {
      watcher = await startPulse({ ...SHORT, DATABASE_URL: db.url });
      await watcher.ready();
      victim = await startPulseProcess({ ...SHORT, DATABASE_URL: db.url, LOG_LEVEL: 'warn' });

      const on = async (server: { wsUrl: string }, name: string) => {
        const client = await connectClient(`${server.wsUrl}?name=${name}`);
        clients.push(client);
        return client;
      };
      const observer = await on(watcher, 'observer');
      await on(watcher, 'shared');
      const alice = await on(victim, 'alice');
      const bob1 = await on(victim, 'bob');
      const bob2 = await on(victim, 'bob');
      const sharedThere = await on(victim, 'shared');
      const tom = await connectClient(`ws://127.0.0.1:${victim.port}/ws/tom`);
      clients.push(tom);
      await tom.waitFor('text', (m) => String(m.text).startsWith('Current time: '), { timeoutMs: 5_000 });
      const victimId = alice.welcome!.instanceId;
      assert.notEqual(victimId, watcher.pulse.presence.instanceId);
      const victimSessions = [alice, bob1, bob2, sharedThere].map((c) => c.welcome!.sessionId);

      // Before the crash: the watcher knows the victim's users (NOTIFY), and the rows are there.
      const everyone: [string, number][] = [['alice', 1], ['bob', 2], ['observer', 1], ['shared', 2], ['tom', 1]];
      await eventually('the watcher to see the victim\'s users', async () => {
        assert.deepEqual(await apiUsers(watcher!.baseUrl), everyone);
        return true;
      });
      await eventually('the rows of the victim\'s sessions', async () => {
        const rows = await db.query<{ user_id: string; sessions: number }>('SELECT user_id, sessions FROM connected_users ORDER BY user_id');
        assert.deepEqual(rows.map((r) => [r.user_id, r.sessions]), everyone);
        return true;
      });
      await observer.trackPresence();
      assert.deepEqual([...observer.presenceView!.keys()].sort(), ['alice', 'bob', 'observer', 'shared', 'tom']);
      const mark = observer.mark();

      const killedAt = Date.now();
      victim.kill('SIGKILL');
      const exit = await victim.exited;
      assert.equal(exit.signal, 'SIGKILL');
      for (const client of [alice, bob1, bob2, sharedThere, tom]) assert.equal((await client.closed).code, 1006, 'victim clients see the connection drop');

      // Database: the ghosts are gone within TTL + sweep (+ slack), shared keeps its watcher session.
      await eventually(
        'connected_users without the victim\'s users',
        async () => {
          const rows = await db.query<{ user_id: string; sessions: number }>('SELECT user_id, sessions FROM connected_users ORDER BY user_id');
          assert.deepEqual(rows.map((r) => [r.user_id, r.sessions]), [['observer', 1], ['shared', 1]]);
          return true;
        },
        { timeoutMs: GHOST_BOUND_MS, intervalMs: 50 },
      );
      const ghostGoneMs = Date.now() - killedAt;

      const rows = await db.query<{ id: string; user_id: string; disconnected_at: Date | null; close_code: number | null; close_reason: string | null }>(
        'SELECT id::text, user_id, disconnected_at, close_code, close_reason FROM sessions WHERE instance_id = $1 ORDER BY user_id',
        [victimId],
      );
      assert.deepEqual(rows.map((r) => r.user_id), ['alice', 'bob', 'bob', 'shared', 'tom'], 'one row per victim session');
      for (const id of victimSessions) assert.ok(rows.some((r) => r.id === id), `row for welcomed session ${id}`);
      for (const row of rows) {
        assert.notEqual(row.disconnected_at, null, `${row.user_id}: disconnected_at set`);
        assert.equal(row.close_code, 1006, `${row.user_id}: close_code 1006`);
        assert.ok(row.close_reason?.includes(victimId), `${row.user_id}: close_reason names the lost instance: ${row.close_reason}`);
      }
      const [instance] = await db.query<{ stopped_at: Date | null }>('SELECT stopped_at FROM instances WHERE id = $1', [victimId]);
      assert.ok(instance?.stopped_at, 'the victim\'s instances row has stopped_at');
      const [self] = await db.query<{ stopped_at: Date | null }>('SELECT stopped_at FROM instances WHERE id = $1', [watcher.pulse.presence.instanceId]);
      assert.equal(self?.stopped_at, null, 'the watcher is still live');
      const watcherRows = await db.query<{ user_id: string }>(
        'SELECT user_id FROM sessions WHERE instance_id = $1 AND disconnected_at IS NULL ORDER BY user_id',
        [watcher.pulse.presence.instanceId],
      );
      assert.deepEqual(watcherRows.map((r) => r.user_id), ['observer', 'shared'], "the watcher's own sessions untouched");

      // Wire: the watcher's client is told who left (and not `shared`, still online on the watcher).
      const presence = await observer.waitFor<PresenceMessage>('presence', (m) => m.left.some((u) => u.id === 'alice'), { since: mark, timeoutMs: GHOST_BOUND_MS });
      const leftMs = Date.now() - killedAt;
      const left = observer.messages
        .slice(mark)
        .filter((m): m is PresenceMessage => m.type === 'presence')
        .flatMap((m) => m.left.map((u) => u.id))
        .sort();
      assert.deepEqual(left, ['alice', 'bob', 'tom'], 'left lists exactly the users who had no session elsewhere');
      assert.equal(presence.online, 2);
      assert.deepEqual([...observer.presenceView!.keys()].sort(), ['observer', 'shared']);
      assert.deepEqual(await apiUsers(watcher.baseUrl), [['observer', 1], ['shared', 1]]);
      const users = await observer.users();
      assert.deepEqual(users.users.map((u) => [u.id, u.sessions]), [['observer', 1], ['shared', 1]]);
      const metrics = await (await fetch(`${watcher.baseUrl}/metrics`)).text();
      assert.match(metrics, /^pulse_swept_sessions_total 5$/m, 'the sweeper counts the sessions it closed');
      console.log(`# presence-crash: ghost gone from connected_users ${ghostGoneMs} ms after kill -9 (TTL ${TTL_MS} ms, sweep ${SWEEP_MS} ms); presence 'left' on the watcher after ${leftMs} ms`);
    } finally {
      for (const client of clients) client.terminate();
      await victim?.stop();
      await watcher?.stop();
      await db.drop();
    }
  });
});
