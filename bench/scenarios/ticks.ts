// ticks: N clients held; every second each must get the tick. Lost ticks, fan-out latency,
// server memory per connection and CPU, for Pulse and the bare-ws reference in turn.
import pg from 'pg';
import { LoadGenerator, MAX_SOCKETS_PER_PROCESS } from '../loadgen/pool.js';
import { buildReport, type Metrics, type Row, type ScenarioReport } from '../lib/report.js';
import { startServer, type DbKind, type ServerKind } from '../lib/servers.js';
import { cpuPercent, loopbackSources, round, sampleTree, sleep, summarize } from '../lib/util.js';

export interface TicksOptions {
  clients: number;
  seconds: number;
  workers: number;
  db: DbKind;
  pgAdminUrl: string;
  servers: ServerKind[];
  /** Load-generator processes; default: one per 10,000 clients. */
  loadgenProcesses?: number;
  /** Connections opened per second (all processes together). */
  connectRate: number;
  log?: (line: string) => void;
}

export const TICKS_ROWS: Row[] = [
  { label: 'clients connected', key: 'connected' },
  { label: 'connect failures', key: 'connectFailed' },
  { label: 'connect time s', key: 'connectSeconds' },
  { label: 'connect → welcome p50 ms', key: 'handshakeP50Ms', ratio: true },
  { label: 'connect → welcome p99 ms', key: 'handshakeP99Ms', ratio: true },
  { label: 'server processes', key: 'serverProcesses' },
  { label: 'ticks expected', key: 'ticksExpected' },
  { label: 'ticks received', key: 'ticksReceived' },
  { label: 'ticks lost', key: 'ticksLost' },
  { label: 'duplicate ticks', key: 'ticksDuplicate' },
  { label: 'fan-out latency p50 ms', key: 'latencyP50Ms', ratio: true },
  { label: 'fan-out latency p99 ms', key: 'latencyP99Ms', ratio: true },
  { label: 'fan-out latency max ms', key: 'latencyMaxMs', ratio: true },
  { label: 'first client per second p50 ms', key: 'firstArrivalP50Ms', ratio: true },
  { label: 'first→last client p50 ms', key: 'spreadP50Ms', ratio: true },
  { label: 'server RSS before MiB', key: 'rssBeforeMiB', ratio: true },
  { label: 'server RSS after MiB', key: 'rssAfterMiB', ratio: true },
  { label: 'RSS per connection KiB', key: 'rssPerConnectionKiB', ratio: true },
  { label: 'server CPU % (100 = 1 core)', key: 'serverCpuPercent', ratio: true },
  { label: 'load generator CPU %', key: 'loadgenCpuPercent' },
  { label: 'clients closed by server', key: 'closedByServer' },
  { label: 'other messages', key: 'otherMessages' },
  { label: 'db: open sessions while held', key: 'dbOpenWhileHeld' },
  { label: 'db: exact after all closed, ms', key: 'dbExactAfterCloseMs' },
  { label: 'db: session rows', key: 'dbSessions' },
];

/** Seconds the database gets to show every session closed once the load generator has closed them. */
const DB_SETTLE_SECONDS = 30;

/**
 * Pulse on PostgreSQL: while the clients are held, the database must show each of them as an open
 * session; once they have all closed, it must show none open and no one in connected_users.
 */
async function checkDatabase(databaseUrl: string, held: number, closeAll: () => Promise<unknown>): Promise<Metrics> {
  const db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  const read = async (): Promise<{ open: number; total: number; users: number }> => {
    const { rows } = await db.query<{ open: number; total: number; users: number }>(
      `SELECT (count(*) FILTER (WHERE disconnected_at IS NULL))::int AS open, count(*)::int AS total,
              (SELECT count(*)::int FROM connected_users) AS users FROM sessions`,
    );
    return rows[0] ?? { open: -1, total: -1, users: -1 };
  };
  try {
    const whileHeld = await read();
    const closedAt = Date.now();
    await closeAll();
    let state = await read();
    for (let i = 0; i < DB_SETTLE_SECONDS * 4 && (state.open !== 0 || state.users !== 0); i++) {
      await sleep(250);
      state = await read();
    }
    const exact = state.open === 0 && state.users === 0 && state.total === held;
    return {
      dbOpenWhileHeld: whileHeld.open,
      dbExactAfterCloseMs: exact ? Date.now() - closedAt : null,
      dbSessions: state.total,
      dbOpenAfterClose: state.open,
    };
  } finally {
    await db.end().catch(() => undefined);
  }
}

