// Presence through database outages (docs/design.md §5): a TCP proxy between Pulse and PostgreSQL is cut
// and restored on purpose. Clients keep being served meanwhile, and once the database is back its
// rows (sessions, connected_users, instances) are exact again: checked row by row, not just "no crash".
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { createTestDatabase, TEST_DATABASE_URL, type TestDatabase } from '../helpers/database.js';
import { startPulse, type RunningPulse } from '../helpers/pulse.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';
import { connectClient, eventually, type PresenceMessage, type TestClient } from '../helpers/ws-client.js';

// Short settings the contract allows; the machine is slow and shared, so bounds below are generous.
const SHORT = {
  HEARTBEAT_INTERVAL_MS: '500',
  INSTANCE_TTL_MS: '4000',
  SWEEP_INTERVAL_MS: '300',
  SHUTDOWN_TIMEOUT_MS: '4000',
  PING_INTERVAL_MS: '5000',
};
/** docs/design.md §5: exact again within 2 s of the database's return; the slack is for this loaded machine. */
const RECOVERY_BOUND_MS = 2_000 + 6_000;
const F90 = '2880067194370816120';

interface SessionRow {
  id: string;
  user_id: string;
  instance_id: string;
  disconnected_at: Date | null;
  close_code: number | null;
  close_reason: string | null;
}

const figures: string[] = [];
after(() => {
  if (figures.length > 0) console.log(`# presence-outage figures:\n#   ${figures.join('\n#   ')}`);
});

async function getText(url: string): Promise<{ status: number; body: string }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
  return { status: res.status, body: await res.text() };
}

function metric(text: string, name: string, labels = ''): number {
  let total = 0;
  let found = false;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const match = /^([a-z_]+)(\{[^}]*\})? ([0-9.e+-]+)$/.exec(line);
    if (!match || match[1] !== name || (labels && !(match[2] ?? '').includes(labels))) continue;
    total += Number(match[3]);
    found = true;
  }
  return found ? total : Number.NaN;
}

interface Expectation {
  /** Clients whose sessions must be open. */
  open: TestClient[];
  /** Clients whose sessions must be closed, with the close code the row must carry (null: resync, no code). */
  closed: [TestClient, number | null][];
  /** Sessions that must have no row at all (opened and closed while the queue had overflowed). */
  absent?: TestClient[];
}

/** Everything that is not exact in the database, as readable lines; empty when it is exact. */
async function inexactness(db: TestDatabase, instanceId: string, expected: Expectation): Promise<string[]> {
  const problems: string[] = [];
  const rows = await db.query<SessionRow>('SELECT id::text, user_id, instance_id::text, disconnected_at, close_code, close_reason FROM sessions');
  const byId = new Map(rows.map((r) => [r.id, r]));
  const wantUsers = new Map<string, number>();
  for (const client of expected.open) {
    const row = byId.get(client.welcome!.sessionId);
    wantUsers.set(client.welcome!.user.id, (wantUsers.get(client.welcome!.user.id) ?? 0) + 1);
    if (!row) problems.push(`open session of ${client.welcome!.user.id} has no row`);
    else if (row.disconnected_at !== null) problems.push(`open session of ${client.welcome!.user.id} is closed in the database (${row.close_code})`);
    else if (row.instance_id !== instanceId) problems.push(`session of ${client.welcome!.user.id} on instance ${row.instance_id}`);
  }
  for (const [client, code] of expected.closed) {
    const row = byId.get(client.welcome!.sessionId);
    if (!row) problems.push(`closed session of ${client.welcome!.user.id} has no row`);
    else if (row.disconnected_at === null) problems.push(`closed session of ${client.welcome!.user.id} is still open in the database`);
    else if (row.close_code !== code) problems.push(`closed session of ${client.welcome!.user.id} has close_code ${row.close_code}, expected ${code}`);
  }
  for (const client of expected.absent ?? []) {
    if (byId.has(client.welcome!.sessionId)) problems.push(`session of ${client.welcome!.user.id} has a row, expected none`);
  }
  const known = new Set([...expected.open, ...expected.closed.map(([c]) => c), ...(expected.absent ?? [])].map((c) => c.welcome!.sessionId));
  for (const row of rows) if (!known.has(row.id)) problems.push(`unexpected session row ${row.id} of ${row.user_id}`);
  const connected = await db.query<{ user_id: string; sessions: number }>('SELECT user_id, sessions FROM connected_users');
  const got = new Map(connected.map((r) => [r.user_id, r.sessions]));
  for (const [user, sessions] of wantUsers) if (got.get(user) !== sessions) problems.push(`connected_users: ${user} has ${got.get(user) ?? 'no row'}, expected ${sessions}`);
  for (const [user, sessions] of got) if (!wantUsers.has(user)) problems.push(`connected_users: ghost ${user} (${sessions} sessions)`);
  const instances = await db.query<{ id: string; stopped_at: Date | null }>('SELECT id::text, stopped_at FROM instances');
  if (instances.length !== 1 || instances[0]!.id !== instanceId || instances[0]!.stopped_at !== null) {
    problems.push(`instances: ${JSON.stringify(instances)}, expected one live row ${instanceId}`);
  }
  return problems;
}

