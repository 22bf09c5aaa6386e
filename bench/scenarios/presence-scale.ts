// presence-scale: the capacity of one PostgreSQL shared by K Pulse instances. K processes each
// run the real Presence and SessionWriter (bench/presence-scale/instance.ts) with synthetic
// sessions, hold N sessions each and churn them at a total of R session events per second (a
// close or an open each count one), for a sweep of R. Per step: events absorbed, writer lag
// (the writer's own event → committed figure), PostgreSQL CPU per 1,000 events, how long a join
// takes to show on the other instances, NOTIFY bytes that one listener receives; and the ceiling,
// the highest R whose writer lag p99 stays within 1 s. There is no bare-ws reference here: the
// reference has no database.
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { buildReport, type Metrics, type Row, type ScenarioReport } from '../lib/report.js';
import { createBenchDatabase } from '../lib/servers.js';
import { cpuSecondsOfCommand, machineCpuTicks, processCpuSeconds, round, sleep, summarize } from '../lib/util.js';
import { PRESENCE_CHANNEL } from '../../src/db/queries.js';
import type { ChildMessage, ParentMessage, StateReply, StepResult } from '../presence-scale/protocol.js';

const INSTANCE = fileURLToPath(new URL('../presence-scale/instance.ts', import.meta.url));

export interface PresenceScaleOptions {
  /** Simulated instances (processes), 2…32. */
  instances: number;
  /** Sessions each instance holds open throughout. */
  sessions: number;
  /** Total session events per second of each step, in order; the sweep stops after the first step over the ceiling. */
  rates: number[];
  /** Measured seconds per step, after `warmupSeconds` of the same load. */
  seconds: number;
  warmupSeconds: number;
  pgAdminUrl: string;
  /** The whole sweep stops starting steps after this many minutes. */
  maxMinutes?: number;
  /** Names the run in the chart (e.g. the code measured); default: its commit. */
  label?: string;
  /** ANALYZE the bench database once the population has settled (default true). */
  analyze?: boolean;
  log?: (line: string) => void;
}

/** The ceiling's criterion: writer lag p99 within this, and the events absorbed as fast as they come. */
const MAX_LAG_P99_MS = 1_000;
const MIN_ABSORBED_SHARE = 0.95;

export const PRESENCE_SCALE_ROWS: Row[] = [
  { label: 'PostgreSQL', key: 'postgres' },
  { label: 'instances (K)', key: 'instances' },
  { label: 'sessions held per instance', key: 'sessionsPerInstance' },
  { label: 'steps run', key: 'steps' },
  { label: 'ceiling: highest R with lag p99 ≤ 1 s, events/s', key: 'ceilingRate' },
  { label: '  absorbed events/s', key: 'absorbedPerSecond' },
  { label: '  writer lag p50 ms', key: 'lagP50Ms' },
  { label: '  writer lag p99 ms', key: 'lagP99Ms' },
  { label: '  batch size p50', key: 'batchSizeP50' },
  { label: '  batches/s (all instances)', key: 'batchesPerSecond' },
  { label: '  PostgreSQL CPU ms per 1,000 events', key: 'postgresCpuMsPer1000' },
  { label: '  PostgreSQL CPU % (100 = 1 core)', key: 'postgresCpuPercent' },
  { label: '    of which LISTEN backends %', key: 'postgresListenersCpuPercent' },
  { label: '  instances CPU % (all K)', key: 'instancesCpuPercent' },
  { label: '  machine CPU busy %', key: 'machineBusyPercent' },
  { label: '  cross-instance join p50 ms', key: 'crossP50Ms' },
  { label: '  cross-instance join p99 ms', key: 'crossP99Ms' },
  { label: '  probe joins seen elsewhere %', key: 'crossSeenPercent' },
  { label: '  NOTIFY KiB/s at one listener', key: 'notifyKiBPerSecond' },
  { label: '  reload hints/s', key: 'reloadHintsPerSecond' },
  { label: 'first step over the ceiling, events/s', key: 'overRate' },
  { label: '  its writer lag p99 ms', key: 'overLagP99Ms' },
  { label: 'after the sweep: every instance agrees', key: 'instancesAgree' },
  { label: 'after the sweep: database exact', key: 'dbExact' },
];

