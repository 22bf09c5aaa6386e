// deploy: a rolling deploy as users live it. K instances behind a round-robin TCP balancer
// (bench/lib/balancer.ts, a Kubernetes Service on loopback), N reconnecting PulseClients held by
// the load generator and M observers listening to presence. Each instance in turn is taken out
// of the balancer (Kubernetes removes the endpoint), gets SIGTERM (its clients get 1001), is
// started again on its port, waits for /readyz and goes back in; then the next, as
// test/integration/rolling-deploy.test.ts does with 200 clients. Measured: reconnect time after
// 1001 (close event → next welcome), clients that did not come back, presence flickers the
// observers saw, the drain of each instance and, for Pulse, the database afterwards. The bare-ws
// reference gets the same crowd, balancer and restarts: it has no presence and no database, so
// its figures are the reconnect times only.
import pg from 'pg';
import { PulseClient } from '../../src/client/index.js';
import { startBalancer, type Balancer } from '../lib/balancer.js';
import { LoadGenerator } from '../loadgen/pool.js';
import type { Drain, HoldReport } from '../loadgen/protocol.js';
import { buildReport, type Metrics, type Row, type ScenarioReport } from '../lib/report.js';
import { createBenchDatabase, startInstance, type ServerInstance, type ServerKind } from '../lib/servers.js';
import { freePort, round, sleep, summarize, withTimeout } from '../lib/util.js';

export interface DeployOptions {
  clients: number;
  instances: number;
  /** PRESENCE_LEAVE_GRACE_MS of the Pulse instances. */
  graceMs: number;
  observers: number;
  pgAdminUrl: string;
  servers: ServerKind[];
  /** Clients started per second (all processes together). */
  connectRate: number;
  loadgenProcesses?: number;
  log?: (line: string) => void;
}

/** Pulse's default leave grace: an absence shorter than this is one a person watching would call a flicker. */
const DEFAULT_GRACE_MS = 3_000;
/** How long the crowd gets to be back after each drain, and the database to be exact at the end. */
const BACK_TIMEOUT_MS = 60_000;
const DB_TIMEOUT_MS = 30_000;

export const DEPLOY_ROWS: Row[] = [
  { label: 'instances (K)', key: 'instances' },
  { label: 'clients (N, PulseClient)', key: 'clients' },
  { label: 'observers (M, Pulse only)', key: 'observers' },
  { label: 'leave grace ms (Pulse only)', key: 'graceMs' },
  { label: 'connections drained (1001)', key: 'drained' },
  { label: 'reconnect after 1001 p50 ms', key: 'reconnectP50Ms', ratio: true },
  { label: 'reconnect after 1001 p99 ms', key: 'reconnectP99Ms', ratio: true },
  { label: 'reconnect after 1001 max ms', key: 'reconnectMaxMs', ratio: true },
  { label: 'clients not back', key: 'notBack' },
  { label: 'other closes (code: count)', key: 'otherCloses' },
  { label: 'failed reconnect attempts', key: 'failedAttempts' },
  { label: 'balancer: refused, retried next', key: 'balancerRefusedRetried' },
  { label: 'drained per instance, in order', key: 'drainedPerInstance' },
  { label: 'reconnect p50 ms per instance', key: 'reconnectP50PerInstance' },
  { label: 'reconnect p99 ms per instance', key: 'reconnectP99PerInstance' },
  { label: 'drain ms per instance (SIGTERM → exit)', key: 'drainMs' },
  { label: 'all back ms per instance (SIGTERM → all open)', key: 'backMs' },
  { label: 'restart ms per instance (start → ready)', key: 'restartMs' },
  { label: 'flickers seen (Pulse only; target 0)', key: 'flickers' },
  { label: '  of which left / joined', key: 'flickersLeftJoined' },
  { label: '  per observer', key: 'flickersPerObserver' },
  { label: '  presence changes for bench users', key: 'presenceChanges' },
  { label: '  users away ≥ flicker window', key: 'usersAwayLong' },
  { label: '  lowest online count seen', key: 'observerOnlineMin' },
  { label: 'db: connected_users (= N + M)', key: 'dbConnectedUsers' },
  { label: 'db: of which bench users (= N)', key: 'dbBenchUsers' },
  { label: 'db: open sessions (= N + M)', key: 'dbOpenSessions' },
  { label: 'db: clients’ current sessions open (= N)', key: 'dbHeldSessionsOpen' },
  { label: 'db: open on stopped instances', key: 'dbOpenOnStopped' },
  { label: 'db: drained sessions found', key: 'dbDrainedFound' },
  { label: 'db: drained closed with 1001', key: 'dbDrained1001' },
  { label: 'db: checks', key: 'dbChecks' },
];

