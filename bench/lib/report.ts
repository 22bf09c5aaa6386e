// The shape every scenario returns, and how it is printed and saved.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import type { ServerKind } from './servers.js';
import { REPO_ROOT } from './servers.js';
import { ratio, table, type Cell } from './util.js';

export type Metrics = Record<string, number | string | boolean | null | Record<string, number>>;

export interface ScenarioReport {
  scenario: string;
  startedAt: string;
  finishedAt: string;
  options: Record<string, unknown>;
  /** loadAverage: 1, 5 and 15 min at the end of the run (the machine is shared: > cpus means contention). */
  machine: { cpus: number; model: string; memGiB: number; node: string; loadAverage: number[] };
  /** The commit the run was made on, and whether src/ had uncommitted changes. */
  source?: { commit: string; srcDirty: boolean };
  servers: Partial<Record<ServerKind, Metrics>>;
  /** pulse / reference for the main figures. */
  ratios: Record<string, number | null>;
  /** Correctness, not speed: what the smoke test asserts. */
  checks: { ok: boolean; failures: string[] };
  /** Anything measured differently or not at all, in words. */
  notes: string[];
  /** A sweep's steps, one set of figures each (presence-scale). */
  steps?: Metrics[];
}

export interface Row {
  label: string;
  key: string;
  /** Include in `ratios` under this key. */
  ratio?: boolean;
}

export function machine(): ScenarioReport['machine'] {
  return {
    cpus: cpus().length,
    model: cpus()[0]?.model ?? 'unknown',
    memGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    loadAverage: loadavg().map((v) => Math.round(v * 100) / 100),
  };
}

export function source(): ScenarioReport['source'] {
  try {
    const git = (...args: string[]): string => execFileSync('git', args, { cwd: REPO_ROOT, encoding: 'utf8', timeout: 10_000 }).trim();
    return { commit: git('rev-parse', '--short', 'HEAD'), srcDirty: git('status', '--porcelain', '--', 'src').length > 0 };
  } catch {
    return undefined;
  }
}

/** The envelope every scenario returns: options without the logger or the admin URL, machine, source, ratios, checks. */
export function buildReport<Options extends { log?: unknown }>(
  scenario: string,
  startedAt: string,
  options: Options,
  servers: ScenarioReport['servers'],
  rows: Row[],
  failures: string[],
  notes: string[],
): ScenarioReport {
  const { log: _log, ...shown } = options;
  return {
    scenario,
    startedAt,
    finishedAt: new Date().toISOString(),
    options: { ...shown, pgAdminUrl: undefined },
    machine: machine(),
    source: source(),
    servers,
    ratios: computeRatios(servers, rows),
    checks: { ok: failures.length === 0, failures },
    notes,
  };
}

export function computeRatios(servers: ScenarioReport['servers'], rows: Row[]): Record<string, number | null> {
  const out: Record<string, number | null> = {};
  for (const row of rows) {
    if (!row.ratio) continue;
    const p = servers.pulse?.[row.key];
    const r = servers.reference?.[row.key];
    out[row.key] = ratio(typeof p === 'number' ? p : undefined, typeof r === 'number' ? r : undefined);
  }
  return out;
}

export function renderTable(report: ScenarioReport, rows: Row[]): string {
  const kinds = (['pulse', 'reference'] as const).filter((k) => report.servers[k]);
  const header = ['metric', ...kinds, ...(kinds.length === 2 ? ['pulse/ref'] : [])];
  const body: Cell[][] = rows.map((row) => {
    const cells: Cell[] = [row.label];
    for (const kind of kinds) {
      const value = report.servers[kind]?.[row.key];
      cells.push(typeof value === 'object' && value !== null ? JSON.stringify(value) : value);
    }
    if (kinds.length === 2) cells.push(row.ratio ? report.ratios[row.key] : '');
    return cells;
  });
  const lines = [table(header, body)];
  for (const note of report.notes) lines.push(`note: ${note}`);
  lines.push(`machine: ${report.machine.cpus} cpus, load average ${report.machine.loadAverage.join(' ')} (1/5/15 min, at the end)`);
  lines.push(report.checks.ok ? 'checks: ok' : `checks: FAILED\n  ${report.checks.failures.join('\n  ')}`);
  return lines.join('\n');
}

export const RESULTS_DIR = join(REPO_ROOT, 'bench/results');

/** Every saved report of these scenarios in `dir` (a file that does not parse is skipped); none when `dir` is missing. */
export function readReports(scenarios: readonly string[], dir = RESULTS_DIR): ScenarioReport[] {
  let files: string[];
  try {
    files = readdirSync(dir);
  } catch {
    return [];
  }
  const reports: ScenarioReport[] = [];
  for (const file of files) {
    if (!scenarios.some((scenario) => file.startsWith(`${scenario}-`) && file.endsWith('.json'))) continue;
    try {
      reports.push(JSON.parse(readFileSync(join(dir, file), 'utf8')) as ScenarioReport);
    } catch {
      // not a report
    }
  }
  return reports;
}

/** bench/results/<scenario>-<timestamp>.json; returns the path. */
export function saveReport(report: Pick<ScenarioReport, 'scenario' | 'startedAt'>): string {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const stamp = report.startedAt.replace(/[:.]/g, '-');
  const path = join(RESULTS_DIR, `${report.scenario}-${stamp}.json`);
  writeFileSync(path, `${JSON.stringify(report, null, 2)}\n`);
  return path;
}

/** The same table as renderTable, as Markdown. */
export function renderMarkdown(report: ScenarioReport, rows: Row[]): string {
  const kinds = (['pulse', 'reference'] as const).filter((k) => report.servers[k]);
  const both = kinds.length === 2;
  const show = (value: unknown): string => {
    if (value === null || value === undefined || (typeof value === 'number' && Number.isNaN(value))) return '–';
    if (typeof value === 'number') return Number.isInteger(value) ? value.toLocaleString('en-US') : String(value);
    if (typeof value === 'object') return `\`${JSON.stringify(value)}\``;
    return String(value);
  };
  const lines = [
    `| metric | ${kinds.join(' | ')}${both ? ' | pulse/ref' : ''} |`,
    `| --- | ${kinds.map(() => '---:').join(' | ')}${both ? ' | ---:' : ''} |`,
  ];
  for (const row of rows) {
    const cells = kinds.map((k) => show(report.servers[k]?.[row.key]));
    if (cells.every((c) => c === '–')) continue;
    lines.push(`| ${row.label} | ${cells.join(' | ')}${both ? ` | ${row.ratio ? show(report.ratios[row.key]) : ''}` : ''} |`);
  }
  return lines.join('\n');
}