/** One line per step of the sweep. */
const STEP_COLUMNS: Array<[label: string, key: string]> = [
  ['R offered', 'rate'],
  ['made/s', 'madePerSecond'],
  ['absorbed/s', 'absorbedPerSecond'],
  ['lag p50', 'lagP50Ms'],
  ['lag p99', 'lagP99Ms'],
  ['batch p50', 'batchSizeP50'],
  ['batches/s', 'batchesPerSecond'],
  ['pg ms/1k', 'postgresCpuMsPer1000'],
  ['pg %', 'postgresCpuPercent'],
  ['listen %', 'postgresListenersCpuPercent'],
  ['inst %', 'instancesCpuPercent'],
  ['busy %', 'machineBusyPercent'],
  ['join p50', 'crossP50Ms'],
  ['join p99', 'crossP99Ms'],
  ['seen %', 'crossSeenPercent'],
  ['notify KiB/s', 'notifyKiBPerSecond'],
  ['hints/s', 'reloadHintsPerSecond'],
  ['reloads', 'reloads'],
  ['failed', 'failedBatches'],
  ['conns', 'peakConnections'],
  ['ok', 'withinCeiling'],
];

export function stepColumns(): Array<[string, string]> {
  return STEP_COLUMNS;
}

type Reply<T extends ChildMessage['type']> = Extract<ChildMessage, { type: T }>;

class Instance {
  readonly child: ChildProcess;
  private waiter: { type: string; resolve: (m: ChildMessage) => void; reject: (e: Error) => void } | undefined;

