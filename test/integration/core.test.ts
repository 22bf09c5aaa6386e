// The core, end to end, with a real client: on the embedded PGlite (always) and on a
// PostgreSQL server (when TEST_DATABASE_URL is set, as in CI).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import type { Db } from '../../src/db/driver.js';
import { createTestDatabase, skipWithoutPostgres, type TestDatabase } from '../helpers/database.js';
import { startPulse, type RunningPulse } from '../helpers/pulse.js';

interface Frame {
  type: string;
  [key: string]: unknown;
}

/** A client that records every frame and lets a test wait for the next one matching a predicate. */
class Client {
  readonly frames: { at: number; data: string }[] = [];
  private waiters: (() => void)[] = [];
  closed: { code: number; reason: string } | undefined;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer) => {
      this.frames.push({ at: Date.now(), data: data.toString() });
      for (const wake of this.waiters.splice(0)) wake();
    });
    ws.on('close', (code, reason) => {
      this.closed = { code, reason: reason.toString() };
      for (const wake of this.waiters.splice(0)) wake();
    });
  }

  static open(url: string): Promise<Client> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      const client = new Client(ws);
      ws.once('open', () => resolve(client));
      ws.once('error', reject);
    });
  }

  json(): Frame[] {
    return this.frames.map((f) => JSON.parse(f.data) as Frame);
  }

  /** Resolves with the first frame at or after index `from` that matches. */
  async next(match: (frame: { at: number; data: string }) => boolean, from = 0, timeoutMs = 10_000): Promise<{ at: number; data: string; index: number }> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const index = this.frames.findIndex((f, i) => i >= from && match(f));
      if (index >= 0) return { ...this.frames[index]!, index };
      if (this.closed) throw new Error(`closed ${this.closed.code} while waiting`);
      if (Date.now() > deadline) throw new Error(`timed out; got ${this.frames.map((f) => f.data.slice(0, 80)).join(' | ')}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 200);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  async nextJson(type: string, from = 0, timeoutMs?: number): Promise<Frame & { index: number }> {
    const frame = await this.next((f) => f.data.startsWith(`{"type":"${type}"`), from, timeoutMs);
    return { ...(JSON.parse(frame.data) as Frame), index: frame.index };
  }

  close(code = 1000): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      this.ws.once('close', () => resolve());
      this.ws.close(code, 'test done');
    });
  }
}

async function waitFor<T>(probe: () => Promise<T | undefined>, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function fibLoop(n: number): bigint {
  let a = 0n;
  let b = 1n;
  for (let i = 0; i < n; i++) [a, b] = [b, a + b];
  return a;
}

function suite(label: string, env: () => Promise<{ env: Record<string, string>; cleanup: () => Promise<void> }>, skip: string | false) {
  describe(`core on ${label}`, { skip }, () => {
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
      const client = await Client.open(`${server.wsUrl}?name=clock-watcher&presence=0`);
      const welcome = await client.nextJson('welcome');
      assert.equal(welcome.protocol, 1);
      assert.match(String(welcome.sessionId), /^[0-9a-f-]{36}$/);
      assert.deepEqual(welcome.user, { id: 'clock-watcher', name: 'clock-watcher' });
      assert.equal(welcome.instanceId, server.pulse.presence.instanceId);
      assert.deepEqual(welcome.limits, { maxN: 1_000_000, maxMessageBytes: 4096, messagesPerSecond: 20 });

      const first = await client.nextJson('time', welcome.index + 1);
      const second = await client.nextJson('time', first.index + 1);
      for (const tick of [first, second]) {
        assert.equal(Number(tick.epochMs) % 1000, 0, 'epochMs is a second boundary');
        assert.equal(tick.now, new Date(Number(tick.epochMs)).toISOString());
        assert.deepEqual(Object.keys(tick), ['type', 'now', 'epochMs', 'index']);
      }
      assert.equal(Number(second.epochMs) - Number(first.epochMs), 1000);
      await client.close();
    });

    test('Fibonacci answers are exact, for JSON requests and bare integers, small and large, negative too', async () => {
      const client = await Client.open(`${server.wsUrl}?presence=0`);
      await client.nextJson('welcome');
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
      for (const [n, id] of cases) client.ws.send(JSON.stringify({ type: 'fibonacci', n, id }));
      client.ws.send(' 007 ');
      for (const [n, id] of cases) {
        const got = await waitFor(async () => client.json().find((f) => f.type === 'fibonacci' && f.id === id), `F(${n})`);
        const magnitude = fibLoop(Math.abs(n));
        const expected = n < 0 && n % 2 === 0 ? -magnitude : magnitude;
        assert.equal(got.value, expected.toString(), `F(${n})`);
        assert.equal(got.n, n);
        assert.equal(got.digits, magnitude.toString().length);
      }
      const bare = await waitFor(async () => client.json().find((f) => f.type === 'fibonacci' && f.id === null), 'bare 007');
      assert.equal(bare.n, 7);
      assert.equal(bare.value, '13');
      await client.close();
    });

    test('bad input gets an error and the connection keeps serving', async () => {
      const client = await Client.open(`${server.wsUrl}?presence=0`);
      await client.nextJson('welcome');
      const invalid = ['abc', '1.5', '1e3', '0x10', '1_000', '١٢', '', '{"type":"fibonacci","n":"10","id":1}'];
      const outOfRange = ['1000001', '1234567890123456789012345678901234567890', '{"type":"fibonacci","n":-1000001,"id":2}'];
      const other: [string, string][] = [
        ['{not json', 'INVALID_JSON'],
        ['{"type":"nope"}', 'INVALID_MESSAGE'],
        ['{"type":"fibonacci"}', 'INVALID_MESSAGE'],
        ['{"type":"fibonacci","n":1,"id":{"x":1}}', 'INVALID_MESSAGE'],
      ];
      for (const text of invalid) client.ws.send(text);
      for (const text of outOfRange) client.ws.send(text);
      for (const [text] of other) client.ws.send(text);
      client.ws.send('{"type":"fibonacci","n":12,"id":"after"}');
      const last = await waitFor(async () => client.json().find((f) => f.id === 'after'), 'answer after the errors');
      assert.equal(last.value, '144');
      const errors = client.json().filter((f) => f.type === 'error');
      assert.deepEqual(
        errors.map((e) => e.code),
        [...invalid.map(() => 'INVALID_NUMBER'), ...outOfRange.map(() => 'OUT_OF_RANGE'), ...other.map(([, code]) => code)],
      );
      assert.equal(errors[7]!.id, 1, 'the id of a valid envelope is echoed on its error');
      assert.equal(client.closed, undefined);
      await client.close();
    });

    test('users and presence show who is online, and the database rows follow connects and disconnects', async () => {
      const watcher = await Client.open(`${server.wsUrl}?name=watcher`);
      await watcher.nextJson('welcome');
      const alice1 = await Client.open(`${server.wsUrl}?name=alice&presence=0`);
      const aliceWelcome = await alice1.nextJson('welcome');
      const alice2 = await Client.open(`${server.wsUrl}?name=alice&presence=0`);
      const alice2Welcome = await alice2.nextJson('welcome');

      const joined = await watcher.next((f) => f.data.includes('"type":"presence"') && f.data.includes('"alice"'));
      const presence = JSON.parse(joined.data) as { joined: { id: string; name: string }[]; online: number };
      assert.deepEqual(presence.joined.find((u) => u.id === 'alice'), { id: 'alice', name: 'alice' });

      watcher.ws.send('{"type":"users","id":"u"}');
      const users = await watcher.nextJson('users');
      assert.equal(users.id, 'u');
      const list = users.users as { id: string; name: string; sessions: number; since: string }[];
      assert.deepEqual(list.map((u) => u.name), [...list.map((u) => u.name)].sort());
      assert.equal(list.find((u) => u.id === 'alice')?.sessions, 2);

      // Both sessions are in the database with the welcome's session ids, and one connected user.
      await waitFor(async () => {
        const rows = await db.query<{ sessions: number }>(`SELECT sessions FROM connected_users WHERE user_id = 'alice'`);
        return rows[0]?.sessions === 2 ? true : undefined;
      }, 'alice with 2 sessions in connected_users');
      const open = await db.query<{ id: string; protocol: string; instance_id: string }>(
        `SELECT id::text, protocol, instance_id::text FROM sessions WHERE user_id = 'alice' AND disconnected_at IS NULL ORDER BY connected_at`,
      );
      assert.deepEqual(new Set(open.map((r) => r.id)), new Set([aliceWelcome.sessionId, alice2Welcome.sessionId]));
      assert.ok(open.every((r) => r.protocol === 'json' && r.instance_id === server.pulse.presence.instanceId));

      // One tab closes: alice stays online with one session; the row records the client's code.
      await alice1.close(4001);
      await waitFor(async () => {
        const rows = await db.query<{ close_code: number | null }>(`SELECT close_code FROM sessions WHERE id = $1`, [aliceWelcome.sessionId]);
        return rows[0]?.close_code === 4001 ? true : undefined;
      }, 'first session closed with 4001');
      assert.deepEqual(await db.query(`SELECT sessions FROM connected_users WHERE user_id = 'alice'`), [{ sessions: 1 }]);

      // The last tab closes: alice leaves the view, and the watcher is told.
      const mark = watcher.frames.length;
      await alice2.close(1000);
      await waitFor(async () => {
        const rows = await db.query(`SELECT 1 FROM connected_users WHERE user_id = 'alice'`);
        return rows.length === 0 ? true : undefined;
      }, 'alice gone from connected_users');
      const left = await watcher.next((f) => f.data.includes('"type":"presence"') && f.data.includes('"left":[{"id":"alice"'), mark);
      assert.ok(left);
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
      const bob = await Client.open(`${server.wsUrl}/bob`);
      const carol = await Client.open(`${server.wsUrl}/carol`);
      bob.ws.send('10');
      bob.ws.send('abc');
      bob.ws.send('1000001');
      bob.ws.send('-6');
      await bob.next((f) => f.data === 'Fibonacci(-6) = -8');
      const replies = bob.frames.map((f) => f.data).filter((d) => !d.startsWith('Current time: '));
      assert.deepEqual(replies, [
        'Fibonacci(10) = 55',
        'Error: Only numbers are accepted.',
        'Error: n must be between -1000000 and 1000000.',
        'Fibonacci(-6) = -8',
      ]);
      const tick = await bob.next((f) => f.data.startsWith('Current time: '));
      assert.match(tick.data, /^Current time: \d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/);
      await carol.close();
      await bob.next((f) => f.data === 'Client #carol has left the chat');
      await waitFor(async () => {
        const rows = await db.query(`SELECT 1 FROM sessions WHERE user_id = 'carol' AND protocol = 'text' AND disconnected_at IS NOT NULL`);
        return rows.length === 1 ? true : undefined;
      }, 'carol closed in the database');
      await bob.close();
    });

    test('/api/fibonacci answers exactly and refuses bad input with the error body', async () => {
      const ok = await fetch(`${server.baseUrl}/api/fibonacci/10`);
      assert.equal(ok.status, 200);
      assert.deepEqual(await ok.json(), { n: 10, value: '55', digits: 2 });
      const bad = await fetch(`${server.baseUrl}/api/fibonacci/1e3`);
      assert.equal(bad.status, 400);
      assert.deepEqual(await bad.json(), { type: 'error', id: null, code: 'INVALID_NUMBER', message: 'n must be an integer' });
      const big = await fetch(`${server.baseUrl}/api/fibonacci/2000000`);
      assert.equal(big.status, 400);
      assert.equal(((await big.json()) as { code: string }).code, 'OUT_OF_RANGE');
    });
  });
}

suite(
  'embedded PGlite',
  async () => ({ env: { DATA_DIR: ':memory:' }, cleanup: async () => undefined }),
  false,
);

let database: TestDatabase | undefined;
suite(
  'PostgreSQL',
  async () => {
    database = await createTestDatabase();
    return { env: { DATABASE_URL: database.url }, cleanup: () => database!.drop() };
  },
  skipWithoutPostgres,
);
