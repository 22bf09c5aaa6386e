// A batch too big for one NOTIFY (PostgreSQL's 8000-byte payload limit, docs/design.md §5): after a short
// outage instance A writes hundreds of queued session events at once, announces only a reload hint,
// and instance B must reload A's users from the database. B's /api/users, `users` replies, its
// clients' (truncated) presence messages and connected_users all agree, on the way in and out.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import pg from 'pg';
import { createTestDatabase, TEST_DATABASE_URL, type TestDatabase } from '../helpers/database.js';
import { startPulse, type RunningPulse } from '../helpers/pulse.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';
import { connectClient, eventually, mapLimit, type PresenceMessage, type TestClient } from '../helpers/ws-client.js';

const SHORT = { HEARTBEAT_INTERVAL_MS: '500', INSTANCE_TTL_MS: '10000', SWEEP_INTERVAL_MS: '300', SHUTDOWN_TIMEOUT_MS: '4000' };
const CROWD = 300;
const BOUND_MS = 2_000 + 6_000;

async function apiUsers(server: RunningPulse): Promise<{ online: number; ids: string[] }> {
  const ids: string[] = [];
  let after: string | undefined;
  let online = 0;
  for (;;) {
    const res = await fetch(`${server.baseUrl}/api/users?limit=1000${after ? `&after=${encodeURIComponent(after)}` : ''}`, { signal: AbortSignal.timeout(5_000) });
    const body = (await res.json()) as { online: number; users: { id: string }[]; next?: string };
    online = body.online;
    ids.push(...body.users.map((u) => u.id));
    if (!body.next) break;
    after = body.next;
  }
  return { online, ids: ids.sort() };
}

async function connectedIds(db: TestDatabase): Promise<string[]> {
  return (await db.query<{ user_id: string }>('SELECT user_id FROM connected_users')).map((r) => r.user_id).sort();
}

describe('presence when a batch is too big for one notification', { timeout: 120_000 }, () => {
  test('the other instance reloads and agrees, on the way in and out', async () => {
    const db = await createTestDatabase('pulse_bulk');
    const target = new URL(TEST_DATABASE_URL!);
    let proxy: TcpProxy | undefined;
    const servers: RunningPulse[] = [];
    const clients: TestClient[] = [];
    // Listens like an instance would, to see what A announces.
    const listener = new pg.Client({ connectionString: db.url });
    const notes: string[] = [];
    try {
      await listener.connect();
      listener.on('notification', (msg) => notes.push(msg.payload ?? ''));
      await listener.query('LISTEN pulse_presence');
      proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
      const a = await startPulse({ ...SHORT, DATABASE_URL: proxy.urlFor(db.url), RATE_LIMIT_PER_SECOND: '0' });
      servers.push(a);
      const b = await startPulse({ ...SHORT, DATABASE_URL: db.url });
      servers.push(b);
      await Promise.all([a.ready(), b.ready()]);
      const observer = await connectClient(`${b.wsUrl}?name=observer`);
      clients.push(observer);
      await eventually('A to know the observer', async () => (await apiUsers(a)).ids.join() === 'observer');
      // The observer's own join goes out with B's next tick; the crowd must not share that message.
      await eventually('the observer to hear of its own join', async () => observer.messages.some((m) => m.type === 'presence'));

      // While A's database link is cut, a crowd with long names arrives: the events queue up.
      proxy.cut();
      const names = Array.from({ length: CROWD }, (_, i) => `a-rather-long-user-name-${String(i).padStart(4, '0')}`);
      const crowd = await mapLimit(names, 50, async (name) => {
        const client = await connectClient(`${a.wsUrl}?name=${name}&presence=0`, { keep: () => false });
        clients.push(client);
        return client;
      });
      assert.deepEqual((await observer.users()).users.map((u) => u.id), ['observer'], 'B has heard nothing yet');
      const mark = observer.mark();
      const restoredAt = Date.now();
      proxy.restore();
      const everyone = [...names, 'observer'].sort();
      await eventually(
        'B, its client and the database to know the crowd',
        async () => {
          assert.deepEqual(await connectedIds(db), everyone, 'connected_users');
          const onB = await apiUsers(b);
          assert.equal(onB.online, CROWD + 1);
          assert.deepEqual(onB.ids, everyone, '/api/users on B');
          // More than 100 joined: the message is truncated with counts, and the client asks `users` for the set.
          const presence = observer.messages.slice(mark).filter((m): m is PresenceMessage => m.type === 'presence');
          assert.equal(presence.at(-1)?.online, CROWD + 1, 'presence messages on B');
          const reply = await observer.users();
          assert.deepEqual(reply.users.map((u) => u.id).sort(), everyone, 'users reply on B');
          return true;
        },
        { timeoutMs: BOUND_MS, intervalMs: 100 },
      );
      const inMs = Date.now() - restoredAt;
      const aId = a.pulse.presence.instanceId;
      const hints = notes.map((n) => JSON.parse(n) as { i?: string; r?: number }).filter((n) => n.i === aId && n.r === 1);
      assert.ok(hints.length > 0, `A announced a reload hint instead of an oversized payload (${notes.length} notifications)`);
      assert.ok(notes.every((n) => Buffer.byteLength(n) < 8000), 'every payload under 8000 bytes');
      const presenceIn = observer.messages.slice(mark).filter((m): m is PresenceMessage => m.type === 'presence');
      assert.ok(presenceIn.some((m) => m.truncated === true && m.joinedCount === CROWD), `one truncated presence message announces the whole crowd; [online, joined, left] seen: ${JSON.stringify(presenceIn.map((m) => [m.online, m.joinedCount ?? m.joined.length, m.leftCount ?? m.left.length]))}`);

      // And out again, the same way.
      proxy.cut();
      await mapLimit(crowd, 50, (client) => client.close(1000));
      const mark2 = observer.mark();
      const restoredAt2 = Date.now();
      proxy.restore();
      await eventually(
        'B, its client and the database to see the crowd gone',
        async () => {
          assert.deepEqual(await connectedIds(db), ['observer'], 'connected_users');
          assert.deepEqual((await apiUsers(b)).ids, ['observer'], '/api/users on B');
          const presence = observer.messages.slice(mark2).filter((m): m is PresenceMessage => m.type === 'presence');
          assert.equal(presence.at(-1)?.online, 1, 'presence messages on B');
          assert.deepEqual((await observer.users()).users.map((u) => u.id), ['observer'], 'users reply on B');
          return true;
        },
        { timeoutMs: BOUND_MS, intervalMs: 100 },
      );
      const outMs = Date.now() - restoredAt2;
      const presenceOut = observer.messages.slice(mark2).filter((m): m is PresenceMessage => m.type === 'presence');
      assert.ok(presenceOut.some((m) => m.truncated === true && m.leftCount === CROWD));
      const [closedRows] = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM sessions WHERE close_code = 1000');
      assert.equal(closedRows?.n, CROWD, 'every crowd session closed with 1000');
      console.log(`# presence-bulk: ${CROWD} queued joins agreed on B ${inMs} ms after the database returned (${hints.length} reload hint(s) from A), ${CROWD} leaves ${outMs} ms after`);
    } finally {
      await listener.end().catch(() => undefined);
      proxy?.restore();
      for (const client of clients) client.terminate();
      for (const server of servers) await server.stop();
      await proxy?.close();
      await db.drop();
    }
  });
});