  constructor(readonly index: number) {
    this.child = fork(INSTANCE, [], { execArgv: ['--import', 'tsx'], serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.child.on('message', (message: ChildMessage) => {
      const waiter = this.waiter;
      if (!waiter) return;
      if (message.type === 'error') {
        this.waiter = undefined;
        waiter.reject(new Error(`instance ${index}: ${message.message}`));
      } else if (message.type === waiter.type) {
        this.waiter = undefined;
        waiter.resolve(message);
      }
    });
    this.child.on('exit', (code, signal) => {
      const waiter = this.waiter;
      this.waiter = undefined;
      waiter?.reject(new Error(`instance ${index} exited (${code ?? signal})`));
    });
  }

  ask<T extends ChildMessage['type']>(message: ParentMessage, replyType: T, timeoutMs: number): Promise<Reply<T>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        reject(new Error(`instance ${this.index}: no '${replyType}' reply within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiter = {
        type: replyType,
        resolve: (m) => (clearTimeout(timer), resolve(m as Reply<T>)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      };
      this.child.send(message);
    });
  }

  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }

  /** Graceful stop (the instance marks itself stopped in the database), then waits for the process to end. */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    await this.ask({ cmd: 'stop' }, 'stopped', 20_000).catch(() => this.kill());
    const timer = setTimeout(() => this.kill(), 5_000);
    await exited;
    clearTimeout(timer);
  }
}

/** PostgreSQL CPU seconds over a window; `listeners`: the share of the backends that LISTEN (delivering notifications). */
interface PostgresCpu {
  total: number;
  listeners: number | null;
}

/**
 * Starts measuring the CPU of the PostgreSQL backends serving one database (the bench's): other
 * databases on the same server (another bench, a test run) are left out, and so are the server's
 * shared background processes. A backend that exits within the window is lost from the count
 * (the instances' pools keep theirs). When the server is not on this machine: every `postgres` process.
 */
function postgresCpuMeter(db: pg.Client, databaseName: string, local: boolean): () => Promise<() => Promise<PostgresCpu>> {
  const backends = async (): Promise<Map<number, { seconds: number; listener: boolean }>> => {
    const { rows } = await db.query<{ pid: number; listener: boolean }>(
      "SELECT pid, query ILIKE 'LISTEN%' AS listener FROM pg_stat_activity WHERE datname = $1",
      [databaseName],
    );
    const used = new Map<number, { seconds: number; listener: boolean }>();
    for (const { pid, listener } of rows) {
      const seconds = processCpuSeconds(pid);
      if (seconds !== undefined) used.set(pid, { seconds, listener });
    }
    return used;
  };
  if (!local) {
    return async () => {
      const before = cpuSecondsOfCommand('postgres');
      return async () => ({ total: cpuSecondsOfCommand('postgres') - before, listeners: null });
    };
  }
  return async () => {
    const before = await backends();
    return async () => {
      let total = 0;
      let listeners = 0;
      for (const [pid, now] of await backends()) {
        const used = now.seconds - (before.get(pid)?.seconds ?? 0);
        total += used;
        if (now.listener) listeners += used;
      }
      return { total, listeners };
    };
  };
}

/** Each probe join matched with its sightings on the other instances: latencies, and how many of the K − 1 were seen. */
function crossInstance(results: StepResult[]): { latencies: number[]; expected: number; seen: number } {
  const joins = new Map<string, number[]>();
  results.forEach((r, instance) => {
    for (let i = 0; i + 1 < r.probeJoins.length; i += 2) {
      const key = `${instance}:${r.probeJoins[i]}`;
      const list = joins.get(key) ?? [];
      list.push(r.probeJoins[i + 1]!);
      joins.set(key, list);
    }
  });
  let expected = 0;
  for (const list of joins.values()) {
    list.sort((a, b) => a - b);
    expected += list.length * (results.length - 1);
  }
  const latencies: number[] = [];
  const matched = new Set<string>();
  results.forEach((r, observer) => {
    for (let i = 0; i + 2 < r.probeSeen.length; i += 3) {
      const key = `${r.probeSeen[i]}:${r.probeSeen[i + 1]}`;
      const seenAt = r.probeSeen[i + 2]!;
      const list = joins.get(key);
      if (!list) continue; // a join from before the window
      // The latest join of that user at or before the sighting (a user is offline for seconds between sessions).
      let join: number | undefined;
      for (const at of list) if (at <= seenAt) join = at;
      if (join === undefined) continue;
      const id = `${observer}|${key}|${join}`;
      if (matched.has(id)) continue;
      matched.add(id);
      latencies.push(seenAt - join);
    }
  });
  return { latencies, expected, seen: latencies.length };
}

interface Listener {
  bytes: number;
  messages: number;
  hints: number;
  reset(): void;
  end(): Promise<void>;
}

async function listen(url: string): Promise<Listener> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const state: Listener = {
    bytes: 0,
    messages: 0,
    hints: 0,
    reset() {
      state.bytes = 0;
      state.messages = 0;
      state.hints = 0;
    },
    end: () => client.end(),
  };
  client.on('notification', (msg) => {
    const payload = msg.payload ?? '';
    state.bytes += Buffer.byteLength(payload);
    state.messages++;
    if (payload.includes('"r":1') || payload.includes('"r" : 1')) state.hints++;
  });
  client.on('error', () => undefined);
  await client.query(`LISTEN ${PRESENCE_CHANNEL}`);
  return state;
}

async function runStep(
  instances: Instance[],
  rate: number,
  options: PresenceScaleOptions,
  listener: Listener,
  db: pg.Client,
  databaseName: string,
  postgresCpu: () => Promise<() => Promise<PostgresCpu>>,
): Promise<Metrics> {
  const k = instances.length;
  const startAt = Date.now() + 300;
  const windowStart = startAt + options.warmupSeconds * 1000;
  const windowEnd = windowStart + options.seconds * 1000;
  const replies = Promise.all(
    instances.map((instance, i) =>
      // Spread R over K instances, the remainder on the first ones.
      instance.ask({ cmd: 'step', rate: Math.floor(rate / k) + (i < rate % k ? 1 : 0), startAt, windowStart, windowEnd }, 'step', windowEnd - Date.now() + 60_000),
    ),
  );
  // Awaited below; an instance that dies meanwhile (Ctrl-C) must not be an unhandled rejection first.
  replies.catch(() => undefined);
  await sleep(windowStart - Date.now());
  listener.reset();
  const pgMeter = await postgresCpu();
  const machineBefore = machineCpuTicks();
  let peakConnections = 0;
  while (Date.now() < windowEnd - 250) {
    const { rows } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1', [databaseName]);
    peakConnections = Math.max(peakConnections, rows[0]?.n ?? 0);
    await sleep(Math.min(1000, Math.max(0, windowEnd - Date.now())));
  }
  await sleep(Math.max(0, windowEnd - Date.now()));
  const pgCpu = await pgMeter();
  const pgSeconds = pgCpu.total;
  const machineAfter = machineCpuTicks();
  const notify = { bytes: listener.bytes, messages: listener.messages, hints: listener.hints };
  const results = await replies;
  const seconds = options.seconds;
  const written = results.reduce((s, r) => s + r.written, 0);
  const made = results.reduce((s, r) => s + r.events, 0);
  const lag = summarize(results.flatMap((r) => Array.from(r.lagMs)));
  const batchSize = summarize(results.flatMap((r) => Array.from(r.batchSizes)));
  const batchMs = summarize(results.flatMap((r) => Array.from(r.batchMs)));
  const cross = crossInstance(results);
  const crossSummary = summarize(cross.latencies);
  const reloads: Record<string, number> = {};
  for (const r of results) for (const [reason, n] of Object.entries(r.reloads)) reloads[reason] = (reloads[reason] ?? 0) + n;
  const instancesCpu = results.reduce((s, r) => s + r.cpuSeconds, 0);
  const absorbed = written / seconds;
  const busyShare = machineAfter.total > machineBefore.total ? (machineAfter.busy - machineBefore.busy) / (machineAfter.total - machineBefore.total) : Number.NaN;
  const metrics: Metrics = {
    rate,
    madePerSecond: round(made / seconds, 0),
    absorbedPerSecond: round(absorbed, 0),
    lagP50Ms: round(lag.p50, 1),
    lagP99Ms: round(lag.p99, 1),
    lagMaxMs: round(lag.max, 1),
    batchSizeP50: round(batchSize.p50, 0),
    batchSizeMax: round(batchSize.max, 0),
    batchesPerSecond: round(batchSize.count / seconds, 0),
    batchP99Ms: round(batchMs.p99, 1),
    failedBatches: results.reduce((s, r) => s + r.failedBatches, 0),
    queuedAtEnd: results.reduce((s, r) => s + r.queuedAtEnd, 0),
    postgresCpuMsPer1000: written > 0 ? round((pgSeconds * 1e6) / written, 1) : null,
    postgresCpuPercent: round((100 * pgSeconds) / seconds, 0),
    // The backends that LISTEN: every notification wakes each of them (K instances + the bench).
    postgresListenersCpuPercent: pgCpu.listeners === null ? null : round((100 * pgCpu.listeners) / seconds, 0),
    instancesCpuPercent: round((100 * instancesCpu) / seconds, 0),
    machineBusyPercent: round(100 * busyShare, 0),
    crossP50Ms: round(crossSummary.p50, 0),
    crossP99Ms: round(crossSummary.p99, 0),
    crossMaxMs: round(crossSummary.max, 0),
    crossSamples: cross.seen,
    crossSeenPercent: cross.expected > 0 ? round((100 * cross.seen) / cross.expected, 1) : null,
    notifyKiBPerSecond: round(notify.bytes / 1024 / seconds, 1),
    notificationsPerSecond: round(notify.messages / seconds, 0),
    notifyBytesPerMessage: notify.messages > 0 ? round(notify.bytes / notify.messages, 0) : null,
    reloadHintsPerSecond: round(notify.hints / seconds, 1),
    reloads: Object.values(reloads).reduce((s, n) => s + n, 0),
    reloadsByReason: reloads,
    resyncs: results.reduce((s, r) => s + r.resyncs, 0),
    peakConnections,
  };
  metrics.withinCeiling = lag.count > 0 && lag.p99 <= MAX_LAG_P99_MS && absorbed >= MIN_ABSORBED_SHARE * rate;
  return metrics;
}

async function states(instances: Instance[]): Promise<StateReply[]> {
  return Promise.all(instances.map((instance) => instance.ask({ cmd: 'state' }, 'state', 10_000)));
}

/** Every instance must see every open session's user, and the database must hold exactly those sessions (waits up to 60 s). */
async function checkConverged(instances: Instance[], db: pg.Client): Promise<Metrics> {
  let last: Metrics = {};
  const started = Date.now();
  for (let attempt = 0; attempt < 240; attempt++) {
    const replies = await states(instances);
    const local = replies.reduce((s, r) => s + r.local, 0);
    const queued = replies.reduce((s, r) => s + r.queued, 0);
    const { rows } = await db.query<{ users: number; open: number }>(
      `SELECT (SELECT count(*) FROM connected_users)::int AS users,
              (SELECT count(*) FROM sessions WHERE disconnected_at IS NULL)::int AS open`,
    );
    const agree = replies.every((r) => r.online === local);
    // One session per user at a time, so users online = sessions open.
    const exact = queued === 0 && rows[0]?.users === local && rows[0]?.open === local;
    last = {
      openSessions: local,
      onlineSeenMin: Math.min(...replies.map((r) => r.online)),
      onlineSeenMax: Math.max(...replies.map((r) => r.online)),
      dbConnectedUsers: rows[0]?.users ?? null,
      dbOpenSessions: rows[0]?.open ?? null,
      instancesAgree: agree,
      dbExact: exact,
      convergedAfterMs: agree && exact ? Date.now() - started : null,
    };
    if (agree && exact) return last;
    await sleep(250);
  }
  return last;
}

export async function runPresenceScale(options: PresenceScaleOptions): Promise<ScenarioReport> {
  const log = options.log ?? (() => undefined);
  const startedAt = new Date().toISOString();
  const k = options.instances;
  const database = await createBenchDatabase(options.pgAdminUrl);
  const instances: Instance[] = [];
  let listener: Listener | undefined;
  let db: pg.Client | undefined;
  let interrupted = false;
  // Ctrl-C: the instances go (they also exit when this process does), the bench database is dropped.
  const onSignal = (): void => {
    if (interrupted) return;
    interrupted = true;
    for (const instance of instances) instance.kill();
    const timer = setTimeout(() => process.exit(130), 5_000);
    void Promise.allSettled([listener?.end(), db?.end()]).then(() => database.drop()).finally(() => {
      clearTimeout(timer);
      process.exit(130);
    });
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const steps: Metrics[] = [];
  const failures: string[] = [];
  let converged: Metrics = {};
  let server = 'unknown';
  try {
    db = new pg.Client({ connectionString: database.url });
    // The bench database is dropped with FORCE at the end, also on Ctrl-C: not an error.
    db.on('error', () => undefined);
    await db.connect();
    const { rows } = await db.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    const postgresCpu = postgresCpuMeter(db, database.name, processCpuSeconds(rows[0]?.pid ?? 0) !== undefined);
    const settings = await db.query<{ version: string; sync: string; fsync: string }>(
      "SELECT current_setting('server_version') AS version, current_setting('synchronous_commit') AS sync, current_setting('fsync') AS fsync",
    );
    server = `PostgreSQL ${settings.rows[0]?.version ?? '?'}, synchronous_commit ${settings.rows[0]?.sync ?? '?'}, fsync ${settings.rows[0]?.fsync ?? '?'}`;
    listener = await listen(database.url);
    log(`presence-scale: starting ${k} instances with ${options.sessions} sessions each`);
    for (let i = 0; i < k; i++) instances.push(new Instance(i));
    // One after the other: K processes migrating and registering at once only slows the start.
    for (const instance of instances) {
      await instance.ask({ cmd: 'start', databaseUrl: database.url, index: instance.index, sessions: options.sessions }, 'started', 120_000);
    }
    // The initial population arrives in batches too big for one notification: every instance reloads
    // every other. The first step starts once that has settled and every instance sees everyone.
    const settled = await checkConverged(instances, db);
    log(`presence-scale: population settled after ${String(settled.convergedAfterMs)} ms (${String(settled.openSessions)} sessions)`);
    // Statistics, as autovacuum gathers them within a minute of a database's first rows (and the
    // cached plans are made afresh): without them every plan of the sweep would be the one made when
    // the tables were empty, a server with autovacuum off (this machine's) keeps it for good.
    if (options.analyze !== false) await db.query('ANALYZE');
    await sleep(1000);
    const deadline = Date.now() + (options.maxMinutes ?? 20) * 60_000;
    for (const rate of options.rates) {
      if (Date.now() > deadline) {
        log(`presence-scale: time bound reached, not starting R = ${rate}`);
        break;
      }
      log(`presence-scale: R = ${rate} events/s over ${k} instances, ${options.warmupSeconds} s warm-up + ${options.seconds} s`);
      const step = await runStep(instances, rate, options, listener, db, database.name, postgresCpu);
      steps.push(step);
      log(
        `presence-scale:   absorbed ${String(step.absorbedPerSecond)}/s, lag p99 ${String(step.lagP99Ms)} ms, ` +
          `PostgreSQL ${String(step.postgresCpuMsPer1000)} ms/1k events, join p99 ${String(step.crossP99Ms)} ms`,
      );
      if (step.withinCeiling !== true) break;
    }
    converged = await checkConverged(instances, db);
  } finally {
    await Promise.all(instances.map((instance) => instance.stop()));
    await listener?.end().catch(() => undefined);
    await db?.end().catch(() => undefined);
    await database.drop().catch((error: unknown) => log(`bench: could not drop ${database.name}: ${String(error)}`));
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }

  const within = steps.filter((s) => s.withinCeiling === true);
  const best = within.reduce<Metrics | undefined>((a, s) => (!a || Number(s.rate) > Number(a.rate) ? s : a), undefined);
  const over = steps.find((s) => s.withinCeiling !== true);
  const pulse: Metrics = {
    postgres: server,
    instances: k,
    sessionsPerInstance: options.sessions,
    steps: steps.length,
    ceilingRate: best?.rate ?? null,
    ...Object.fromEntries(
      ['absorbedPerSecond', 'lagP50Ms', 'lagP99Ms', 'batchSizeP50', 'batchesPerSecond', 'postgresCpuMsPer1000', 'postgresCpuPercent', 'postgresListenersCpuPercent', 'instancesCpuPercent',
        'machineBusyPercent', 'crossP50Ms', 'crossP99Ms', 'crossSeenPercent', 'notifyKiBPerSecond', 'reloadHintsPerSecond'].map((key) => [key, best?.[key] ?? null]),
    ),
    overRate: over?.rate ?? null,
    overLagP99Ms: over?.lagP99Ms ?? null,
    ...converged,
  };
  if (steps.length === 0) failures.push('no step ran');
  if (converged.instancesAgree !== true) failures.push(`instances disagree after the sweep: ${JSON.stringify(converged)}`);
  if (converged.dbExact !== true) failures.push(`database not exact after the sweep: ${JSON.stringify(converged)}`);
  for (const step of steps) {
    if (step.failedBatches !== 0) failures.push(`R = ${String(step.rate)}: ${String(step.failedBatches)} failed batches`);
    // Below the ceiling every probe join must have shown on every other instance.
    if (step.withinCeiling === true && step.crossSeenPercent !== 100) failures.push(`R = ${String(step.rate)}: only ${String(step.crossSeenPercent)} % of probe joins seen elsewhere`);
  }
  const report = buildReport('presence-scale', startedAt, options, { pulse }, PRESENCE_SCALE_ROWS, failures, [
    'each instance is a process running src/presence (Presence, SessionWriter, the pg driver) with synthetic sessions; one session per user at a time, so every open is a join and every close a leave',
    'R = total session events/s over the K instances (a close of the oldest session and an open for the user offline longest, in turn); absorbed = events committed by the writers in the window',
    'writer lag = the writer’s own event → committed figure (eventLagSeconds), over every event committed in the window; the ceiling: lag p99 ≤ 1 s and ≥ 95 % of R absorbed',
    `cross-instance join = a probe user (1 in 8) opening on one instance → seen in takeChanges() on another (polled every 5 ms, same machine clock)`,
    'the bench database is ANALYZEd once the initial population has settled (unless --no-analyze), as autovacuum would do in its first minute',
    'PostgreSQL CPU: utime + stime of the backends connected to the bench database (the bench’s own two included; other databases and the server’s background processes left out) over the window, per 1,000 absorbed events',
    'NOTIFY bytes: payload bytes received by one listener (the bench’s); every instance receives about the same',
  ]);
  return { ...report, steps };
}
