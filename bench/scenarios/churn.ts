// churn: W client loops connect, wait for the welcome, close, as fast as they can. Cycles/s for
// Pulse and the reference; for Pulse, the database must then be exact (no connected user left,
// one closed session row per welcome) and the database lag (event → visible row) is measured
// from the outside by polling sampled session ids.
import pg from 'pg';
import { LoadGenerator } from '../loadgen/pool.js';
import { buildReport, type Metrics, type Row, type ScenarioReport } from '../lib/report.js';
import { scrapeHistogramQuantile, startServer, type ServerKind } from '../lib/servers.js';
import { cpuSecondsOfCommand, loopbackSources, round, sampleTree, sleep, summarize } from '../lib/util.js';

export interface ChurnOptions {
  /** Concurrent connect/close loops. */
  loops: number;
  seconds: number;
  pgAdminUrl: string;
  servers: ServerKind[];
  /** Every k-th cycle of each loop is probed for database lag. */
  sampleEvery?: number;
  log?: (line: string) => void;
}

export const CHURN_ROWS: Row[] = [
  { label: 'client loops', key: 'loops' },
  { label: 'cycles (welcomed + closed)', key: 'cycles' },
  { label: 'failed cycles', key: 'failures' },
  { label: 'cycles/s', key: 'cyclesPerSecond', ratio: true },
  { label: 'cycle p50 ms', key: 'cycleP50Ms', ratio: true },
  { label: 'cycle p99 ms', key: 'cycleP99Ms', ratio: true },
  { label: '  open → welcome p50 ms', key: 'welcomeP50Ms', ratio: true },
  { label: '  open → welcome p99 ms', key: 'welcomeP99Ms', ratio: true },
  { label: '  close → closed p50 ms', key: 'closeP50Ms', ratio: true },
  { label: '  close → closed p99 ms', key: 'closeP99Ms', ratio: true },
  { label: 'server CPU ms per 1,000 cycles', key: 'serverCpuMsPer1000', ratio: true },
  { label: 'PostgreSQL CPU ms per 1,000 cycles', key: 'postgresCpuMsPer1000' },
  { label: 'load generator CPU %', key: 'loadgenCpuPercent' },
  { label: 'db: connected_users rows after', key: 'dbConnectedUsers' },
  { label: 'db: session rows', key: 'dbSessions' },
  { label: 'db: welcomed ids missing', key: 'dbMissing' },
  { label: 'db: rows not welcomed', key: 'dbExtra' },
  { label: 'db: sessions left open', key: 'dbOpen' },
  { label: 'db: exact after ms', key: 'dbExactAfterMs' },
  { label: 'db lag connect p50 ms', key: 'dbLagOpenP50Ms' },
  { label: 'db lag connect p99 ms', key: 'dbLagOpenP99Ms' },
  { label: 'db lag disconnect p50 ms', key: 'dbLagCloseP50Ms' },
  { label: 'db lag disconnect p99 ms', key: 'dbLagCloseP99Ms' },
  { label: 'db lag p99 ms (both)', key: 'dbLagP99Ms' },
  { label: 'db lag samples', key: 'dbLagSamples' },
  { label: 'server metric db lag p99 ≤ ms', key: 'metricDbLagP99Ms' },
  { label: 'server metric batch p99 ≤ ms', key: 'metricBatchP99Ms' },
];

interface DbState {
  connectedUsers: number;
  sessions: number;
  open: number;
  found: number;
  foundClosed: number;
  closeCodes: Record<string, number>;
}

async function readDb(db: pg.Client, ids: string[]): Promise<DbState> {
  const users = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM connected_users');
  const sessions = await db.query<{ total: number; open: number }>(
    'SELECT count(*)::int AS total, (count(*) FILTER (WHERE disconnected_at IS NULL))::int AS open FROM sessions',
  );
  const found = await db.query<{ found: number; closed: number }>(
    'SELECT count(*)::int AS found, (count(*) FILTER (WHERE disconnected_at IS NOT NULL))::int AS closed FROM sessions WHERE id = ANY($1::uuid[])',
    [ids],
  );
  const codes = await db.query<{ code: string; n: number }>('SELECT coalesce(close_code::text, \'null\') AS code, count(*)::int AS n FROM sessions GROUP BY 1');
  return {
    connectedUsers: users.rows[0]?.n ?? -1,
    sessions: sessions.rows[0]?.total ?? -1,
    open: sessions.rows[0]?.open ?? -1,
    found: found.rows[0]?.found ?? -1,
    foundClosed: found.rows[0]?.closed ?? -1,
    closeCodes: Object.fromEntries(codes.rows.map((r) => [r.code, r.n])),
  };
}