async function measure(kind: ServerKind, options: TicksOptions): Promise<Metrics> {
  const log = options.log ?? (() => undefined);
  const processes = options.loadgenProcesses ?? Math.max(1, Math.ceil(options.clients / 10_000));
  if (options.clients / processes > MAX_SOCKETS_PER_PROCESS) {
    throw new Error(`${options.clients} clients need at least ${Math.ceil(options.clients / MAX_SOCKETS_PER_PROCESS)} load-generator processes`);
  }
  const server = await startServer(kind, { workers: options.workers, db: options.db, pgAdminUrl: options.pgAdminUrl });
  const loadgen = new LoadGenerator(processes);
  try {
    log(`ticks/${kind}: server pid ${server.pid} on ${server.port}; connecting ${options.clients} clients from ${processes} process(es)`);
    await sleep(3000); // let start-up work (migrations, JIT, first GCs) settle before the baseline
    const before = sampleTree(server.pid);
    // Spread over enough source addresses that no address needs more than ~5,000 ports.
    const sources = loopbackSources(Math.max(2, Math.min(64, Math.ceil(options.clients / 5000))));
    const connected = await loadgen.connect(`${server.wsUrl}?presence=0`, options.clients, sources, options.connectRate);
    const allConnectedAt = Date.now();
    log(`ticks/${kind}: ${connected.ok} connected, ${connected.failed} failed in ${connected.durationMs} ms`);

    // Count the S whole seconds that start after every client is connected.
    const windowStart = Math.floor(allConnectedAt / 1000) * 1000 + 1000;
    const windowEnd = windowStart + (options.seconds - 1) * 1000;
    await sleep(Math.max(0, windowStart - 200 - Date.now()));
    const cpuStart = sampleTree(server.pid);
    const loadgenStart = loadgen.pids.map((pid) => sampleTree(pid));
    await sleep(Math.max(0, windowEnd + 800 - Date.now()));
    const after = sampleTree(server.pid);
    const loadgenEnd = loadgen.pids.map((pid) => sampleTree(pid));
    await sleep(Math.max(0, windowEnd + 2500 - Date.now())); // late ticks of the last second
    const reports = await loadgen.ticks(windowStart, windowEnd);

    const latencies = reports.flatMap((r) => Array.from(r.latencies));
    const lat = summarize(latencies);
    const expected = reports.reduce((s, r) => s + r.expected, 0);
    const received = reports.reduce((s, r) => s + r.received, 0);
    const otherMessages: Record<string, number> = {};
    const closes: Record<string, number> = {};
    for (const r of reports) {
      for (const [k, v] of Object.entries(r.otherMessages)) otherMessages[k] = (otherMessages[k] ?? 0) + v;
      for (const [k, v] of Object.entries(r.closes)) closes[k] = (closes[k] ?? 0) + v;
    }
    const windowSeconds = (after.at - cpuStart.at) / 1000;
    const handshake = summarize(connected.handshakeMs);
    // Per second: the first client to get the tick (timer + one send) and the spread to the last.
    const ranges = new Map<number, [number, number]>();
    for (const r of reports) {
      for (const [epochMs, min, max] of r.perEpoch) {
        const range = ranges.get(epochMs);
        ranges.set(epochMs, range ? [Math.min(range[0], min), Math.max(range[1], max)] : [min, max]);
      }
    }
    const first = summarize([...ranges.values()].map(([min]) => min));
    const spread = summarize([...ranges.values()].map(([min, max]) => max - min));
    const loadgenCpu = loadgenEnd.reduce((s, t, i) => s + cpuPercent(loadgenStart[i] ?? t, t), 0);
    return {
      server: kind,
      clients: options.clients,
      connected: connected.ok,
      connectFailed: connected.failed,
      connectErrors: connected.errors,
      connectSeconds: round(connected.durationMs / 1000, 2),
      handshakeP50Ms: round(handshake.p50, 1),
      handshakeP99Ms: round(handshake.p99, 1),
      serverProcesses: after.pids,
      serverProcessNames: after.names.join(','),
      windowStart,
      windowEnd,
      ticksExpected: expected,
      ticksReceived: received,
      ticksLost: expected - received,
      ticksDuplicate: reports.reduce((s, r) => s + r.duplicates, 0),
      ticksOutsideWindow: reports.reduce((s, r) => s + r.outside, 0),
      openAtEnd: reports.reduce((s, r) => s + r.open, 0),
      latencyP50Ms: round(lat.p50, 1),
      latencyP90Ms: round(lat.p90, 1),
      latencyP99Ms: round(lat.p99, 1),
      latencyMaxMs: round(lat.max, 1),
      latencyMeanMs: round(lat.mean, 1),
      firstArrivalP50Ms: round(first.p50, 1),
      spreadP50Ms: round(spread.p50, 1),
      spreadMaxMs: round(spread.max, 1),
      rssBeforeMiB: round(before.rssKiB / 1024, 1),
      rssAfterMiB: round(after.rssKiB / 1024, 1),
      rssPerConnectionKiB: connected.ok > 0 ? round((after.rssKiB - before.rssKiB) / connected.ok, 2) : null,
      serverCpuPercent: round(cpuPercent(cpuStart, after), 1),
      windowSeconds: round(windowSeconds, 2),
      loadgenProcesses: processes,
      loadgenCpuPercent: round(loadgenCpu, 1),
      closedByServer: Object.values(closes).reduce((s, v) => s + v, 0),
      closeCodes: closes,
      otherMessages,
      ...(kind === 'pulse' && server.databaseUrl ? await checkDatabase(server.databaseUrl, connected.ok, () => loadgen.close()) : {}),
    };
  } finally {
    await loadgen.close().catch(() => 0);
    await loadgen.shutdown();
    await server.stop();
  }
}

