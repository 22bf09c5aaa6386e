// A rolling deploy nobody notices: three instances on one PostgreSQL behind a balancer, a few
// hundred PulseClients, and an observer. Each instance in turn is taken out of the balancer
// (Kubernetes removes its endpoint during the preStop), gets SIGTERM, and is started again
// before the next, as a Deployment's rolling update does. Its clients get 1001 and reconnect to
// the others at once; within PRESENCE_LEAVE_GRACE_MS nobody is seen to leave or join.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { PulseClient } from '../../src/client/index.js';
import type { PresenceFrame } from '../../src/protocol/frames.js';
import { startBalancer, type Balancer } from '../../bench/lib/balancer.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { freePort, startPulseProcess, type PulseProcess } from '../helpers/pulse-process.js';
import { eventually } from '../helpers/ws-client.js';

const CLIENTS = 200;
const GRACE_MS = 3_000;

describe('a rolling deploy of three instances under a few hundred clients', { timeout: 180_000 }, () => {
  let db: TestDatabase;
  let balancer: Balancer;
  const ports: number[] = [];
  const instances: PulseProcess[] = [];
  const clients: PulseClient[] = [];
  let observer: PulseClient;
  const presence: PresenceFrame[] = [];
  /** Every session each client was welcomed with, in order, by client index. */
  const sessions: string[][] = [];
  /** Sessions closed with 1001 as the clients saw it. */
  let drained = 0;
  const timeline: string[] = [];
  const t0 = Date.now();

  const start = (port: number) =>
    startPulseProcess({ DATABASE_URL: db.url, PORT: String(port), PRESENCE_LEAVE_GRACE_MS: String(GRACE_MS), LOG_LEVEL: 'warn', RATE_LIMIT_PER_SECOND: '0' });

  before(async () => {
    db = await createTestDatabase('pulse_rolling');
    for (let i = 0; i < 3; i++) ports.push(await freePort());
    instances.push(...(await Promise.all(ports.map(start))));
    balancer = await startBalancer(ports);
    const url = `ws://127.0.0.1:${balancer.port}/ws`;
    observer = new PulseClient({ url, name: 'observer' });
    observer.on('presence', (frame) => {
      presence.push(frame);
      timeline.push(`${Date.now() - t0} presence online=${frame.online} joined=${frame.joined.length} left=${frame.left.length} on ${observer.welcome?.instanceId}`);
    });
    observer.on('welcome', (w) => timeline.push(`${Date.now() - t0} observer welcome on ${w.instanceId}`));
    await observer.connect();
    for (let i = 0; i < CLIENTS; i++) {
      const client = new PulseClient({ url, name: `user-${i}`, presence: false });
      sessions.push([]);
      client.on('welcome', (welcome) => sessions[i]!.push(welcome.sessionId));
      client.on('retry', (retry) => {
        if (retry.close?.code === 1001) drained++;
      });
      clients.push(client);
    }
    await Promise.all(clients.map((client) => client.connect()));
  });

  after(async () => {
    for (const client of [...clients, observer]) client?.close();
    await balancer?.close();
    await Promise.all(instances.map((instance) => instance.stop()));
    await db?.drop();
  });

  test('every instance drained and restarted in turn: nobody flickers, the database stays exact', async () => {
    // Everyone's arrival is announced once; from here on, nobody may come or go.
    await eventually('the observer to see every client online', () => observer.onlineCount === CLIENTS + 1, { timeoutMs: 30_000 });
    const mark = presence.length;
    const reconnectMs: number[] = [];

    for (let i = 0; i < 3; i++) {
      balancer.setBackends(ports.filter((_, j) => j !== i));
      const stoppedAt = Date.now();
      timeline.push(`${Date.now() - t0} SIGTERM ${i}`);
      instances[i]!.kill('SIGTERM');
      assert.deepEqual(await instances[i]!.exited, { code: 0, signal: null }, `instance ${i} drained and exited 0`);
      await eventually(`every client open again after instance ${i}`, () => clients.every((c) => c.state === 'open') && observer.state === 'open', { timeoutMs: 30_000 });
      reconnectMs.push(Date.now() - stoppedAt);
      instances[i] = await start(ports[i]!);
      timeline.push(`${Date.now() - t0} restarted ${i} ready`);
      balancer.setBackends(ports);
    }

    const flickers = presence.slice(mark).flatMap((m) => [...m.joined, ...m.left].map((u) => u.id)).filter((id) => id.startsWith('user-'));
    if (flickers.length > 0) console.log(timeline.join('\n'));
    if (flickers.length > 0) console.log(JSON.stringify(presence.slice(mark).map((m) => ({ online: m.online, joined: m.joined.length, left: m.left.length, j: m.joined.slice(0, 3), l: m.left.slice(0, 3) }))));
    assert.deepEqual(flickers, [], 'no client was seen to leave or join');
    assert.ok(drained >= CLIENTS, `${drained} connections drained with 1001 (every client was on some instance)`);

    // The database: exactly the connected clients online, one open session each, every drained
    // session closed once with 1001.
    await eventually('connected_users to be exact', async () => {
      const rows = await db.query<{ n: number; sessions: number }>('SELECT count(*)::int AS n, sum(sessions)::int AS sessions FROM connected_users');
      return rows[0]!.n === CLIENTS + 1 && rows[0]!.sessions === CLIENTS + 1;
    }, { timeoutMs: 30_000 });
    const open = await db.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM sessions s JOIN instances i ON i.id = s.instance_id WHERE s.disconnected_at IS NULL AND i.stopped_at IS NOT NULL',
    );
    assert.equal(open[0]!.n, 0, 'no session left open on a stopped instance');
    const earlier = sessions.flatMap((list) => list.slice(0, -1));
    assert.equal(earlier.length, drained, 'every earlier session ended in a drain');
    const closed = await db.query<{ id: string; close_code: number | null }>('SELECT id::text, close_code FROM sessions WHERE id = ANY($1::uuid[])', [earlier]);
    assert.equal(closed.length, earlier.length, 'one row per drained session');
    assert.deepEqual([...new Set(closed.map((row) => row.close_code))], [1001], 'each closed with 1001');
    console.log(`# rolling deploy: ${CLIENTS} clients back on the other instances ${reconnectMs.join(', ')} ms after each SIGTERM; ${drained} drained connections`);
  });
});

