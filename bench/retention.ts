// tsx bench/retention.ts [--rows 3000000] [--seconds 8] [--batches 1000,2000,5000] [--rate 50] [--max-seconds 90] [--unpaced] [--pg-url postgres://…/postgres]
//
// Sessions retention, two ways (deletes in small batches, dropping partitions), measured while a writer-like load runs:
//   (a) deletes in small batches: Pulse's own pass (src/presence/retention.ts: paced batches of
//       removeExpiredSessions, one short transaction each, then the orphan users), on the plain
//       `sessions` table with migration 002's index; --unpaced sends the batches back to back;
//   (b) a copy of the same rows in `sessions_part`, partitioned by day of connected_at (open sessions
//       have no disconnected_at to partition by), whose old partitions are dropped: half of them with
//       DROP TABLE, half detached first with DETACH PARTITION … CONCURRENTLY.
// Writer load: one connection, like Pulse's writer, sending --rate statements a second, each opening
// 25 sessions (upserting their users) and closing 25 opened a second before: 2,500 session events/s
// at the default rate. Its statement latency is reported for a baseline window without removal and
// for each removal window. Also timed: the fill, migration 002's CREATE INDEX on the filled table, and
// the rewrite into the partitioned layout (what a migration to it would have to do).
//
// A database pulse_bench_<time>_<random> is created on the server and dropped at the end
// (also on Ctrl-C). Prints a table per part and, as the very last line, one line of JSON; writes
// bench/results/retention-<timestamp>.json. Progress goes to standard error.
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import type { Queryable } from '../src/db/driver.js';
import { loadMigrations } from '../src/db/migrate.js';
import { removeExpiredSessions } from '../src/db/queries.js';
import type { Logger } from '../src/log.js';
import { SessionRetention } from '../src/presence/retention.js';
import { machine, saveReport, source } from './lib/report.js';
import { createBenchDatabase, defaultPgAdminUrl } from './lib/servers.js';
import { intOption, parseArgs, round, runAsScript, sleep, stringOption, summarize, table, type Cell } from './lib/util.js';

const log = (line: string): void => console.error(`[retention] ${line}`);
const silent: Logger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
const DAY_MS = 86_400_000;
const USERS = 100_000;
const EVENTS_PER_SIDE = 25;
/** The fill spans connections from 40 days ago to 1 day ago, each lasting up to an hour. */
const FILL_DAYS = 40;

interface Options {
  rows: number;
  seconds: number;
  batches: number[];
  rate: number;
  maxSeconds: number;
  /** Batches back to back instead of Pulse's paced pass. */
  unpaced: boolean;
  pgAdminUrl: string;
}

interface Timed {
  at: number;
  ms: number;
}

interface Phase {
  phase: string;
  writer: { statements: number; p50: number; p99: number; max: number };
  removed: number;
  removalSeconds: number;
  rowsPerSecond: number;
  removalStatement: { count: number; p50: number; p99: number; max: number } | null;
}

let aborted = false;

/** The writer-like load on `table` (sessions or sessions_part): latencies of every statement, with their start. */
function startWriter(client: pg.Client, tableName: string, instanceId: string, rate: number) {
  const latencies: Timed[] = [];
  let open: string[] = [];
  let running = true;
  const statement = `
    WITH opened_users AS (
      INSERT INTO users (id, name, first_seen_at, last_seen_at)
      SELECT DISTINCT ON (u) u, 'User ' || u, now(), now() FROM unnest($2::text[]) AS u ORDER BY u
      ON CONFLICT (id) DO UPDATE SET last_seen_at = excluded.last_seen_at
    ), opened AS (
      INSERT INTO ${tableName} (id, user_id, instance_id, protocol, remote_addr, user_agent, connected_at)
      SELECT id, u, $1::uuid, 'json', '10.0.0.2', 'bench-writer', now() FROM unnest($3::uuid[], $2::text[]) AS o(id, u)
    ), closed AS (
      UPDATE ${tableName} s SET disconnected_at = now(), close_code = 1000
      FROM unnest($4::uuid[]) AS c(id) WHERE s.id = c.id AND (s.disconnected_at IS NULL OR c.id IS NULL)
    )
    SELECT 1`;
  const done = (async () => {
    const interval = 1000 / rate;
    let next = performance.now();
    while (running && !aborted) {
      const users = Array.from({ length: EVENTS_PER_SIDE }, () => `u${1 + Math.floor(Math.random() * USERS)}`);
      const ids = users.map(() => randomUUID());
      const closing = open;
      open = ids;
      const started = performance.now();
      await client.query(statement, [instanceId, users, ids, closing]);
      latencies.push({ at: started, ms: performance.now() - started });
      next += interval;
      const wait = next - performance.now();
      if (wait > 0) await sleep(wait);
      else next = performance.now();
    }
  })();
  return {
    latencies,
    async stop() {
      running = false;
      await done;
    },
  };
}