function exact(state: DbState, welcomed: number): boolean {
  return state.connectedUsers === 0 && state.open === 0 && state.sessions === welcomed && state.found === welcomed && state.foundClosed === welcomed;
}

async function measure(kind: ServerKind, options: ChurnOptions): Promise<Metrics> {
  const log = options.log ?? (() => undefined);
  const server = await startServer(kind, { workers: 1, db: 'pg', pgAdminUrl: options.pgAdminUrl });
  const loadgen = new LoadGenerator(1);
  let db: pg.Client | undefined;
  try {
    // ---- outside probe of database lag: poll sampled ids until their rows (and closes) are visible ----
    const openPending = new Map<string, number>();
    const closePending = new Map<string, number>();
    const openLag: number[] = [];
    const closeLag: number[] = [];
    let polling = true;
    let poller: Promise<void> = Promise.resolve();
    if (kind === 'pulse' && server.databaseUrl) {
      db = new pg.Client({ connectionString: server.databaseUrl });
      await db.connect();
      const client = db;
      loadgen.onSample = (sample) => (sample.event === 'open' ? openPending : closePending).set(sample.sessionId, sample.at);
      const deadline = Date.now() + options.seconds * 1000 + 30_000;
      poller = (async () => {
        for (let i = 0; i < 10_000_000 && Date.now() < deadline && (polling || openPending.size + closePending.size > 0); i++) {
          const ids = [...new Set([...openPending.keys(), ...closePending.keys()])];
          if (ids.length > 0) {
            // A row visible to a query was committed before the query started: lag ≤ start − event.
            const queryStart = Date.now();
            const { rows } = await client.query<{ id: string; closed: boolean }>(
              'SELECT id::text AS id, disconnected_at IS NOT NULL AS closed FROM sessions WHERE id = ANY($1::uuid[])',
              [ids],
            );
            for (const row of rows) {
              const openedAt = openPending.get(row.id);
              if (openedAt !== undefined) {
                openLag.push(Math.max(0, queryStart - openedAt));
                openPending.delete(row.id);
              }
              const closedAt = closePending.get(row.id);
              if (row.closed && closedAt !== undefined) {
                closeLag.push(Math.max(0, queryStart - closedAt));
                closePending.delete(row.id);
              }
            }
          }
          await sleep(5);
        }
      })();
    }

    await sleep(1000);
    log(`churn/${kind}: ${options.loops} loops for ${options.seconds} s`);
    const sources = loopbackSources(16);
    const serverBefore = sampleTree(server.pid);
    const postgresBefore = cpuSecondsOfCommand('postgres');
    const [result] = await loadgen.churn(server.wsUrl, options.loops, options.seconds, sources, options.sampleEvery ?? 10);
    if (!result) throw new Error('no churn result');
    const serverCpuSeconds = sampleTree(server.pid).cpuSeconds - serverBefore.cpuSeconds;
    // All of the machine's PostgreSQL backends, the bench's lag poller included (Pulse only).
    const postgresCpuSeconds = cpuSecondsOfCommand('postgres') - postgresBefore;
    const perThousand = (seconds: number): number | null => (result.cycles > 0 ? round((seconds * 1e6) / result.cycles, 0) : null);
    const cycle = summarize(result.cycleMs);
    const welcome = summarize(result.welcomeMs);
    const close = summarize(result.closeMs);
    const metrics: Metrics = {
      server: kind,
      loops: options.loops,
      cycles: result.cycles,
      failures: result.failures,
      errors: result.errors,
      cyclesPerSecond: round(result.cycles / (result.durationMs / 1000), 0),
      cycleP50Ms: round(cycle.p50, 2),
      cycleP99Ms: round(cycle.p99, 2),
      welcomeP50Ms: round(welcome.p50, 2),
      welcomeP99Ms: round(welcome.p99, 2),
      closeP50Ms: round(close.p50, 2),
      closeP99Ms: round(close.p99, 2),
      loadgenCpuSeconds: round(result.cpuSeconds, 2),
      loadgenCpuPercent: round((100 * result.cpuSeconds) / (result.durationMs / 1000), 0),
      serverCpuMsPer1000: perThousand(serverCpuSeconds),
      postgresCpuMsPer1000: kind === 'pulse' ? perThousand(postgresCpuSeconds) : null,
    };
    if (kind === 'pulse' && db) {
      const ids = result.sessionIds;
      const unique = new Set(ids).size;
      const endedAt = Date.now();
      await sleep(2000);
      let state = await readDb(db, ids);
      let exactAfterMs: number | null = exact(state, unique) ? Date.now() - endedAt : null;
      // Not exact after 2 s: keep looking (bounded) to tell "late" from "wrong".
      for (let i = 0; i < 40 && exactAfterMs === null; i++) {
        await sleep(250);
        state = await readDb(db, ids);
        if (exact(state, unique)) exactAfterMs = Date.now() - endedAt;
      }
      polling = false;
      await poller;
      const lagOpen = summarize(openLag);
      const lagClose = summarize(closeLag);
      const lagAll = summarize([...openLag, ...closeLag]);
      const lagMetricP99 = await scrapeHistogramQuantile(server.httpUrl, 'pulse_db_lag_seconds', 0.99);
      const batchP99 = await scrapeHistogramQuantile(server.httpUrl, 'pulse_db_batch_seconds', 0.99);
      Object.assign(metrics, {
        welcomedUnique: unique,
        duplicateWelcomeIds: ids.length - unique,
        instances: result.instanceIds.length,
        dbConnectedUsers: state.connectedUsers,
        dbSessions: state.sessions,
        dbMissing: unique - state.found,
        dbExtra: state.sessions - state.found,
        dbOpen: state.open,
        dbWelcomedClosed: state.foundClosed,
        dbCloseCodes: state.closeCodes,
        dbExact: exactAfterMs !== null,
        dbExactWithin2s: exactAfterMs !== null && exactAfterMs <= 2500,
        dbExactAfterMs: exactAfterMs,
        dbLagOpenP50Ms: round(lagOpen.p50, 1),
        dbLagOpenP99Ms: round(lagOpen.p99, 1),
        dbLagCloseP50Ms: round(lagClose.p50, 1),
        dbLagCloseP99Ms: round(lagClose.p99, 1),
        dbLagP99Ms: round(lagAll.p99, 1),
        dbLagMaxMs: round(lagAll.max, 1),
        dbLagSamples: lagAll.count,
        dbLagUnresolved: openPending.size + closePending.size,
        metricDbLagP99Ms: lagMetricP99 === undefined ? null : round(lagMetricP99 * 1000, 2),
        metricBatchP99Ms: batchP99 === undefined ? null : round(batchP99 * 1000, 2),
      });
    }
    return metrics;
  } finally {
    await db?.end().catch(() => undefined);
    await loadgen.shutdown();
    await server.stop();
  }
}

