// npm run bench -- <scenario> [options]
//
// Scenarios (each runs Pulse, then the bare-ws reference, with the same clients and processes):
//   ticks  --clients N (1000) --seconds S (10) [--workers W] [--db pg|pglite] [--loadgen-procs P] [--connect-rate R]
//   fib    --clients N (100) --seconds S (10) [--large-seconds S] [--db pg|pglite]
//   churn  --workers W (4) --seconds S (10)                       PostgreSQL only
//   presence-scale --instances K (8) --sessions N (5000) --rates R1,R2,… --seconds S (8) --warmup S (2) [--label L] [--no-analyze]
//                                                                 PostgreSQL only, no reference
//   deploy --clients N (1000) --instances K (3) [--grace-ms G (3000)] [--observers M (2)] [--connect-rate R (500)] [--loadgen-procs P]
//                                                                 a rolling restart behind a balancer; PostgreSQL
//   chart | summary                                               bench/results/*.json → ticks.svg and RESULTS.md
//   smoke  (or any scenario with --smoke): tiny sizes, checks correctness; exit 1 when a check fails
// Common: --servers pulse,reference  --pg-url postgres://…/postgres (admin URL; a bench database is
//         created and dropped)  --no-build (run dist/ as it is)  --strict (exit 1 when a check fails)
//
// Prints a table per scenario and, as the very last line, one line of JSON; writes
// bench/results/<scenario>-<timestamp>.json.
import { writeChart, writeSweepChart } from './chart.js';
import { writeSummary } from './summary.js';
import { renderTable, saveReport, type Metrics, type Row, type ScenarioReport } from './lib/report.js';
import { defaultPgAdminUrl, type DbKind, type ServerKind } from './lib/servers.js';
import { intOption, parseArgs, runAsScript, stringOption, table, type Cell, type ParsedArgs } from './lib/util.js';
import { CHURN_ROWS, runChurn } from './scenarios/churn.js';
import { DEPLOY_ROWS, deploySmokeOptions, runDeploy } from './scenarios/deploy.js';
import { FIB_ROWS, runFib } from './scenarios/fib.js';
import { PRESENCE_SCALE_ROWS, runPresenceScale, stepColumns } from './scenarios/presence-scale.js';
import { runTicks, TICKS_ROWS } from './scenarios/ticks.js';

const log = (line: string): void => console.error(line);

function commonOptions(args: ParsedArgs): { servers: ServerKind[]; pgAdminUrl: string; db: DbKind } {
  const servers = stringOption(args, 'servers', 'pulse,reference')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const s of servers) if (s !== 'pulse' && s !== 'reference') throw new Error(`--servers: unknown server ${s}`);
  const db = stringOption(args, 'db', 'pg');
  if (db !== 'pg' && db !== 'pglite') throw new Error('--db must be pg or pglite');
  return { servers: servers as ServerKind[], pgAdminUrl: stringOption(args, 'pg-url', defaultPgAdminUrl()), db };
}

/** A PostgreSQL admin URL when the environment names one (for smoke: churn needs it). */
export function smokePgUrl(): string | undefined {
  return process.env.TEST_DATABASE_URL ?? process.env.DATABASE_URL ?? process.env.BENCH_PG_URL;
}

export interface SmokeResult {
  reports: ScenarioReport[];
  skipped: string[];
}