/** Polls until the database is exact; returns how long that took. */
async function waitExact(db: TestDatabase, instanceId: string, expected: Expectation, timeoutMs = RECOVERY_BOUND_MS): Promise<number> {
  const started = Date.now();
  await eventually(
    'the database to be exact',
    async () => {
      const problems = await inexactness(db, instanceId, expected);
      if (problems.length > 0) throw new Error(problems.join('; '));
      return true;
    },
    { timeoutMs, intervalMs: 50 },
  );
  return Date.now() - started;
}

/**
 * Exact must stay exact: checked again once a heartbeat (500 ms) and a sweep (300 ms) have had
 * time to run, so that a stray write they would start (a resync after being declared lost, a
 * batch written twice) shows. This waits on purpose: the test is about what time brings.
 */
async function stillExact(db: TestDatabase, instanceId: string, expected: Expectation): Promise<void> {
  await new Promise((r) => setTimeout(r, 600));
  assert.deepEqual(await inexactness(db, instanceId, expected), []);
}

async function withSetup(
  name: string,
  env: Record<string, string>,
  fn: (ctx: {
    db: TestDatabase;
    proxy: TcpProxy;
    server: RunningPulse;
    /** Opens a client named `name`, closed at the end of the test. */
    connect: (name: string) => Promise<TestClient>;
  }) => Promise<void>,
  cutBeforeStart = false,
): Promise<void> {
  const db = await createTestDatabase(`pulse_outage_${name}`);
  const target = new URL(TEST_DATABASE_URL!);
  const proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
  if (cutBeforeStart) proxy.cut();
  let server: RunningPulse | undefined;
  const clients: TestClient[] = [];
  try {
    server = await startPulse({ ...SHORT, ...env, DATABASE_URL: proxy.urlFor(db.url) });
    const wsUrl = server.wsUrl;
    const connect = async (clientName: string) => {
      const client = await connectClient(`${wsUrl}?name=${clientName}`);
      clients.push(client);
      return client;
    };
    await fn({ db, proxy, server, connect });
  } finally {
    proxy.restore();
    for (const client of clients) client.terminate();
    await server?.stop();
    await proxy.close();
    await db.drop();
  }
}

