// DATABASE_LISTEN_URL: the LISTEN session connects there, the pool where DATABASE_URL says, so that
// the pool may go through PgBouncer in transaction mode (which cannot hold a LISTEN) and presence
// still crosses instances.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createTestDatabase } from '../helpers/database.js';
import { startPulse, type RunningPulse } from '../helpers/pulse.js';
import { connectClient, eventually, type PresenceMessage, type TestClient } from '../helpers/ws-client.js';

describe('DATABASE_LISTEN_URL', { timeout: 60_000 }, () => {
  test('the LISTEN session connects to it, the pool does not, and presence crosses instances', async () => {
    const db = await createTestDatabase('pulse_listen_url');
    const servers: RunningPulse[] = [];
    const clients: TestClient[] = [];
    try {
      const tagged = (name: string) => {
        const url = new URL(db.url);
        url.searchParams.set('application_name', name);
        return url.toString();
      };
      const split = await startPulse({ DATABASE_URL: tagged('pulse-pool'), DATABASE_LISTEN_URL: tagged('pulse-listen') });
      servers.push(split);
      const plain = await startPulse({ DATABASE_URL: db.url });
      servers.push(plain);
      await Promise.all(servers.map((s) => s.ready()));

      const backends = await db.query<{ application_name: string; query: string }>(
        `SELECT application_name, query FROM pg_stat_activity WHERE datname = $1 AND application_name LIKE 'pulse-%'`,
        [db.name],
      );
      const listening = backends.filter((b) => b.query.startsWith('LISTEN')).map((b) => b.application_name);
      assert.deepEqual(listening, ['pulse-listen'], 'the split instance listens through DATABASE_LISTEN_URL only');
      assert.ok(backends.some((b) => b.application_name === 'pulse-pool'), 'its statements go through DATABASE_URL');

      const observer = await connectClient(`${split.wsUrl}?name=observer`);
      clients.push(observer);
      await observer.trackPresence();
      const mark = observer.mark();
      clients.push(await connectClient(`${plain.wsUrl}?name=elsewhere`));
      await observer.waitFor<PresenceMessage>('presence', (m) => m.joined.some((u) => u.id === 'elsewhere'), { since: mark, timeoutMs: 10_000 });
      await eventually('the row', async () => {
        const rows = await db.query<{ user_id: string }>('SELECT user_id FROM connected_users ORDER BY user_id');
        assert.deepEqual(rows.map((r) => r.user_id), ['elsewhere', 'observer']);
        return true;
      });
    } finally {
      for (const client of clients) client.close();
      for (const server of servers) await server.stop();
      await db.drop();
    }
  });
});