/**
 * deploy at CI size (smoke, bench-smoke.test.ts): 20 clients, 2 instances, Pulse's default grace. A
 * shorter one would save a second of waiting, but a reconnect slower than it (a busy CI machine) and
 * within the 3 s flicker window would then be a flicker, and fail the run.
 */
export function deploySmokeOptions(pgAdminUrl: string, log?: (line: string) => void): DeployOptions {
  return { clients: 20, instances: 2, graceMs: DEFAULT_GRACE_MS, observers: 1, connectRate: 200, pgAdminUrl, servers: ['pulse', 'reference'], log };
}

/** Polls `condition` every 100 ms until it holds or `timeoutMs` passes; returns whether it held. */
async function waitUntil(condition: () => boolean | Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; i < 100_000 && Date.now() < deadline; i++) {
    if (await condition()) return true;
    await sleep(100);
  }
  return condition();
}

/** The drains of each instance, in the order the instances were drained. */
function perInstance(drains: Drain[]): Drain[][] {
  const byInstance = new Map<string, { first: number; drains: Drain[] }>();
  for (const d of drains) {
    const entry = byInstance.get(d.instanceId) ?? { first: d.closedAt, drains: [] };
    entry.first = Math.min(entry.first, d.closedAt);
    entry.drains.push(d);
    byInstance.set(d.instanceId, entry);
  }
  return [...byInstance.values()].sort((a, b) => a.first - b.first).map((e) => e.drains);
}

const reconnectTimes = (drains: Drain[]): number[] => drains.map((d) => d.reconnectMs).filter((ms): ms is number => ms !== null);

interface PresenceChange {
  observer: number;
  user: string;
  kind: 'joined' | 'left';
  at: number;
}

interface ObserverSet {
  clients: PulseClient[];
  changes: PresenceChange[];
  onlineMin: number;
  /** Start counting: everything before is the crowd arriving. */
  mark(): void;
}

async function startObservers(url: string, count: number): Promise<ObserverSet> {
  const set: ObserverSet = { clients: [], changes: [], onlineMin: Number.POSITIVE_INFINITY, mark: () => undefined };
  let counting = false;
  set.mark = () => {
    counting = true;
  };
  for (let i = 0; i < count; i++) {
    const observer = new PulseClient({ url, name: `observer-${i}` });
    observer.on('error', () => undefined);
    observer.on('presence', (frame) => {
      if (!counting) return;
      set.onlineMin = Math.min(set.onlineMin, frame.online);
      const at = Date.now();
      for (const user of frame.joined) if (user.name.startsWith('bench-')) set.changes.push({ observer: i, user: user.name, kind: 'joined', at });
      for (const user of frame.left) if (user.name.startsWith('bench-')) set.changes.push({ observer: i, user: user.name, kind: 'left', at });
    });
    set.clients.push(observer);
  }
  const connected = await withTimeout(Promise.all(set.clients.map((o) => o.connect())).then(() => true), BACK_TIMEOUT_MS);
  if (!connected) {
    for (const observer of set.clients) observer.close();
    throw new Error(`the observers were not all welcomed within ${BACK_TIMEOUT_MS} ms`);
  }
  return set;
}

