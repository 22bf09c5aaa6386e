// Graceful stop under load (docs/design.md §5): SIGTERM to a child-process instance with 300 clients, some
// of them asking for Fibonacci numbers. While it drains /readyz is 503 and upgrades get 503; every
// client is closed with 1001, every session row is closed with 1001, the instances row gets
// stopped_at, and the process exits 0 within 10 s.
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { describe, test } from 'node:test';
import { createTestDatabase, TEST_DATABASE_URL } from '../helpers/database.js';
import { startPulse, type RunningPulse } from '../helpers/pulse.js';
import { startPulseProcess, type PulseProcess } from '../helpers/pulse-process.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';
import { connectClient, eventually, mapLimit, UpgradeRefused, type TestClient } from '../helpers/ws-client.js';

const CLIENTS = 300;
const FIB_CLIENTS = 40;
/** Clients that stop reading before the signal: they never answer the close, so the drain lasts its grace period. */
const STUCK = 3;

describe('graceful shutdown under load', { timeout: 120_000 }, () => {
  test('SIGTERM: readyz 503, clients closed 1001, rows closed 1001, stopped_at set, exit 0 within 10 s', async () => {
    const db = await createTestDatabase('pulse_shutdown');
    let server: PulseProcess | undefined;
    const clients: TestClient[] = [];
    try {
      server = await startPulseProcess({
        DATABASE_URL: db.url,
        LOG_LEVEL: 'info',
        HEARTBEAT_INTERVAL_MS: '1000',
        INSTANCE_TTL_MS: '10000',
        SHUTDOWN_TIMEOUT_MS: '8000',
      });
      const srv = server;
      const [instance] = await db.query<{ id: string }>('SELECT id::text FROM instances');
      assert.ok(instance, 'the instance registered itself');

      const crowd = await mapLimit(Array.from({ length: CLIENTS }, (_, i) => i), 50, async (i) => {
        const client = await connectClient(`${srv.wsUrl}?name=load-${i % 100}${i % 10 === 0 ? '' : '&presence=0'}`, {
          keep: (m) => m.type !== 'time',
          timeoutMs: 30_000,
        });
        clients.push(client);
        return client;
      });
      const stuck: TestClient[] = [];
      for (let i = 0; i < STUCK; i++) {
        const client = await connectClient(`${srv.wsUrl}?name=stuck-${i}`);
        clients.push(client);
        stuck.push(client);
      }
      await eventually('every session written', async () => {
        const [row] = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM sessions WHERE disconnected_at IS NULL');
        return row?.n === CLIENTS + STUCK ? true : undefined;
      }, { timeoutMs: 15_000 });

      // Load: some clients keep asking for Fibonacci numbers (worker-pool sizes among them) until closed.
      let answered = 0;
      let wrongOrErrors = 0;
      const loops = crowd.slice(0, FIB_CLIENTS).map(async (client, k) => {
        for (let round = 0; client.isOpen; round++) {
          const n = round % 3 === 0 ? 20_000 + k : 90;
          try {
            const reply = await client.request<{ type: string; n: number; value: string }>({ type: 'fibonacci', n }, 15_000);
            if (reply.n !== n || (n === 90 && reply.value !== '2880067194370816120')) wrongOrErrors++;
            answered++;
            await new Promise((r) => setTimeout(r, 100)); // ~10 requests/s: under the default rate limit
          } catch (err) {
            if (client.isOpen) wrongOrErrors++;
            void err;
            return;
          }
        }
      });
      await eventually('Fibonacci answers flowing', () => (answered >= FIB_CLIENTS ? true : undefined), { timeoutMs: 20_000 });
      for (const client of stuck) (client.ws as unknown as { _socket: Socket })._socket.pause();

      const signalledAt = Date.now();
      srv.kill('SIGTERM');
      // What can be observed while it drains: /readyz and a new upgrade.
      const readyz: string[] = [];
      let upgrade: string | undefined;
      const observe = (async () => {
        while (!srv.exitInfo) {
          try {
            const res = await fetch(`${srv.baseUrl}/readyz`, { signal: AbortSignal.timeout(1_000) });
            await res.arrayBuffer();
            if (readyz.at(-1) !== String(res.status)) readyz.push(String(res.status));
            if (res.status === 503 && upgrade === undefined) {
              upgrade = 'pending';
              try {
                const late = await connectClient(`${srv.wsUrl}?name=late`, { timeoutMs: 3_000 });
                clients.push(late);
                upgrade = 'accepted';
              } catch (err) {
                upgrade = err instanceof UpgradeRefused ? String(err.status) : (err as Error).message;
              }
            }
          } catch {
            if (readyz.at(-1) !== 'no answer') readyz.push('no answer');
          }
          await new Promise((r) => setTimeout(r, 20));
        }
      })();

      const closes = await Promise.all(crowd.map((c) => c.closed));
      const closedMs = Date.now() - signalledAt;
      const exit = await Promise.race([srv.exited, new Promise<undefined>((r) => setTimeout(r, 12_000))]);
      const exitMs = Date.now() - signalledAt;
      await observe;
      await Promise.all(loops);

      assert.deepEqual(exit, { code: 0, signal: null }, `exit code 0 (stderr: ${srv.stderr.slice(-5).join(' | ')})`);
      assert.ok(exitMs <= 10_000, `exited within 10 s of SIGTERM (took ${exitMs} ms)`);
      const codes = new Map<number, number>();
      for (const info of closes) codes.set(info.code, (codes.get(info.code) ?? 0) + 1);
      assert.deepEqual([...codes], [[1001, CLIENTS]], 'every client received close code 1001');
      assert.ok(closes.every((c) => c.reason === 'server shutting down'));
      assert.equal(wrongOrErrors, 0, 'every Fibonacci answer before the close was right');
      assert.ok(readyz.includes('503'), `/readyz turned 503 while draining (seen: ${readyz.join(' → ')})`);
      assert.ok(!readyz.slice(readyz.indexOf('503')).includes('200'), `never ready again after 503 (seen: ${readyz.join(' → ')})`);
      assert.ok(upgrade === '503' || upgrade === 'pending' || /ECONNREFUSED|ECONNRESET|socket hang up/.test(upgrade ?? ''), `an upgrade while draining is refused with 503 (got ${upgrade})`);

      // The database: every session closed with 1001, the instance stopped, nobody online.
      const rows = await db.query<{ id: string; disconnected_at: Date | null; close_code: number | null; close_reason: string | null }>(
        'SELECT id::text, disconnected_at, close_code, close_reason FROM sessions WHERE instance_id = $1',
        [instance.id],
      );
      const welcomed = new Set([...crowd, ...stuck].map((c) => c.welcome!.sessionId));
      assert.equal(rows.filter((r) => welcomed.has(r.id)).length, CLIENTS + STUCK, 'a row for every welcomed session');
      const notRight = rows.filter((r) => r.disconnected_at === null || r.close_code !== 1001);
      assert.deepEqual(notRight, [], 'every session row closed with 1001');
      const [stopped] = await db.query<{ stopped_at: Date | null }>('SELECT stopped_at FROM instances WHERE id = $1', [instance.id]);
      assert.ok(stopped?.stopped_at, 'the instances row has stopped_at');
      assert.deepEqual(await db.query('SELECT * FROM connected_users'), []);
      const timeline = ['shutting down', 'draining', 'instance stopped in the database', 'stopped']
        .map((msg) => [msg, srv.logs(msg).find((e) => e.msg === msg)?.time] as const)
        .map(([msg, time]) => `${msg} +${typeof time === 'number' ? time - signalledAt : '?'} ms`);
      const stopLog = srv.logs('instance stopped in the database')[0];
      assert.ok(stopLog, 'the instance says it marked itself stopped');
      console.log(
        `# presence-shutdown: ${CLIENTS} clients closed 1001 within ${closedMs} ms, exit 0 after ${exitMs} ms; ` +
          `readyz ${readyz.join(' → ')}; upgrade while draining: ${upgrade}; ${answered} Fibonacci answers; ` +
          `closed by the final stop statement: ${String(stopLog.closedByStop)}; log: ${timeline.join(', ')}`,
      );
    } finally {
      for (const client of clients) client.terminate();
      await server?.stop();
      await db.drop();
    }
  });

  test('SIGTERM while the database does not answer: clients closed 1001, exit within 10 s, then swept by another instance', async () => {
    const db = await createTestDatabase('pulse_shutdown_nodb');
    const target = new URL(TEST_DATABASE_URL!);
    let proxy: TcpProxy | undefined;
    let server: PulseProcess | undefined;
    let watcher: RunningPulse | undefined;
    const clients: TestClient[] = [];
    const short = { HEARTBEAT_INTERVAL_MS: '500', INSTANCE_TTL_MS: '3000', SWEEP_INTERVAL_MS: '300' };
    try {
      proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
      server = await startPulseProcess({ ...short, DATABASE_URL: proxy.urlFor(db.url), LOG_LEVEL: 'info', SHUTDOWN_TIMEOUT_MS: '6000' });
      const srv = server;
      const crowd = await mapLimit(Array.from({ length: 20 }, (_, i) => i), 10, async (i) => {
        const client = await connectClient(`${srv.wsUrl}?name=nodb-${i}`, { keep: (m) => m.type !== 'time' });
        clients.push(client);
        return client;
      });
      await eventually('every session written', async () => {
        const [row] = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM sessions WHERE disconnected_at IS NULL');
        return row?.n === crowd.length ? true : undefined;
      });
      const [instance] = await db.query<{ id: string }>('SELECT id::text FROM instances');
      assert.ok(instance);

      // The database stops answering (connections held open and silent), then the signal comes.
      proxy.cut('hold');
      for (const client of crowd.slice(0, 2)) assert.equal((await client.close(4040)).code, 4040);
      const signalledAt = Date.now();
      srv.kill('SIGTERM');
      const closes = await Promise.all(crowd.slice(2).map((c) => c.closed));
      const exit = await Promise.race([srv.exited, new Promise<undefined>((r) => setTimeout(r, 12_000))]);
      const exitMs = Date.now() - signalledAt;
      assert.ok(exit, `the process exited (stderr: ${srv.stderr.slice(-5).join(' | ')})`);
      assert.ok(exitMs <= 10_000, `exited within 10 s of SIGTERM without a database (took ${exitMs} ms)`);
      assert.ok(closes.every((c) => c.code === 1001), 'clients still get 1001');
      assert.ok(srv.logs('database did not answer before the shutdown deadline').length + srv.logs('could not').length > 0, 'the log says the stop was not recorded');

      // The database returns; another instance finds the stopped process by its heartbeat and sweeps it.
      proxy.restore();
      const [still] = await db.query<{ stopped_at: Date | null }>('SELECT stopped_at FROM instances WHERE id = $1', [instance.id]);
      assert.equal(still?.stopped_at, null, 'the stop could not be recorded without the database');
      const watchStarted = Date.now();
      watcher = await startPulse({ ...short, DATABASE_URL: db.url });
      await watcher.ready();
      await eventually(
        'the dead instance to be swept',
        async () => {
          assert.deepEqual(await db.query('SELECT * FROM connected_users'), []);
          const [row] = await db.query<{ stopped_at: Date | null }>('SELECT stopped_at FROM instances WHERE id = $1', [instance.id]);
          return row?.stopped_at ? true : undefined;
        },
        { timeoutMs: 3_000 + 8_000 },
      );
      const rows = await db.query<{ disconnected_at: Date | null; close_code: number | null; close_reason: string | null }>(
        'SELECT disconnected_at, close_code, close_reason FROM sessions WHERE instance_id = $1',
        [instance.id],
      );
      assert.equal(rows.length, crowd.length);
      assert.ok(rows.every((r) => r.disconnected_at !== null && r.close_code === 1006 && r.close_reason?.includes(instance.id)), 'swept: 1006, naming the instance');
      console.log(
        `# presence-shutdown (no database): exit ${JSON.stringify(exit)} after ${exitMs} ms; swept by a new instance ${Date.now() - watchStarted} ms after it started`,
      );
    } finally {
      proxy?.restore();
      for (const client of clients) client.terminate();
      await server?.stop();
      await watcher?.stop();
      await proxy?.close();
      await db.drop();
    }
  });
});
