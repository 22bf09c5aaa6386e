// A peer that goes silent (no pong) is terminated and its session records 1006 (docs/design.md §3), and
// presence follows: the row is closed, connected_users drops the user, and the others are told.
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { describe, test } from 'node:test';
import { createTestDatabase } from '../helpers/database.js';
import { startPulse, type RunningPulse } from '../helpers/pulse.js';
import { connectClient, eventually, type PresenceMessage, type TestClient } from '../helpers/ws-client.js';

const PING_MS = 1_000;

describe('presence of a silent peer', { timeout: 60_000 }, () => {
  test('no pong: terminated, row closed 1006, connected_users and presence follow', async () => {
    const db = await createTestDatabase('pulse_silence');
    let server: RunningPulse | undefined;
    const clients: TestClient[] = [];
    try {
      server = await startPulse({ DATABASE_URL: db.url, PING_INTERVAL_MS: String(PING_MS), HEARTBEAT_INTERVAL_MS: '500', INSTANCE_TTL_MS: '4000', SWEEP_INTERVAL_MS: '300' });
      await server.ready();
      const on = async (name: string) => {
        const client = await connectClient(`${server!.wsUrl}?name=${name}`);
        clients.push(client);
        return client;
      };
      const observer = await on('observer');
      const alive = await on('alive');
      const silent = await on('silent');
      const twice1 = await on('twice');
      const twice2 = await on('twice');
      await observer.trackPresence();
      await eventually('the rows', async () => {
        const rows = await db.query<{ user_id: string; sessions: number }>('SELECT user_id, sessions FROM connected_users ORDER BY user_id');
        assert.deepEqual(rows.map((r) => [r.user_id, r.sessions]), [['alive', 1], ['observer', 1], ['silent', 1], ['twice', 2]]);
        return true;
      });
      const mark = observer.mark();

      // Two peers stop reading: they will never answer a ping. One of twice's sessions stays.
      const stoppedAt = Date.now();
      for (const client of [silent, twice1]) (client.ws as unknown as { _socket: Socket })._socket.pause();

      await eventually(
        'the silent sessions to be closed in the database',
        async () => {
          const rows = await db.query<{ user_id: string; sessions: number }>('SELECT user_id, sessions FROM connected_users ORDER BY user_id');
          assert.deepEqual(rows.map((r) => [r.user_id, r.sessions]), [['alive', 1], ['observer', 1], ['twice', 1]]);
          return true;
        },
        { timeoutMs: 3 * PING_MS + 8_000, intervalMs: 50 },
      );
      const goneMs = Date.now() - stoppedAt;
      const rows = await db.query<{ id: string; close_code: number | null; close_reason: string | null }>(
        'SELECT id::text, close_code, close_reason FROM sessions WHERE id = ANY($1::uuid[])',
        [[silent, twice1].map((c) => c.welcome!.sessionId)],
      );
      assert.equal(rows.length, 2);
      for (const row of rows) {
        assert.equal(row.close_code, 1006, 'a peer terminated for silence records 1006');
        assert.match(row.close_reason ?? '', /pong/);
      }
      await observer.waitFor<PresenceMessage>('presence', (m) => m.left.some((u) => u.id === 'silent'), { since: mark, timeoutMs: 5_000 });
      await new Promise((r) => setTimeout(r, 1_200));
      const left = observer.messages
        .slice(mark)
        .filter((m): m is PresenceMessage => m.type === 'presence')
        .flatMap((m) => m.left.map((u) => u.id));
      assert.deepEqual(left, ['silent'], 'twice still has a session: only silent left');
      assert.deepEqual([...observer.presenceView!.keys()].sort(), ['alive', 'observer', 'twice']);
      assert.ok(alive.isOpen && twice2.isOpen && observer.isOpen, 'peers that answer pings stay');
      console.log(`# presence-silence: silent peers gone from connected_users ${goneMs} ms after they stopped reading (PING_INTERVAL_MS ${PING_MS})`);
    } finally {
      for (const client of clients) client.terminate();
      await server?.stop();
      await db.drop();
    }
  });
});