export async function runTicks(options: TicksOptions): Promise<ScenarioReport> {
  if (options.workers > 1 && options.db !== 'pg' && options.servers.includes('pulse')) {
    throw new Error('--workers > 1 needs PostgreSQL (--db pg): Pulse runs several processes only with DATABASE_URL');
  }
  const startedAt = new Date().toISOString();
  const servers: ScenarioReport['servers'] = {};
  const failures: string[] = [];
  for (const kind of options.servers) {
    const m = await measure(kind, options);
    servers[kind] = m;
    if (m.connectFailed !== 0) failures.push(`${kind}: ${String(m.connectFailed)} clients failed to connect`);
    if (typeof m.ticksReceived !== 'number' || m.ticksReceived <= 0) failures.push(`${kind}: no tick received`);
    if (m.ticksLost !== 0) failures.push(`${kind}: ${String(m.ticksLost)} ticks lost`);
    if (m.ticksDuplicate !== 0) failures.push(`${kind}: ${String(m.ticksDuplicate)} duplicate ticks`);
    if (m.dbOpenWhileHeld !== undefined && m.dbOpenWhileHeld !== m.connected) {
      failures.push(`${kind}: the database showed ${String(m.dbOpenWhileHeld)} open sessions for ${String(m.connected)} clients held`);
    }
    if (m.dbOpenWhileHeld !== undefined && m.dbExactAfterCloseMs === null) {
      failures.push(`${kind}: ${DB_SETTLE_SECONDS} s after every client closed the database was not exact (${String(m.dbOpenAfterClose)} open, ${String(m.dbSessions)} rows)`);
    }
  }
  return buildReport('ticks', startedAt, options, servers, TICKS_ROWS, failures, [
    'latency = client Date.now() at arrival − epochMs (same machine clock); it includes the load generator’s own event-loop delay',
    'RSS and CPU summed over the server process tree (all workers); RSS per connection = (RSS after − RSS before connecting) / clients',
    'db (Pulse on PostgreSQL): open sessions counted while the clients are held; then every client closes, and the database must show none open, nobody in connected_users and one row per client',
  ]);
}
