// Reconnect storm (docs/design.md §5): 2,000 clients connect and then all disconnect as fast as the machine
// allows (200 in flight). Afterwards connected_users is exactly right and every welcomed session has
// exactly one row, closed, with the close code its client sent: none twice, none lost.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { startPulseProcess, type PulseProcess } from '../helpers/pulse-process.js';
import { connectClient, eventually, mapLimit, type PresenceMessage, type TestClient } from '../helpers/ws-client.js';

const CLIENTS = 2_000;
const USERS = 500; // four sessions each
const IN_FLIGHT = 200;

async function metricsText(server: PulseProcess): Promise<string> {
  return (await fetch(`${server.baseUrl}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
}

function sumMetric(text: string, name: string): number {
  let total = 0;
  for (const line of text.split('\n')) {
    const match = /^([a-z_]+)(\{[^}]*\})? ([0-9.e+-]+)$/.exec(line);
    if (match && match[1] === name) total += Number(match[3]);
  }
  return total;
}

async function connectedUsers(db: TestDatabase): Promise<Map<string, number>> {
  const rows = await db.query<{ user_id: string; sessions: number }>('SELECT user_id, sessions FROM connected_users');
  return new Map(rows.map((r) => [r.user_id, r.sessions]));
}

describe('reconnect storm', { timeout: 180_000 }, () => {
  test(`${CLIENTS} clients connect and disconnect: connected_users exact, one closed row per session`, async () => {
    const db = await createTestDatabase('pulse_storm');
    let server: PulseProcess | undefined;
    const clients: TestClient[] = [];
    let observer: TestClient | undefined;
    try {
      server = await startPulseProcess({
        DATABASE_URL: db.url,
        LOG_LEVEL: 'warn',
        MAX_CONNECTIONS_PER_IP: String(CLIENTS * 2),
        RATE_LIMIT_PER_SECOND: '0',
        HEARTBEAT_INTERVAL_MS: '1000',
        INSTANCE_TTL_MS: '10000',
      });
      const srv = server;
      observer = await connectClient(`${srv.wsUrl}?name=observer`);

      // Storm in: names storm-0 … storm-499, four sessions each, presence off for the crowd.
      const connectStarted = Date.now();
      const connected = await mapLimit(Array.from({ length: CLIENTS }, (_, i) => i), IN_FLIGHT, async (i) => {
        const client = await connectClient(`${srv.wsUrl}?name=storm-${i % USERS}&presence=0`, { keep: () => false, timeoutMs: 60_000 });
        clients.push(client);
        return client;
      });
      const connectMs = Date.now() - connectStarted;
      const sessionIds = connected.map((c) => c.welcome!.sessionId);
      assert.equal(new Set(sessionIds).size, CLIENTS, 'every welcome carries its own sessionId');

      const peakStarted = Date.now();
      await eventually(
        'connected_users at the peak',
        async () => {
          const users = await connectedUsers(db);
          assert.equal(users.size, USERS + 1);
          for (let u = 0; u < USERS; u++) assert.equal(users.get(`storm-${u}`), 4, `storm-${u} has 4 sessions`);
          assert.equal(users.get('observer'), 1);
          return true;
        },
        { timeoutMs: 20_000, intervalMs: 100 },
      );
      const peakMs = Date.now() - peakStarted;
      const peak = await observer.users();
      assert.equal(peak.online, USERS + 1, 'users reply at the peak');
      assert.equal(peak.users.filter((u) => u.id.startsWith('storm-')).every((u) => u.sessions === 4), true);

      // Storm out: half close normally, half with an application code, all at once (bounded).
      const codeOf = (i: number) => (i % 2 === 0 ? 1000 : 4000 + (i % 500));
      const outMark = observer.mark();
      const closeStarted = Date.now();
      const closes = await mapLimit(connected, IN_FLIGHT, (client, i) => client.close(codeOf(i)));
      const closeMs = Date.now() - closeStarted;
      for (const [i, info] of closes.entries()) assert.equal(info.code, codeOf(i), `client ${i} close handshake`);

      const exactStarted = Date.now();
      await eventually(
        'connected_users to hold only the observer',
        async () => {
          const users = await connectedUsers(db);
          assert.deepEqual([...users], [['observer', 1]]);
          return true;
        },
        { timeoutMs: 20_000, intervalMs: 100 },
      );
      const exactMs = Date.now() - exactStarted;

      const rows = await db.query<{ id: string; user_id: string; connected_at: Date; disconnected_at: Date | null; close_code: number | null }>(
        `SELECT id::text, user_id, connected_at, disconnected_at, close_code FROM sessions WHERE user_id LIKE 'storm-%'`,
      );
      assert.equal(rows.length, CLIENTS, `one row per welcomed session (got ${rows.length})`);
      const byId = new Map(rows.map((r) => [r.id, r]));
      assert.equal(byId.size, CLIENTS, 'no duplicate rows');
      let wrong = 0;
      const samples: string[] = [];
      for (const [i, id] of sessionIds.entries()) {
        const row = byId.get(id);
        const problem = !row
          ? 'no row'
          : row.user_id !== `storm-${i % USERS}`
            ? `user ${row.user_id}`
            : row.disconnected_at === null
              ? 'still open'
              : row.disconnected_at < row.connected_at
                ? 'closed before it opened'
                : row.close_code !== codeOf(i)
                  ? `close_code ${row.close_code}, expected ${codeOf(i)}`
                  : undefined;
        if (problem) {
          wrong++;
          if (samples.length < 5) samples.push(`${id}: ${problem}`);
        }
      }
      assert.equal(wrong, 0, `sessions not exactly right: ${samples.join('; ')}`);

      // What the server says about it agrees, and the crowd is gone from memory too.
      const metrics = await metricsText(srv);
      assert.equal(sumMetric(metrics, 'pulse_connections_total'), CLIENTS + 1);
      assert.equal(sumMetric(metrics, 'pulse_closes_total'), CLIENTS);
      assert.equal(sumMetric(metrics, 'pulse_db_write_failures_total'), 0, 'no failed batch');
      const after = await observer.users();
      assert.deepEqual(after.users.map((u) => [u.id, u.sessions]), [['observer', 1]]);
      // The presence message of the last storm second goes out on the next tick.
      await observer.waitFor<PresenceMessage>('presence', (m) => m.online === 1, { since: outMark, timeoutMs: 5_000 });
      const presence = observer.ofType<PresenceMessage>('presence');
      const joined = presence.reduce((n, m) => n + (m.truncated ? Number(m.joinedCount) : m.joined.length), 0);
      const left = presence.reduce((n, m) => n + (m.truncated ? Number(m.leftCount) : m.left.length), 0);
      assert.ok(presence.some((m) => m.truncated === true), 'a storm second is announced truncated');
      assert.ok(presence.every((m) => m.joined.length <= 100 && m.left.length <= 100), 'lists capped at 100');
      const seconds = (Date.now() - connectStarted) / 1000;
      assert.ok(presence.length <= seconds + 3, `at most one presence message per second (${presence.length} in ${seconds.toFixed(1)} s)`);
      assert.equal(joined - left, 1, `presence joins and leaves balance, but for the observer itself (${joined} joined, ${left} left)`);
      assert.equal(presence.at(-1)?.online, 1, 'the last presence message says only the observer is online');

      assert.equal((await observer.close(1000)).code, 1000);
      await eventually('connected_users empty', async () => (await connectedUsers(db)).size === 0, { timeoutMs: 10_000 });
      const [open] = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM sessions WHERE disconnected_at IS NULL');
      assert.equal(open?.n, 0);
      console.log(
        `# presence-storm: ${CLIENTS} connects in ${connectMs} ms (peak rows exact ${peakMs} ms later), ` +
          `${CLIENTS} closes in ${closeMs} ms, database exact ${exactMs} ms after the last close; ${sumMetric(metrics, 'pulse_db_batch_size_count')} batches`,
      );
    } finally {
      for (const client of clients) client.terminate();
      observer?.terminate();
      if (server) {
        server.kill('SIGTERM');
        await Promise.race([server.exited, new Promise((r) => setTimeout(r, 10_000))]);
        await server.stop();
      }
      await db.drop();
    }
  });
});