/** The checks of rolling-deploy.test.ts, at N: one query each, read once the database is exact or the time is up. */
async function checkDatabase(
  databaseUrl: string,
  users: number,
  benchUsers: number,
  openSessions: string[],
  drains: Drain[],
): Promise<{ metrics: Metrics; failures: string[] }> {
  const db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  try {
    const read = async () => {
      const online = await db.query<{ n: number; sessions: number; bench: number }>(
        "SELECT count(*)::int AS n, coalesce(sum(sessions), 0)::int AS sessions, (count(*) FILTER (WHERE name LIKE 'bench-%'))::int AS bench FROM connected_users",
      );
      // The session each client holds now, as the client knows it, must be the open one.
      const held = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM sessions WHERE id = ANY($1::uuid[]) AND disconnected_at IS NULL', [openSessions]);
      const stopped = await db.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM sessions s JOIN instances i ON i.id = s.instance_id WHERE s.disconnected_at IS NULL AND i.stopped_at IS NOT NULL',
      );
      const drained = await db.query<{ rows: number; closed1001: number }>(
        `SELECT count(*)::int AS rows, (count(*) FILTER (WHERE disconnected_at IS NOT NULL AND close_code = 1001))::int AS closed1001
         FROM sessions WHERE id = ANY($1::uuid[])`,
        [drains.map((d) => d.sessionId)],
      );
      return {
        connectedUsers: online.rows[0]?.n ?? -1,
        benchUsers: online.rows[0]?.bench ?? -1,
        openSessions: online.rows[0]?.sessions ?? -1,
        heldOpen: held.rows[0]?.n ?? -1,
        openOnStopped: stopped.rows[0]?.n ?? -1,
        drainedFound: drained.rows[0]?.rows ?? -1,
        drained1001: drained.rows[0]?.closed1001 ?? -1,
      };
    };
    let state = await read();
    const exact = (): boolean =>
      state.connectedUsers === users &&
      state.benchUsers === benchUsers &&
      state.openSessions === users &&
      state.heldOpen === openSessions.length &&
      state.openOnStopped === 0 &&
      state.drainedFound === drains.length &&
      state.drained1001 === drains.length;
    // The writers batch: give them a moment, bounded.
    await waitUntil(async () => {
      state = await read();
      return exact();
    }, DB_TIMEOUT_MS);
    const failures: string[] = [];
    if (state.connectedUsers !== users) failures.push(`pulse: connected_users has ${state.connectedUsers} users, expected ${users}`);
    if (state.benchUsers !== benchUsers) failures.push(`pulse: connected_users has ${state.benchUsers} bench users, expected ${benchUsers}`);
    if (state.openSessions !== users) failures.push(`pulse: ${state.openSessions} open sessions, expected ${users}`);
    if (state.heldOpen !== openSessions.length) failures.push(`pulse: ${state.heldOpen} of the ${openSessions.length} sessions the clients hold are open`);
    if (state.openOnStopped !== 0) failures.push(`pulse: ${state.openOnStopped} sessions left open on stopped instances`);
    if (state.drainedFound !== drains.length) failures.push(`pulse: ${state.drainedFound} rows for ${drains.length} drained sessions`);
    if (state.drained1001 !== drains.length) failures.push(`pulse: ${state.drained1001} of ${drains.length} drained sessions closed with 1001`);
    const checks = `${failures.length === 0 ? 'pass' : 'FAIL'}: ${state.connectedUsers}/${users} users, ${state.openOnStopped} open on stopped, ${state.drained1001}/${drains.length} drained closed 1001`;
    return {
      metrics: {
        dbConnectedUsers: state.connectedUsers,
        dbBenchUsers: state.benchUsers,
        dbOpenSessions: state.openSessions,
        dbHeldSessionsOpen: state.heldOpen,
        dbOpenOnStopped: state.openOnStopped,
        dbDrainedFound: state.drainedFound,
        dbDrained1001: state.drained1001,
        dbExact: failures.length === 0,
        dbChecks: checks,
      },
      failures,
    };
  } finally {
    await db.end().catch(() => undefined);
  }
}