describe('presence through database outages', { timeout: 120_000 }, () => {
  test('(a) database unreachable at start-up: serving goes on, /readyz 503; on return ready and exact', async () => {
    await withSetup(
      'a',
      {},
      async ({ db, proxy, server, connect }) => {
        assert.equal((await getText(`${server.baseUrl}/healthz`)).status, 200);
        assert.equal((await getText(`${server.baseUrl}/readyz`)).status, 503, '/readyz is 503 without a database');

        const alice = await connect('alice');
        const bob1 = await connect('bob');
        const bob2 = await connect('bob');
        const carol = await connect('carol');
        // Served without a database: ticks, Fibonacci over WebSocket and REST, users from memory.
        await alice.waitFor('time', () => true, { timeoutMs: 5_000 });
        await bob2.waitFor('time', () => true, { timeoutMs: 5_000 });
        const fib = await alice.request<{ type: string; value: string }>({ type: 'fibonacci', n: 90 });
        assert.equal(fib.value, F90);
        const rest = await getText(`${server.baseUrl}/api/fibonacci/10`);
        assert.deepEqual(JSON.parse(rest.body), { n: 10, value: '55', digits: 2 });
        const users = await alice.users();
        assert.deepEqual(users.users.map((u) => [u.id, u.sessions]), [['alice', 1], ['bob', 2], ['carol', 1]]);
        assert.equal((await carol.close(4000, 'bye')).code, 4000);
        assert.equal((await getText(`${server.baseUrl}/readyz`)).status, 503, 'still 503 while the database is away');
        assert.equal((await db.query('SELECT 1 FROM pg_tables WHERE tablename = $1', ['sessions'])).length, 0, 'no migration ran yet');

        const restored = Date.now();
        proxy.restore();
        await eventually('/readyz 200', async () => (await getText(`${server.baseUrl}/readyz`)).status === 200, { timeoutMs: RECOVERY_BOUND_MS });
        const readyMs = Date.now() - restored;
        await waitExact(db, server.pulse.presence.instanceId, { open: [alice, bob1, bob2], closed: [[carol, 4000]] }, RECOVERY_BOUND_MS);
        const exactMs = Date.now() - restored;
        figures.push(`(a) start-up outage: /readyz 200 ${readyMs} ms and database exact ${exactMs} ms after the database returned`);
        await stillExact(db, server.pulse.presence.instanceId, { open: [alice, bob1, bob2], closed: [[carol, 4000]] });
      },
      true,
    );
  });

  test('(b) database lost while running: clients served and queued; exact again after its return', async () => {
    await withSetup('b', {}, async ({ db, proxy, server, connect }) => {
      await server.ready();
      const instanceId = server.pulse.presence.instanceId;
      const alice = await connect('alice');
      const bob = await connect('bob');
      const erin = await connect('erin');
      await alice.trackPresence();
      await waitExact(db, instanceId, { open: [alice, bob, erin], closed: [] });

      proxy.cut();
      const cutMark = alice.mark();
      const carol = await connect('carol');
      const dave = await connect('dave');
      const frank = await connect('frank');
      assert.equal((await bob.close(4001, 'bob leaves during the outage')).code, 4001);
      assert.equal((await carol.close(4002, 'carol came and went')).code, 4002);
      assert.equal((await erin.close(1000)).code, 1000);
      // A first write attempt fails, so the events wait in the queue.
      const queued = await eventually(
        'pulse_db_queue_events > 0',
        async () => {
          const value = metric((await getText(`${server.baseUrl}/metrics`)).body, 'pulse_db_queue_events');
          return value > 0 ? value : undefined;
        },
        { timeoutMs: 10_000 },
      );
      assert.equal((await getText(`${server.baseUrl}/readyz`)).status, 503, '/readyz 503 during the outage');
      // Clients are served all along: ticks, answers, presence from memory.
      await alice.waitFor('time', () => true, { since: cutMark, timeoutMs: 5_000 });
      await dave.waitFor('time', () => true, { timeoutMs: 5_000 });
      assert.equal((await frank.request<{ type: string; value: string }>({ type: 'fibonacci', n: 90 })).value, F90);
      await eventually('alice to see the outage-time joins and leaves', () => {
        const view = [...alice.presenceView!.keys()].sort().join(',');
        if (view !== 'alice,dave,frank') throw new Error(`alice sees ${view}; presence messages: ${JSON.stringify(alice.ofType('presence'))}`);
        return view;
      });
      const leftDuringCut = alice.messages.slice(cutMark).filter((m): m is PresenceMessage => m.type === 'presence').flatMap((m) => m.left.map((u) => u.id));
      assert.ok(leftDuringCut.includes('bob') && leftDuringCut.includes('erin'), `left announced during the cut: ${leftDuringCut.join(',')}`);
      assert.equal((await db.query('SELECT 1 FROM sessions WHERE id = $1', [dave.welcome!.sessionId])).length, 0, 'nothing written during the cut');

      const restored = Date.now();
      proxy.restore();
      const expected: Expectation = { open: [alice, dave, frank], closed: [[bob, 4001], [carol, 4002], [erin, 1000]] };
      await waitExact(db, instanceId, expected);
      const exactMs = Date.now() - restored;
      await eventually('/readyz 200', async () => (await getText(`${server.baseUrl}/readyz`)).status === 200, { timeoutMs: RECOVERY_BOUND_MS });
      const metrics = (await getText(`${server.baseUrl}/metrics`)).body;
      assert.ok(metric(metrics, 'pulse_db_write_failures_total') > 0, 'failed writes are counted');
      assert.equal(metric(metrics, 'pulse_db_queue_events'), 0, 'queue empty again');
      figures.push(`(b) outage while running: ${queued} events queued; database exact ${exactMs} ms after the database returned`);
      await stillExact(db, instanceId, expected);
    });
  });

  test('(d) a batch commits but its reply is lost with the connection: the retry still records the close', async () => {
    // Few background statements, so the session batch gets a pool connection while replies are swallowed.
    const quiet = { HEARTBEAT_INTERVAL_MS: '5000', INSTANCE_TTL_MS: '15000', SWEEP_INTERVAL_MS: '5000' };
    await withSetup('d', quiet, async ({ db, proxy, server, connect }) => {
      await server.ready();
      const instanceId = server.pulse.presence.instanceId;
      const stay = await connect('stay');
      await waitExact(db, instanceId, { open: [stay], closed: [] });

      proxy.swallowReplies();
      const ghost = await connect('ghost');
      // Its open reaches PostgreSQL and commits; Pulse never hears back.
      await eventually('the open to commit', async () => (await db.query('SELECT 1 FROM sessions WHERE id = $1', [ghost.welcome!.sessionId])).length === 1, {
        timeoutMs: 5_000,
      });
      assert.equal((await ghost.close(4020, 'gone while the reply was lost')).code, 4020);
      // The close waits in the queue behind the open, whose statement never hears back.
      await eventually('the close to reach the writer', () => server.pulse.presence.localSessions === 1, { timeoutMs: 5_000 });
      const failuresBefore = metric((await getText(`${server.baseUrl}/metrics`)).body, 'pulse_db_write_failures_total') || 0;
      proxy.cut(); // the statement fails on Pulse's side; the writer retries open + close together
      await eventually(
        'the open statement to fail',
        async () => metric((await getText(`${server.baseUrl}/metrics`)).body, 'pulse_db_write_failures_total') > failuresBefore,
        { timeoutMs: 5_000 },
      );
      const restored = Date.now();
      proxy.restore();
      const expected: Expectation = { open: [stay], closed: [[ghost, 4020]] };
      await waitExact(db, instanceId, expected);
      figures.push(`(d) lost reply: database exact ${Date.now() - restored} ms after the database returned`);
      await stillExact(db, instanceId, expected);
    });
  });

  test('(e) network partition without resets (connections frozen, not closed): exact again once it heals', async () => {
    await withSetup('e', {}, async ({ db, proxy, server, connect }) => {
      await server.ready();
      const instanceId = server.pulse.presence.instanceId;
      const alice = await connect('alice');
      const bob = await connect('bob');
      await waitExact(db, instanceId, { open: [alice, bob], closed: [] });

      proxy.cut('freeze');
      const frozenMark = alice.mark();
      const carol = await connect('carol');
      assert.equal((await bob.close(4050)).code, 4050);
      await eventually('/readyz 503 while frozen', async () => (await getText(`${server.baseUrl}/readyz`)).status === 503, { timeoutMs: 10_000 });
      await alice.waitFor('time', () => true, { since: frozenMark, timeoutMs: 5_000 });
      await carol.waitFor('time', () => true, { timeoutMs: 5_000 });
      // The 503 came when /readyz's 1.5 s ping timed out, long after the writer's 10 ms flush
      // timer sent carol's open into the frozen connection: the open is held there, not lost.
      assert.equal((await db.query('SELECT 1 FROM sessions WHERE id = $1', [carol.welcome!.sessionId])).length, 0, 'nothing written while frozen');

      const healed = Date.now();
      proxy.restore();
      const expected: Expectation = { open: [alice, carol], closed: [[bob, 4050]] };
      await waitExact(db, instanceId, expected);
      const exactMs = Date.now() - healed;
      await eventually('/readyz 200', async () => (await getText(`${server.baseUrl}/readyz`)).status === 200, { timeoutMs: RECOVERY_BOUND_MS });
      figures.push(`(e) frozen connections: database exact ${exactMs} ms after the partition healed`);
      await stillExact(db, instanceId, expected);
    });
  });

  test('(c) queue overflow during an outage: the resync makes the rows exact', async () => {
    await withSetup('c', { DB_QUEUE_MAX_BYTES: '2000' }, async ({ db, proxy, server, connect }) => {
      await server.ready();
      const instanceId = server.pulse.presence.instanceId;
      const before = [await connect('anna'), await connect('ben'), await connect('ben'), await connect('cleo')];
      await waitExact(db, instanceId, { open: before, closed: [] });

      proxy.cut();
      // Far more than 2000 bytes of events: 24 opens, 12 of them closed again, and two old sessions closed.
      const during: TestClient[] = [];
      for (let i = 0; i < 24; i++) during.push(await connect(`user-${i % 8}`));
      const cameAndWent = during.filter((_, i) => i % 2 === 1);
      for (const client of cameAndWent) await client.close(4003);
      const [anna, ben1, ben2, cleo] = before as [TestClient, TestClient, TestClient, TestClient];
      await ben1.close(4004);
      await cleo.close(4005);
      const metricsDuring = (await getText(`${server.baseUrl}/metrics`)).body;
      assert.ok(metric(metricsDuring, 'pulse_db_queue_bytes') <= 2000, 'the queue stays within DB_QUEUE_MAX_BYTES');
      assert.ok(!(metric(metricsDuring, 'pulse_db_resyncs_total') > 0), 'no resync before the database returns');

      const restored = Date.now();
      proxy.restore();
      const stayed = during.filter((_, i) => i % 2 === 0);
      // Closed while overflowed: rewritten by the resync (no close code); came and went meanwhile: no row at all.
      const expected: Expectation = { open: [anna, ben2, ...stayed], closed: [[ben1, null], [cleo, null]], absent: cameAndWent };
      await waitExact(db, instanceId, expected);
      const exactMs = Date.now() - restored;
      const metrics = (await getText(`${server.baseUrl}/metrics`)).body;
      const resyncs = metric(metrics, 'pulse_db_resyncs_total', 'reason="overflow"');
      const replaced = metric(metrics, 'pulse_db_events_replaced_total');
      assert.ok(resyncs > 0, `pulse_db_resyncs_total{reason="overflow"} > 0 (got ${resyncs})`);
      assert.ok(replaced > 0, 'the superseded events are counted');
      const reasons = await db.query<{ close_reason: string }>('SELECT close_reason FROM sessions WHERE id = ANY($1::uuid[])', [[ben1.welcome!.sessionId, cleo.welcome!.sessionId]]);
      for (const row of reasons) assert.match(row.close_reason, /resync/, 'the resync says why the close code is missing');
      figures.push(`(c) overflow: ${resyncs} resync(s), ${replaced} events superseded; database exact ${exactMs} ms after the database returned`);
      await stillExact(db, instanceId, expected);
    });
  });
});