function window(latencies: Timed[], from: number, to: number): Phase['writer'] {
  const s = summarize(latencies.filter((l) => l.at >= from && l.at < to).map((l) => l.ms));
  return { statements: s.count, p50: round(s.p50), p99: round(s.p99), max: round(s.max) };
}

function statementSummary(ms: number[]): Phase['removalStatement'] {
  if (ms.length === 0) return null;
  const s = summarize(ms);
  return { count: s.count, p50: round(s.p50), p99: round(s.p99), max: round(s.max) };
}

async function timed<T>(what: string, fn: () => Promise<T>): Promise<{ value: T; seconds: number }> {
  const started = performance.now();
  log(`${what}…`);
  const value = await fn();
  const seconds = round((performance.now() - started) / 1000, 1);
  log(`${what}: ${seconds} s`);
  return { value, seconds };
}

async function count(client: pg.Client, sql: string): Promise<number> {
  const result = await client.query<{ n: string }>(sql);
  return Number(result.rows[0]?.n ?? 0);
}

async function run(options: Options) {
  const startedAt = new Date().toISOString();
  const database = await createBenchDatabase(options.pgAdminUrl);
  const clients: pg.Client[] = [];
  const connect = async () => {
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    clients.push(client);
    return client;
  };
  try {
    const setupClient = await connect();
    const settings = await setupClient.query<{ name: string; setting: string }>(
      `SELECT name, setting FROM pg_settings WHERE name IN ('server_version', 'shared_buffers', 'autovacuum', 'max_wal_size', 'maintenance_work_mem')`,
    );
    const server = Object.fromEntries(settings.rows.map((r) => [r.name, r.setting]));
    const [initial, retentionIndex] = loadMigrations();
    if (!initial || !retentionIndex) throw new Error('expected migrations 001 and 002');
    await setupClient.query(initial.sql);

    const fillInstance = randomUUID();
    const writerInstance = randomUUID();
    await setupClient.query(`INSERT INTO instances (id, hostname, pid, stopped_at) VALUES ($1, 'filled', 1, now() - interval '1 day'), ($2, 'writer', 2, NULL)`, [
      fillInstance,
      writerInstance,
    ]);
    const fill = await timed(`fill: ${USERS.toLocaleString('en-US')} users, ${options.rows.toLocaleString('en-US')} closed sessions over ${FILL_DAYS} days`, async () => {
      await setupClient.query(
        `INSERT INTO users (id, name, first_seen_at, last_seen_at)
         SELECT 'u' || i, 'User ' || i, now() - interval '41 days', now() - interval '1 day' FROM generate_series(1, ${USERS}) AS i`,
      );
      const chunk = 500_000;
      for (let from = 1; from <= options.rows && !aborted; from += chunk) {
        const to = Math.min(options.rows, from + chunk - 1);
        // Appended in time order, as the writer does; each session lasts up to an hour.
        await setupClient.query(
          `INSERT INTO sessions (id, user_id, instance_id, protocol, remote_addr, user_agent, connected_at, disconnected_at, close_code, close_reason)
           SELECT gen_random_uuid(), 'u' || (1 + (i::bigint * 7919) % ${USERS}), $1, 'json', '10.0.0.1', 'Mozilla/5.0 (bench)', c,
                  c + (i % 3600) * interval '1 second', 1000, NULL
           FROM (SELECT i, now() - interval '${FILL_DAYS} days' + (i::double precision / $2) * interval '${FILL_DAYS - 1} days' AS c
                 FROM generate_series($3::int, $4::int) AS i) g`,
          [fillInstance, options.rows, from, to],
        );
        log(`  ${to.toLocaleString('en-US')} rows`);
      }
    });
    const migration002 = await timed('migration 002 (CREATE INDEX sessions_closed_by_time) on the filled table', () => setupClient.query(retentionIndex.sql));

    // The partitioned layout: the partition key must be part of the primary key, so (id, connected_at);
    // the writer's ON CONFLICT (id) has no unique index to use any more.
    const dayStart = (offset: number) => new Date(Math.floor(Date.now() / DAY_MS) * DAY_MS + offset * DAY_MS).toISOString();
    const partitions: { name: string; upper: number }[] = [];
    await setupClient.query(
      `CREATE TABLE sessions_part (LIKE sessions INCLUDING DEFAULTS INCLUDING CONSTRAINTS, PRIMARY KEY (id, connected_at),
         FOREIGN KEY (user_id) REFERENCES users (id), FOREIGN KEY (instance_id) REFERENCES instances (id)) PARTITION BY RANGE (connected_at)`,
    );
    for (let day = -(FILL_DAYS + 1); day <= 1; day++) {
      const partition = `sessions_part_d${day + FILL_DAYS + 1}`;
      partitions.push({ name: partition, upper: Date.parse(dayStart(day + 1)) });
      await setupClient.query(`CREATE TABLE ${partition} PARTITION OF sessions_part FOR VALUES FROM ('${dayStart(day)}') TO ('${dayStart(day + 1)}')`);
    }
    const rewrite = await timed('rewrite into the partitioned layout (copy, then the same indexes)', async () => {
      await setupClient.query('INSERT INTO sessions_part SELECT * FROM sessions');
      await setupClient.query(
        `CREATE INDEX ON sessions_part (instance_id) WHERE disconnected_at IS NULL;
         CREATE INDEX ON sessions_part (user_id) WHERE disconnected_at IS NULL;
         CREATE INDEX ON sessions_part (user_id, connected_at DESC);`,
      );
    });
    const vacuum = await timed('VACUUM ANALYZE (autovacuum may be off on a bench server)', () => setupClient.query('VACUUM ANALYZE'));
    const sizes = await setupClient.query<{ rel: string; bytes: string }>(
      `SELECT 'sessions' AS rel, pg_total_relation_size('sessions')::text AS bytes
       UNION ALL SELECT 'sessions_closed_by_time', pg_relation_size('sessions_closed_by_time')::text`,
    );

    const phases: Phase[] = [];
    const writerClient = await connect();
    const removerClient = await connect();
    const remover: Queryable = {
      async query<R>(text: string, params?: unknown[]) {
        return (await removerClient.query(text, params)).rows as R[];
      },
    };

    // (a) batched deletes: a baseline, then one removal window per batch size, each with an older cutoff.
    {
      const writer = startWriter(writerClient, 'sessions', writerInstance, options.rate);
      await sleep(1_000); // warm-up: the first statements plan and fill caches
      const baseFrom = performance.now();
      await sleep(options.seconds * 1000);
      phases.push({ phase: 'a) baseline, no removal', writer: window(writer.latencies, baseFrom, performance.now()), removed: 0, removalSeconds: 0, rowsPerSecond: 0, removalStatement: null });
      const cutoffs = options.batches.map((_, i) => Math.round(FILL_DAYS - ((i + 1) * (FILL_DAYS - 10)) / (options.batches.length + 1)));
      for (const [i, batch] of options.batches.entries()) {
        if (aborted) break;
        const retentionMs = (cutoffs[i] ?? 20) * DAY_MS;
        log(`(a) batches of ${batch}: removing sessions closed over ${cutoffs[i]} days ago`);
        const statements: number[] = [];
        let removed = 0;
        const from = performance.now();
        const deadline = from + options.maxSeconds * 1000;
        if (options.unpaced) {
          while (!aborted && performance.now() < deadline) {
            const started = performance.now();
            const result = await removeExpiredSessions(remover, retentionMs, batch);
            statements.push(performance.now() - started);
            removed += result.sessions;
            if (result.sessions < batch) break;
          }
        } else {
          // Pulse's own pass: paced batches, then the orphan users.
          const timedRemover: Queryable = {
            async query<R>(text: string, params?: unknown[]) {
              const started = performance.now();
              const rows = await remover.query<R>(text, params);
              if (text.includes('DELETE FROM sessions')) statements.push(performance.now() - started);
              return rows;
            },
          };
          const retention = new SessionRetention({ retentionMs, metrics: { sessionsRemoved: () => undefined, usersRemoved: () => undefined }, log: silent, batchSize: batch });
          removed = (await retention.pass(timedRemover)).sessions;
        }
        const to = performance.now();
        const seconds = (to - from) / 1000;
        phases.push({
          phase: `a) batched delete, ${batch} rows per statement${options.unpaced ? ', back to back' : ', paced (Pulse)'}`,
          writer: window(writer.latencies, from, to),
          removed,
          removalSeconds: round(seconds, 1),
          rowsPerSecond: Math.round(removed / seconds),
          removalStatement: statementSummary(statements),
        });
        log(`  ${removed.toLocaleString('en-US')} rows in ${round(seconds, 1)} s`);
        await sleep(1_000);
      }
      await writer.stop();
    }

    // (b) partitions: a baseline on the partitioned table, then the partitions wholly older than 20
    // days (their sessions all closed: each lasts at most an hour) dropped one by one, 200 ms apart.
    {
      const writer = startWriter(writerClient, 'sessions_part', writerInstance, options.rate);
      await sleep(1_000);
      const baseFrom = performance.now();
      await sleep(options.seconds * 1000);
      phases.push({ phase: 'b) baseline on the partitioned table', writer: window(writer.latencies, baseFrom, performance.now()), removed: 0, removalSeconds: 0, rowsPerSecond: 0, removalStatement: null });
      const cutoff = Date.now() - 20 * DAY_MS - DAY_MS;
      const old = partitions.filter((p) => p.upper <= cutoff);
      const halves = [
        { label: 'DROP TABLE', items: old.slice(0, Math.ceil(old.length / 2)), concurrently: false },
        { label: 'DETACH CONCURRENTLY + DROP', items: old.slice(Math.ceil(old.length / 2)), concurrently: true },
      ];
      for (const half of halves) {
        if (aborted || half.items.length === 0) continue;
        log(`(b) ${half.label}: ${half.items.length} partitions`);
        const statements: number[] = [];
        let removed = 0;
        let busy = 0;
        const from = performance.now();
        for (const partition of half.items) {
          if (aborted) break;
          removed += await count(removerClient, `SELECT count(*) AS n FROM ${partition.name}`);
          const started = performance.now();
          if (half.concurrently) await removerClient.query(`ALTER TABLE sessions_part DETACH PARTITION ${partition.name} CONCURRENTLY`);
          await removerClient.query(`DROP TABLE ${partition.name}`);
          const ms = performance.now() - started;
          statements.push(ms);
          busy += ms;
          await sleep(200);
        }
        const to = performance.now();
        phases.push({
          phase: `b) drop partitions: ${half.label}`,
          writer: window(writer.latencies, from, to),
          removed,
          removalSeconds: round(busy / 1000, 2),
          rowsPerSecond: Math.round(removed / (busy / 1000)),
          removalStatement: statementSummary(statements),
        });
      }
      await writer.stop();
    }

    const remaining = await count(setupClient, `SELECT count(*) AS n FROM sessions WHERE disconnected_at IS NULL`);
    return {
      scenario: 'retention',
      startedAt,
      finishedAt: new Date().toISOString(),
      options: { rows: options.rows, seconds: options.seconds, batches: options.batches, rate: options.rate, maxSeconds: options.maxSeconds, unpaced: options.unpaced },
      machine: machine(),
      source: source(),
      server,
      setup: {
        fillSeconds: fill.seconds,
        migration002IndexSeconds: migration002.seconds,
        partitionedRewriteSeconds: rewrite.seconds,
        vacuumAnalyzeSeconds: vacuum.seconds,
        sessionsBytes: Number(sizes.rows[0]?.bytes ?? 0),
        retentionIndexBytes: Number(sizes.rows[1]?.bytes ?? 0),
      },
      writerOpenSessionsLeft: remaining,
      phases,
    };
  } finally {
    for (const client of clients) await client.end().catch(() => undefined);
    await database.drop().catch((err: Error) => log(`could not drop ${database.name}: ${err.message}`));
  }
}