async function measure(kind: ServerKind, options: DeployOptions): Promise<{ metrics: Metrics; failures: string[] }> {
  const log = options.log ?? (() => undefined);
  const failures: string[] = [];
  const isPulse = kind === 'pulse';
  const database = isPulse ? await createBenchDatabase(options.pgAdminUrl) : undefined;
  const instances: ServerInstance[] = [];
  let balancer: Balancer | undefined;
  let observers: ObserverSet | undefined;
  const processes = options.loadgenProcesses ?? (options.clients >= 500 ? 2 : 1);
  let loadgen: LoadGenerator | undefined;
  const env = { PRESENCE_LEAVE_GRACE_MS: String(options.graceMs) };
  const start = (port: number): Promise<ServerInstance> => startInstance(kind, { port, workers: 1, databaseUrl: database?.url, env });
  try {
    const ports: number[] = [];
    for (let i = 0; i < options.instances; i++) ports.push(await freePort());
    // Together, as a Deployment's pods start: Pulse's migrations take turns under an advisory lock.
    const started = await Promise.allSettled(ports.map(start));
    for (const result of started) if (result.status === 'fulfilled') instances.push(result.value);
    const failed = started.find((result): result is PromiseRejectedResult => result.status === 'rejected');
    if (failed) throw failed.reason;
    balancer = await startBalancer(ports);
    const url = `ws://127.0.0.1:${balancer.port}/ws`;
    if (isPulse && options.observers > 0) observers = await startObservers(url, options.observers);
    const observerCount = observers?.clients.length ?? 0;

    loadgen = new LoadGenerator(processes);
    log(`deploy/${kind}: ${options.clients} clients through the balancer to ${options.instances} instances`);
    const held = await loadgen.hold(url, options.clients, options.connectRate, Math.max(60_000, (options.clients / options.connectRate) * 5_000));
    if (held.failed > 0) failures.push(`${kind}: ${held.failed} of ${options.clients} clients not connected at the start`);
    const everyone = options.clients + observerCount;
    if (observers) {
      const set = observers;
      const seen = await waitUntil(() => set.clients.every((o) => o.onlineCount === everyone), BACK_TIMEOUT_MS);
      if (!seen) failures.push(`${kind}: observers saw ${set.clients.map((o) => o.onlineCount).join(', ')} online, expected ${everyone}`);
      set.mark();
    }

    const drainMs: number[] = [];
    const backMs: number[] = [];
    const restartMs: number[] = [];
    const deployStartedAt = Date.now();
    for (let i = 0; i < instances.length; i++) {
      balancer.setBackends(ports.filter((_, j) => j !== i));
      const stoppedAt = Date.now();
      log(`deploy/${kind}: SIGTERM instance ${i}`);
      instances[i]!.kill('SIGTERM');
      const exit = await withTimeout(instances[i]!.exited, 30_000);
      if (!exit) {
        failures.push(`${kind}: instance ${i} did not exit within 30 s of SIGTERM`);
        instances[i]!.kill('SIGKILL');
        await withTimeout(instances[i]!.exited, 5_000);
      } else if (exit.code !== 0) failures.push(`${kind}: instance ${i} exited ${exit.code ?? exit.signal} after SIGTERM`);
      drainMs.push(Date.now() - stoppedAt);
      const lg = loadgen;
      const back = await waitUntil(async () => (await lg.holdStatus()).open === options.clients, BACK_TIMEOUT_MS);
      backMs.push(back ? Date.now() - stoppedAt : Number.NaN);
      const restartedAt = Date.now();
      instances[i] = await start(ports[i]!);
      restartMs.push(Date.now() - restartedAt);
      balancer.setBackends(ports);
    }
    const deployMs = Date.now() - deployStartedAt;
    // A leave still waiting out its grace would be announced after this: wait it out, so a late flicker is counted too.
    await sleep(isPulse ? Math.max(options.graceMs, 1_000) + 1_000 : 500);
    await waitUntil(async () => (await loadgen!.holdStatus()).open === options.clients, BACK_TIMEOUT_MS);

    const reports: HoldReport[] = await loadgen.holdReports();
    const drains = reports.flatMap((r) => r.drains);
    const reconnect = summarize(reconnectTimes(drains));
    const byInstance = perInstance(drains).map((list) => ({ n: list.length, reconnect: summarize(reconnectTimes(list)) }));
    const notBack = reports.flatMap((r) => r.notBack);
    const otherCloses: Record<string, number> = {};
    for (const r of reports) for (const [code, n] of Object.entries(r.otherCloses)) otherCloses[code] = (otherCloses[code] ?? 0) + n;
    const maxAbsence = new Map<string, number>();
    for (const r of reports) for (const [name, ms] of Object.entries(r.maxAbsenceMs)) maxAbsence.set(name, ms);
    if (notBack.length > 0) failures.push(`${kind}: ${notBack.length} clients not back (${notBack.slice(0, 5).join(', ')}…)`);
    if (drains.length < options.clients) failures.push(`${kind}: only ${drains.length} connections drained with 1001 for ${options.clients} clients`);

    const metrics: Metrics = {
      server: kind,
      instances: options.instances,
      clients: options.clients,
      observers: observerCount,
      graceMs: isPulse ? options.graceMs : null,
      drained: drains.length,
      reconnectP50Ms: round(reconnect.p50, 0),
      reconnectP99Ms: round(reconnect.p99, 0),
      reconnectMaxMs: round(reconnect.max, 0),
      notBack: notBack.length,
      otherCloses,
      failedAttempts: reports.reduce((s, r) => s + r.failedAttempts, 0),
      balancerRefusedRetried: balancer.stats().refusedRetried,
      drainedPerInstance: byInstance.map((i) => i.n).join(' / '),
      reconnectP50PerInstance: byInstance.map((i) => round(i.reconnect.p50, 0)).join(' / '),
      reconnectP99PerInstance: byInstance.map((i) => round(i.reconnect.p99, 0)).join(' / '),
      drainMs: drainMs.join(' / '),
      backMs: backMs.join(' / '),
      restartMs: restartMs.join(' / '),
      deployMs,
      loadgenCpuSeconds: round(reports.reduce((s, r) => s + r.cpuSeconds, 0), 1),
    };

    if (observers) {
      // A flicker: a `left` or `joined` for a user whose every absence was shorter than the window,
      // someone who to a person watching never went away. The window is the grace, at least Pulse's
      // default 3 s, so that a run with a shorter grace (or 0) shows what the default hides.
      const windowMs = Math.max(options.graceMs, DEFAULT_GRACE_MS);
      const flickers = observers.changes.filter((c) => (maxAbsence.get(c.user) ?? 0) < windowMs);
      const perObserver = observers.clients.map((_, i) => flickers.filter((f) => f.observer === i).length);
      Object.assign(metrics, {
        flickers: flickers.length,
        flickerWindowMs: windowMs,
        flickersLeftJoined: `${flickers.filter((f) => f.kind === 'left').length} / ${flickers.filter((f) => f.kind === 'joined').length}`,
        flickersPerObserver: perObserver.join(' / '),
        presenceChanges: observers.changes.length,
        usersAwayLong: [...maxAbsence.values()].filter((ms) => ms >= windowMs).length,
        observerOnlineMin: Number.isFinite(observers.onlineMin) ? observers.onlineMin : everyone,
        flickerSample: flickers.slice(0, 5).map((f) => `${f.kind} ${f.user}`).join(', '),
      });
    }
    if (isPulse && database) {
      const checked = await checkDatabase(database.url, everyone, options.clients, reports.flatMap((r) => r.openSessions), drains);
      Object.assign(metrics, checked.metrics);
      failures.push(...checked.failures);
    }
    return { metrics, failures };
  } finally {
    for (const observer of observers?.clients ?? []) observer.close();
    await loadgen?.shutdown();
    await balancer?.close();
    await Promise.all(instances.map((instance) => instance.stop()));
    await database?.drop().catch((error: unknown) => console.error(`bench: could not drop ${database.name}: ${String(error)}`));
  }
}