/** The CI-sized run of all three scenarios; churn only when a PostgreSQL URL is given. */
export async function runSmoke(pgUrl = smokePgUrl(), only?: string): Promise<SmokeResult> {
  const reports: ScenarioReport[] = [];
  const skipped: string[] = [];
  const db: DbKind = pgUrl ? 'pg' : 'pglite';
  const pgAdminUrl = pgUrl ?? defaultPgAdminUrl();
  const servers: ServerKind[] = ['pulse', 'reference'];
  if (!only || only === 'ticks') {
    reports.push(await runTicks({ clients: 50, seconds: 3, workers: 1, db, pgAdminUrl, servers, connectRate: 500, log }));
  }
  if (!only || only === 'fib') {
    reports.push(await runFib({ clients: 10, seconds: 2, largeSeconds: 2, largeCount: 3, db, pgAdminUrl, servers, log }));
  }
  if (!only || only === 'churn') {
    if (pgUrl) reports.push(await runChurn({ loops: 2, seconds: 2, pgAdminUrl, servers, log }));
    else skipped.push('churn: skipped (no TEST_DATABASE_URL / DATABASE_URL: churn needs PostgreSQL)');
  }
  if (!only || only === 'presence-scale') {
    if (pgUrl) reports.push(await runPresenceScale(PRESENCE_SCALE_SMOKE(pgAdminUrl)));
    else skipped.push('presence-scale: skipped (no TEST_DATABASE_URL / DATABASE_URL: it needs PostgreSQL)');
  }
  if (!only || only === 'deploy') {
    if (pgUrl) reports.push(await runDeploy(deploySmokeOptions(pgAdminUrl, log)));
    else skipped.push('deploy: skipped (no TEST_DATABASE_URL / DATABASE_URL: it needs PostgreSQL)');
  }
  return { reports, skipped };
}

/** presence-scale at CI size: 2 instances, one slow step; correctness only. */
const PRESENCE_SCALE_SMOKE = (pgAdminUrl: string) => ({
  instances: 2,
  sessions: 100,
  rates: [400],
  seconds: 2,
  warmupSeconds: 1,
  pgAdminUrl,
  log,
});

const ROWS: Record<string, Row[]> = { ticks: TICKS_ROWS, fib: FIB_ROWS, churn: CHURN_ROWS, 'presence-scale': PRESENCE_SCALE_ROWS, deploy: DEPLOY_ROWS };

/** A sweep's steps, one line each (presence-scale). */
function renderSteps(steps: Metrics[]): string {
  const columns = stepColumns();
  return table(
    columns.map(([label]) => label),
    steps.map((step) => columns.map(([, key]): Cell => {
      const value = step[key];
      return typeof value === 'object' && value !== null ? JSON.stringify(value) : value;
    })),
  );
}

function print(report: ScenarioReport, save: boolean): void {
  console.log(`\n== ${report.scenario} == ${JSON.stringify(report.options)}`);
  if (report.steps) console.log(`${renderSteps(report.steps)}\n`);
  console.log(renderTable(report, ROWS[report.scenario] ?? []));
  // Smoke runs check correctness only: their figures are not results worth keeping.
  if (save) console.log(`saved ${saveReport(report)}`);
}

const SMOKE_SCENARIOS = new Set(['smoke', 'ticks', 'fib', 'churn', 'presence-scale', 'deploy']);