export async function runChurn(options: ChurnOptions): Promise<ScenarioReport> {
  const startedAt = new Date().toISOString();
  const servers: ScenarioReport['servers'] = {};
  const failures: string[] = [];
  for (const kind of options.servers) {
    const m = await measure(kind, options);
    servers[kind] = m;
    if (typeof m.cycles !== 'number' || m.cycles === 0) failures.push(`${kind}: no cycle completed`);
    if (m.failures !== 0) failures.push(`${kind}: ${String(m.failures)} failed cycles ${JSON.stringify(m.errors)}`);
    if (kind === 'pulse') {
      if (m.dbExact !== true) {
        failures.push(
          `pulse: database not exact: connected_users=${String(m.dbConnectedUsers)} sessions=${String(m.dbSessions)} ` +
            `missing=${String(m.dbMissing)} extra=${String(m.dbExtra)} open=${String(m.dbOpen)}`,
        );
      }
      if (m.duplicateWelcomeIds !== 0) failures.push(`pulse: ${String(m.duplicateWelcomeIds)} duplicate sessionIds in welcomes`);
    }
  }
  return buildReport('churn', startedAt, options, servers, CHURN_ROWS, failures, [
    'cycle = open socket → welcome frame → close(1000) → close event; the reference sends a minimal welcome and has no database',
    'db lag = first poll (every ~5 ms, query start) that sees the row, or its disconnected_at, − the client event time (welcome / close start); every 10th cycle of each loop is sampled',
    'CPU per 1,000 cycles: utime + stime from /proc over the run (server: its process tree; PostgreSQL: every postgres process, the lag poller’s backend included)',
    'exactness is checked 2 s after the last cycle, then every 250 ms up to 10 s more (db: exact after ms)',
  ]);
}