async function main(argv: string[]): Promise<number> {
  const args = parseArgs(argv);
  const batches = stringOption(args, 'batches', '1000,2000,5000')
    .split(',')
    .map((b) => Number(b.trim()));
  if (batches.length === 0 || batches.length > 4 || batches.some((b) => !Number.isInteger(b) || b < 1 || b > 100_000)) {
    throw new Error('--batches: 1 to 4 integers between 1 and 100,000, comma-separated');
  }
  const options: Options = {
    rows: intOption(args, 'rows', 3_000_000, 10_000, 20_000_000),
    seconds: intOption(args, 'seconds', 8, 1, 120),
    batches,
    rate: intOption(args, 'rate', 50, 1, 1_000),
    maxSeconds: intOption(args, 'max-seconds', 90, 1, 600),
    unpaced: args.options.has('unpaced'),
    pgAdminUrl: stringOption(args, 'pg-url', defaultPgAdminUrl()),
  };
  process.once('SIGINT', () => {
    aborted = true;
    log('interrupted: finishing the current statement, then dropping the bench database');
  });
  const report = await run(options);
  const s = report.setup;
  console.log(`\n== retention == ${JSON.stringify(report.options)}`);
  console.log(
    table(
      ['setup', 'value'],
      [
        ['fill (users + closed sessions), s', s.fillSeconds],
        ['migration 002: CREATE INDEX on the filled table, s', s.migration002IndexSeconds],
        ['rewrite into the partitioned layout (copy + indexes), s', s.partitionedRewriteSeconds],
        ['VACUUM ANALYZE, s', s.vacuumAnalyzeSeconds],
        ['sessions table with its indexes, MB', round(s.sessionsBytes / 2 ** 20, 0)],
        ['sessions_closed_by_time index, MB', round(s.retentionIndexBytes / 2 ** 20, 0)],
      ],
    ),
  );
  console.log('');
  console.log(
    table(
      ['phase', 'writer stmts', 'p50 ms', 'p99 ms', 'max ms', 'rows removed', 'removal s', 'rows/s', 'removal stmt p50/p99/max ms'],
      report.phases.map((p): Cell[] => [
        p.phase,
        p.writer.statements,
        p.writer.p50,
        p.writer.p99,
        p.writer.max,
        p.removed,
        p.removalSeconds,
        p.rowsPerSecond,
        p.removalStatement ? `${p.removalStatement.p50} / ${p.removalStatement.p99} / ${p.removalStatement.max}` : '',
      ]),
    ),
  );
  console.log(`server: PostgreSQL ${report.server.server_version}, shared_buffers ${report.server.shared_buffers} × 8 kB, autovacuum ${report.server.autovacuum}`);
  console.log(`machine: ${report.machine.cpus} cpus, load average ${report.machine.loadAverage.join(' ')} (1/5/15 min, at the end)`);
  console.log(`saved ${saveReport(report)}`);
  console.log(JSON.stringify(report));
  return aborted ? 130 : 0;
}

runAsScript(import.meta.url, 'bench retention', 30, main);
