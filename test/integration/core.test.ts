// The core, end to end, with a real client (test/helpers/ws-client.ts): on the embedded PGlite
// and on a PostgreSQL server (TEST_DATABASE_URL: CI's, or the runner's throwaway one).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Db } from '../../src/db/driver.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { startPulse, type RunningPulse } from '../helpers/pulse.js';
import { connectClient, eventually, type PresenceMessage, type ServerMessage, type UserEntry } from '../helpers/ws-client.js';

function fibLoop(n: number): bigint {
  let a = 0n;
  let b = 1n;
  for (let i = 0; i < n; i++) [a, b] = [b, a + b];
  return a;
}

function suite(label: string, env: () => Promise<{ env: Record<string, string>; cleanup: () => Promise<void> }>) {
  describe(`core on ${label}`, () => {
    let server: RunningPulse;
    let cleanup: () => Promise<void>;
    let db: Db;

    before(async () => {
      const setup = await env();
      cleanup = setup.cleanup;
      server = await startPulse(setup.env);
      await server.ready();
      db = server.pulse.presence.database!;
    });

    after(async () => {
      await server?.stop();
      await cleanup?.();
    });

    test('a client gets welcome, then ticks on consecutive second boundaries', async () => {
      const client = await connectClient(`${server.wsUrl}?name=clock-watcher&presence=0`);
      const welcome = client.welcome!;
      assert.equal(welcome.protocol, 1);
      assert.match(String(welcome.sessionId), /^[0-9a-f-]{36}$/);
      assert.deepEqual(welcome.user, { id: 'clock-watcher', name: 'clock-watcher' });
      assert.equal(welcome.instanceId, server.pulse.presence.instanceId);
      assert.deepEqual(welcome.limits, { maxN: 1_000_000, maxMessageBytes: 4096, messagesPerSecond: 20 });

      const first = await client.waitFor('time', () => true, { since: client.messages.indexOf(welcome) + 1 });
      const second = await client.waitFor('time', () => true, { since: client.messages.indexOf(first) + 1 });
      for (const tick of [first, second]) {
        assert.equal(Number(tick.epochMs) % 1000, 0, 'epochMs is a second boundary');
        assert.equal(tick.now, new Date(Number(tick.epochMs)).toISOString());
        assert.deepEqual(Object.keys(tick), ['type', 'now', 'epochMs']);
      }
      assert.equal(Number(second.epochMs) - Number(first.epochMs), 1000);
      await client.close();
    });

    test('Fibonacci answers are exact, for JSON requests and bare integers, small and large, negative too', async () => {
      const client = await connectClient(`${server.wsUrl}?presence=0`);
      const cases: [number, string | number][] = [
        [0, 'z'],
        [1, 1],
        [10, 'ten'],
        [-10, 'neg'],
        [93, 'edge'],
        [94, 'past-table'],
        [300, 'inline'],
        [30_000, 'worker'],
      ];
      for (const [n, id] of cases) client.send({ type: 'fibonacci', n, id });
      client.send(' 007 ');
      for (const [n, id] of cases) {
        const got = await client.waitFor('fibonacci', (m) => m.id === id);
        const magnitude = fibLoop(Math.abs(n));
        const expected = n < 0 && n % 2 === 0 ? -magnitude : magnitude;
        assert.equal(got.value, expected.toString(), `F(${n})`);
        assert.equal(got.n, n);
        assert.equal(got.digits, magnitude.toString().length);
      }
      const bare = await client.waitFor('fibonacci', (m) => m.id === null);
      assert.equal(bare.n, 7);
      assert.equal(bare.value, '13');
      await client.close();
    });

    test('bad input gets an error and the connection keeps serving', async () => {
      const client = await connectClient(`${server.wsUrl}?presence=0`);
      const invalid = ['abc', '1.5', '1e3', '0x10', '1_000', '١٢', '', '{"type":"fibonacci","n":"10","id":1}'];
      const outOfRange = ['1000001', '1234567890123456789012345678901234567890', '{"type":"fibonacci","n":-1000001,"id":2}'];
      const other: [string, string][] = [
        ['{not json', 'INVALID_JSON'],
        ['{"type":"nope"}', 'INVALID_MESSAGE'],
        ['{"type":"fibonacci"}', 'INVALID_MESSAGE'],
        ['{"type":"fibonacci","n":1,"id":{"x":1}}', 'INVALID_MESSAGE'],
      ];
      for (const text of [...invalid, ...outOfRange, ...other.map(([text]) => text)]) client.send(text);
      client.send('{"type":"fibonacci","n":12,"id":"after"}');
      const last = await client.waitFor('fibonacci', (m) => m.id === 'after');
      assert.equal(last.value, '144');
      const errors = client.ofType('error');
      assert.deepEqual(
        errors.map((e) => e.code),
        [...invalid.map(() => 'INVALID_NUMBER'), ...outOfRange.map(() => 'OUT_OF_RANGE'), ...other.map(([, code]) => code)],
      );
      assert.equal(errors[7]!.id, 1, 'the id of a valid envelope is echoed on its error');
      assert.equal(client.closeInfo, undefined, 'still open');
      await client.close();
    });

    test('users and presence show who is online, and the database rows follow connects and disconnects', async () => {
      const watcher = await connectClient(`${server.wsUrl}?name=watcher`);
      const alice1 = await connectClient(`${server.wsUrl}?name=alice&presence=0`);
      const aliceWelcome = alice1.welcome!;
      const alice2 = await connectClient(`${server.wsUrl}?name=alice&presence=0`);
      const alice2Welcome = alice2.welcome!;

      const presence = await watcher.waitFor<PresenceMessage>('presence', (m) => m.joined.some((u) => u.id === 'alice'));
      assert.deepEqual(presence.joined.find((u) => u.id === 'alice'), { id: 'alice', name: 'alice' });

      watcher.send('{"type":"users","id":"u"}');
      const users = await watcher.waitFor<ServerMessage & { users: UserEntry[] }>('users', (m) => m.id === 'u');
      const list = users.users;
      assert.deepEqual(list.map((u) => u.name), [...list.map((u) => u.name)].sort());
      assert.equal(list.find((u) => u.id === 'alice')?.sessions, 2);

      // Both sessions are in the database with the welcome's session ids, and one connected user.
      await eventually('alice with 2 sessions in connected_users', async () => {
        const rows = await db.query<{ sessions: number }>(`SELECT sessions FROM connected_users WHERE user_id = 'alice'`);
        return rows[0]?.sessions === 2;
      });
      const open = await db.query<{ id: string; protocol: string; instance_id: string }>(
        `SELECT id::text, protocol, instance_id::text FROM sessions WHERE user_id = 'alice' AND disconnected_at IS NULL ORDER BY connected_at`,
      );
      assert.deepEqual(new Set(open.map((r) => r.id)), new Set([aliceWelcome.sessionId, alice2Welcome.sessionId]));
      assert.ok(open.every((r) => r.protocol === 'json' && r.instance_id === server.pulse.presence.instanceId));

      // One tab closes: alice stays online with one session; the row records the client's code.
      await alice1.close(4001);
      await eventually('first session closed with 4001', async () => {
        const rows = await db.query<{ close_code: number | null }>(`SELECT close_code FROM sessions WHERE id = $1`, [aliceWelcome.sessionId]);
        return rows[0]?.close_code === 4001;
      });
      assert.deepEqual(await db.query(`SELECT sessions FROM connected_users WHERE user_id = 'alice'`), [{ sessions: 1 }]);

      // The last tab closes: alice leaves the view, and the watcher is told.
      const mark = watcher.mark();
      await alice2.close(1000);
      await eventually('alice gone from connected_users', async () => (await db.query(`SELECT 1 FROM connected_users WHERE user_id = 'alice'`)).length === 0);
      await watcher.waitFor<PresenceMessage>('presence', (m) => m.left.some((u) => u.id === 'alice'), { since: mark });
      const closed = await db.query<{ disconnected_at: Date | null; close_code: number }>(`SELECT disconnected_at, close_code FROM sessions WHERE user_id = 'alice'`);
      assert.equal(closed.length, 2);
      assert.ok(closed.every((r) => r.disconnected_at !== null));

      const api = (await (await fetch(`${server.baseUrl}/api/users`)).json()) as { online: number; users: { id: string }[] };
      assert.ok(api.users.some((u) => u.id === 'watcher'));
      assert.ok(!api.users.some((u) => u.id === 'alice'));
      const history = (await (await fetch(`${server.baseUrl}/api/users/alice/sessions`)).json()) as { sessions: { id: string; closeCode: number }[] };
      assert.deepEqual(history.sessions.map((s) => s.id), [alice2Welcome.sessionId, aliceWelcome.sessionId]);
      assert.deepEqual(history.sessions.map((s) => s.closeCode), [1000, 4001]);
      await watcher.close();
    });

    test('the text protocol speaks the original strings, byte for byte', async () => {
      const bob = await connectClient(`${server.wsUrl}/bob`);
      const carol = await connectClient(`${server.wsUrl}/carol`);
      for (const text of ['10', 'abc', '1000001', '-6']) bob.send(text);
      await bob.waitFor('text', (m) => m.text === 'Fibonacci(-6) = -8');
      const replies = bob.ofType('text').map((m) => String(m.text)).filter((line) => !line.startsWith('Current time: '));
      assert.deepEqual(replies, [
        'Fibonacci(10) = 55',
        'Error: Only numbers are accepted.',
        'Error: n must be between -1000000 and 1000000.',
        'Fibonacci(-6) = -8',
      ]);
      const tick = await bob.waitFor('text', (m) => String(m.text).startsWith('Current time: '));
      assert.match(String(tick.text), /^Current time: \d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/);
      await carol.close();
      await bob.waitFor('text', (m) => m.text === 'Client #carol has left the chat');
      await eventually(
        'carol closed in the database',
        async () => (await db.query(`SELECT 1 FROM sessions WHERE user_id = 'carol' AND protocol = 'text' AND disconnected_at IS NOT NULL`)).length === 1,
      );
      await bob.close();
    });

    test('/api/fibonacci answers exactly and refuses bad input with the error body', async () => {
      const ok = await fetch(`${server.baseUrl}/api/fibonacci/10`);
      assert.equal(ok.status, 200);
      assert.deepEqual(await ok.json(), { n: 10, value: '55', digits: 2 });
      const bad = await fetch(`${server.baseUrl}/api/fibonacci/1e3`);
      assert.equal(bad.status, 400);
      assert.deepEqual(await bad.json(), { statusCode: 400, code: 'INVALID_NUMBER', error: 'Bad Request', message: 'n must be an integer' });
      const big = await fetch(`${server.baseUrl}/api/fibonacci/2000000`);
      assert.equal(big.status, 400);
      assert.equal(((await big.json()) as { code: string }).code, 'OUT_OF_RANGE');
    });
  });
}

suite(
  'embedded PGlite',
  async () => ({ env: { DATA_DIR: ':memory:' }, cleanup: async () => undefined }),
);

let database: TestDatabase | undefined;
suite(
  'PostgreSQL',
  async () => {
    database = await createTestDatabase();
    return { env: { DATABASE_URL: database.url }, cleanup: () => database!.drop() };
  },
);