async function main(argv: string[]): Promise<number> {
  const args = parseArgs(argv);
  if (args.options.has('no-build')) process.env.BENCH_NO_BUILD = '1';
  const scenario = args.positionals[0] ?? (args.options.has('smoke') ? 'smoke' : undefined);
  const strict = args.options.has('strict') || args.options.has('smoke') || scenario === 'smoke';
  let reports: ScenarioReport[] = [];
  const smoke = scenario === 'smoke' || args.options.has('smoke');
  // `smoke`, or any scenario with --smoke: the CI sizes of that scenario (or of all of them).
  if (smoke && scenario !== undefined && SMOKE_SCENARIOS.has(scenario)) {
    const result = await runSmoke(smokePgUrl(), scenario === 'smoke' ? undefined : scenario);
    for (const line of result.skipped) console.log(line);
    return finish(scenario, result.reports, { skipped: result.skipped }, smoke, strict);
  }
  switch (scenario) {
    case 'ticks':
    case 'fib':
    case 'churn': {
      const common = commonOptions(args);
      if (scenario === 'ticks') {
        reports = [
          await runTicks({
            ...common,
            clients: intOption(args, 'clients', 1000, 1, 200_000),
            seconds: intOption(args, 'seconds', 10, 1, 600),
            workers: intOption(args, 'workers', 1, 1, 64),
            loadgenProcesses: args.options.has('loadgen-procs') ? intOption(args, 'loadgen-procs', 1, 1, 32) : undefined,
            connectRate: intOption(args, 'connect-rate', 2500, 1, 100_000),
            log,
          }),
        ];
      } else if (scenario === 'fib') {
        reports = [
          await runFib({
            ...common,
            clients: intOption(args, 'clients', 100, 1, 10_000),
            seconds: intOption(args, 'seconds', 10, 1, 600),
            largeSeconds: intOption(args, 'large-seconds', 10, 1, 600),
            largeCount: intOption(args, 'large-count', 10, 1, 100),
            log,
          }),
        ];
      } else {
        if (common.db !== 'pg') throw new Error('churn needs PostgreSQL (--db pg)');
        reports = [
          await runChurn({
            ...common,
            loops: intOption(args, 'workers', 4, 1, 1000),
            seconds: intOption(args, 'seconds', 10, 1, 600),
            log,
          }),
        ];
      }
      break;
    }
    case 'presence-scale': {
      const rates = stringOption(args, 'rates', '2000,5000,10000,15000,20000,25000,30000,40000,50000')
        .split(',')
        .map((r) => Number(r.trim()));
      if (rates.length === 0 || rates.length > 30 || rates.some((r) => !Number.isInteger(r) || r < 2 || r > 1_000_000)) {
        throw new Error('--rates: 1 to 30 integers between 2 and 1,000,000, comma-separated');
      }
      reports = [
        await runPresenceScale({
          instances: intOption(args, 'instances', 8, 2, 32),
          sessions: intOption(args, 'sessions', 5000, 10, 100_000),
          rates,
          seconds: intOption(args, 'seconds', 8, 1, 120),
          warmupSeconds: intOption(args, 'warmup', 2, 0, 60),
          maxMinutes: intOption(args, 'max-minutes', 20, 1, 40),
          label: args.options.has('label') ? stringOption(args, 'label', '') : undefined,
          analyze: !args.options.has('no-analyze'),
          pgAdminUrl: stringOption(args, 'pg-url', defaultPgAdminUrl()),
          log,
        }),
      ];
      break;
    }
    case 'deploy': {
      const common = commonOptions(args);
      if (common.db !== 'pg') throw new Error('deploy needs PostgreSQL (--db pg)');
      reports = [
        await runDeploy({
          clients: intOption(args, 'clients', 1000, 1, 20_000),
          instances: intOption(args, 'instances', 3, 1, 16),
          graceMs: intOption(args, 'grace-ms', 3000, 0, 600_000),
          observers: intOption(args, 'observers', 2, 0, 100),
          connectRate: intOption(args, 'connect-rate', 500, 1, 100_000),
          loadgenProcesses: args.options.has('loadgen-procs') ? intOption(args, 'loadgen-procs', 1, 1, 32) : undefined,
          pgAdminUrl: common.pgAdminUrl,
          servers: common.servers,
          log,
        }),
      ];
      break;
    }
    case 'chart':
    case 'summary': {
      const chart = writeChart();
      const sweepChart = writeSweepChart();
      const summary = writeSummary(ROWS);
      console.log(`wrote ${chart}\nwrote ${sweepChart}\nwrote ${summary}`);
      console.log(JSON.stringify({ scenario, chart, sweepChart, summary }));
      return 0;
    }
    default:
      console.error('usage: npm run bench -- ticks|fib|churn|presence-scale|deploy|smoke|chart|summary [options]   (see bench/README.md)');
      return 2;
  }
  return finish(scenario, reports, {}, smoke, strict);
}

/** Prints every report, then one line of JSON as the very last line; the exit code. */
function finish(scenario: string, reports: ScenarioReport[], extra: Record<string, unknown>, smoke: boolean, strict: boolean): number {
  for (const report of reports) print(report, !smoke);
  const ok = reports.every((r) => r.checks.ok);
  // The last line: one line of JSON, nothing before it on the line.
  const summary = reports.length === 1 && !extra.skipped ? reports[0] : { scenario, ok, reports, ...extra };
  console.log(JSON.stringify(summary));
  return strict && !ok ? 1 : 0;
}

runAsScript(import.meta.url, 'bench', 45, main);