export async function runDeploy(options: DeployOptions): Promise<ScenarioReport> {
  const startedAt = new Date().toISOString();
  const servers: ScenarioReport['servers'] = {};
  const failures: string[] = [];
  for (const kind of options.servers) {
    const result = await measure(kind, options);
    servers[kind] = result.metrics;
    failures.push(...result.failures);
  }
  const pulse = servers.pulse;
  // Flickers are a figure to report, not a failure, when the grace is 0: that run shows them on purpose.
  if (pulse && options.graceMs > 0 && typeof pulse.flickers === 'number' && pulse.flickers > 0) {
    failures.push(`pulse: observers saw ${pulse.flickers} flickers with a ${options.graceMs} ms grace (${String(pulse.flickerSample)})`);
  }
  return buildReport('deploy', startedAt, options, servers, DEPLOY_ROWS, failures, [
    'clients: PulseClient (src/client), users bench-0…, presence off, in load-generator processes; it reconnects at once within a 0–250 ms jitter after 1001, so the jitter is part of the reconnect time',
    'reconnect after 1001 = the client’s close event → its next welcome; all back = SIGTERM → every client open again (polled every 100 ms)',
    'each instance is taken out of the balancer, then SIGTERM; restarted on its port; back in after /readyz',
    `flicker: an observer sees left or joined for a user whose every absence was shorter than max(grace, ${DEFAULT_GRACE_MS} ms); presence changes: all left/joined for bench users after the crowd arrived`,
    'the reference has no presence and no database: flickers and db checks are Pulse only; its welcome carries the fields PulseClient needs',
  ]);
}
