// Small helpers shared by the bench: arguments, statistics, tables, ports, /proc readings.
import { readFileSync, readdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The promise's value, or undefined after `ms`. The timer is cleared once the promise settles, so
 * that a finished wait does not keep the process (a test file) alive until it would have fired.
 */
export function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeUp = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)));
  return Promise.race([promise, timeUp]).finally(() => clearTimeout(timer));
}

/** `--key value`, `--key=value` and bare `--flag` (true); positionals apart. */
export interface ParsedArgs {
  positionals: string[];
  options: Map<string, string | true>;
}

export function parseArgs(argv: readonly string[]): ParsedArgs {
  const positionals: string[] = [];
  const options = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (!arg.startsWith('--')) {
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    if (eq > 0) {
      options.set(arg.slice(2, eq), arg.slice(eq + 1));
      continue;
    }
    const next = argv[i + 1];
    if (next !== undefined && !next.startsWith('--')) {
      options.set(arg.slice(2), next);
      i++;
    } else {
      options.set(arg.slice(2), true);
    }
  }
  return { positionals, options };
}

export function intOption(args: ParsedArgs, name: string, fallback: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const raw = args.options.get(name);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (raw === true || !Number.isInteger(value) || value < min || value > max) {
    throw new Error(`--${name} must be an integer between ${min} and ${max}, got ${String(raw)}`);
  }
  return value;
}

export function stringOption(args: ParsedArgs, name: string, fallback: string): string {
  const raw = args.options.get(name);
  if (raw === undefined) return fallback;
  if (raw === true) throw new Error(`--${name} needs a value`);
  return raw;
}

/** Percentile by nearest rank of an already sorted array; NaN when empty. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] ?? Number.NaN;
}

export interface Summary {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

export function summarize(values: ArrayLike<number>): Summary {
  const sorted = Float64Array.from(values).sort();
  let sum = 0;
  for (const v of sorted) sum += v;
  return {
    count: sorted.length,
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    max: sorted.length ? (sorted[sorted.length - 1] ?? Number.NaN) : Number.NaN,
    mean: sorted.length ? sum / sorted.length : Number.NaN,
  };
}

export function round(value: number, digits = 2): number {
  if (!Number.isFinite(value)) return value;
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/** A free TCP port on 127.0.0.1 (the OS picks; a tiny race with other processes is accepted). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Loopback source addresses 127.0.0.2 … for the load generator (each gives ~28k ephemeral ports). */
export function loopbackSources(count: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < count; i++) out.push(`127.0.${Math.floor((i + 2) / 256)}.${(i + 2) % 256}`);
  return out;
}

// ---- /proc readings: resident memory and CPU time of a process and all its descendants ----

const CLOCK_TICKS_PER_SECOND = 100; // getconf CLK_TCK on Linux x86-64/arm64

function readStat(pid: number): { ppid: number; cpuTicks: number; reapedChildrenTicks: number } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name is in parentheses and may contain spaces: split after the last ')'.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state); ppid is field 4, utime 14, stime 15, cutime 16, cstime 17.
    return {
      ppid: Number(fields[1]),
      cpuTicks: Number(fields[11]) + Number(fields[12]),
      reapedChildrenTicks: Number(fields[13]) + Number(fields[14]),
    };
  } catch {
    return undefined;
  }
}

function readRssKiB(pid: number): number {
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match?.[1] ? Number(match[1]) : 0;
  } catch {
    return 0;
  }
}

/** pid and every descendant (node:cluster workers, helper processes). */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readStat(Number(entry));
    if (!stat) continue;
    const list = children.get(stat.ppid) ?? [];
    list.push(Number(entry));
    children.set(stat.ppid, list);
  }
  const out: number[] = [];
  const queue = [root];
  while (queue.length > 0 && out.length < 10_000) {
    const pid = queue.shift() as number;
    out.push(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return out;
}

export interface TreeSample {
  at: number;
  pids: number;
  /** Command names of the processes counted. */
  names: string[];
  rssKiB: number;
  cpuSeconds: number;
}

export function sampleTree(root: number): TreeSample {
  let rssKiB = 0;
  let ticks = 0;
  const pids = processTree(root);
  const names: string[] = [];
  for (const pid of pids) {
    let name = '?';
    try {
      name = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
    } catch {
      // gone
    }
    // tsx's esbuild service (the reference runs under `node --import tsx`) is not the server.
    if (name === 'esbuild') continue;
    names.push(name);
    rssKiB += readRssKiB(pid);
    ticks += readStat(pid)?.cpuTicks ?? 0;
  }
  return { at: Date.now(), pids: names.length, names, rssKiB, cpuSeconds: ticks / CLOCK_TICKS_PER_SECOND };
}

/**
 * CPU seconds used so far by every process with this command name (e.g. all `postgres` backends),
 * plus what their exited children used: a backend that ends during a run is counted through its
 * parent's cutime/cstime, so a difference of two readings never loses it.
 */
export function cpuSecondsOfCommand(command: string): number {
  const named = new Map<number, NonNullable<ReturnType<typeof readStat>>>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() !== command) continue;
    } catch {
      continue;
    }
    const stat = readStat(Number(entry));
    if (stat) named.set(Number(entry), stat);
  }
  let ticks = 0;
  for (const stat of named.values()) {
    ticks += stat.cpuTicks;
    // Only the top of each tree: a parent's cutime already holds its reaped children.
    if (!named.has(stat.ppid)) ticks += stat.reapedChildrenTicks;
  }
  return ticks / CLOCK_TICKS_PER_SECOND;
}

/** utime + stime of one process so far, in seconds; undefined when it is gone (or not on this machine). */
export function processCpuSeconds(pid: number): number | undefined {
  const stat = readStat(pid);
  return stat ? stat.cpuTicks / CLOCK_TICKS_PER_SECOND : undefined;
}

/** Busy and total CPU time of the whole machine so far, in clock ticks (from /proc/stat). */
export function machineCpuTicks(): { busy: number; total: number } {
  try {
    const fields = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/).slice(1).map(Number);
    const total = fields.reduce((sum, v) => sum + (Number.isFinite(v) ? v : 0), 0);
    // idle and iowait are fields 4 and 5 of the cpu line.
    return { busy: total - (fields[3] ?? 0) - (fields[4] ?? 0), total };
  } catch {
    return { busy: 0, total: 0 };
  }
}

/** CPU use between two samples, in percent of one core (200 = both cores of this machine). */
export function cpuPercent(before: TreeSample, after: TreeSample): number {
  const wall = (after.at - before.at) / 1000;
  return wall > 0 ? (100 * (after.cpuSeconds - before.cpuSeconds)) / wall : Number.NaN;
}

// ---- output ----

export type Cell = string | number | boolean | null | undefined;

function formatCell(value: Cell): string {
  if (value === null || value === undefined) return '-';
  if (typeof value === 'number') {
    if (Number.isNaN(value)) return '-';
    if (Number.isInteger(value)) return value.toLocaleString('en-US');
    return Math.abs(value) >= 100 ? value.toFixed(0) : Math.abs(value) >= 10 ? value.toFixed(1) : value.toFixed(2);
  }
  return String(value);
}

/** Plain-text table, first column left-aligned, others right-aligned. */
export function table(header: string[], rows: Cell[][]): string {
  const cells = [header, ...rows.map((row) => row.map(formatCell))];
  const widths = header.map((_, c) => Math.max(...cells.map((row) => (row[c] ?? '').length)));
  const line = (row: string[]) =>
    row.map((cell, c) => (c === 0 ? cell.padEnd(widths[c] ?? 0) : cell.padStart(widths[c] ?? 0))).join('  ');
  return [line(cells[0] ?? []), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line)].join('\n');
}

/** pulse / reference, rounded; null when either is missing or the reference is 0. */
export function ratio(pulse: number | undefined, reference: number | undefined): number | null {
  if (pulse === undefined || reference === undefined || !Number.isFinite(pulse) || !Number.isFinite(reference) || reference === 0) {
    return null;
  }
  return round(pulse / reference, 2);
}

/**
 * Runs a bench's main when its file is the script node was started with, and exits with its code.
 * Every run stops by itself: `ceilingMinutes` is a hard limit far above the bench's own bounds.
 */
export function runAsScript(moduleUrl: string, name: string, ceilingMinutes: number, main: (argv: string[]) => Promise<number>): void {
  if (!process.argv[1] || fileURLToPath(moduleUrl) !== process.argv[1]) return;
  const ceiling = setTimeout(() => {
    console.error(`${name}: hard time limit reached, exiting`);
    process.exit(3);
  }, ceilingMinutes * 60_000);
  ceiling.unref();
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error: unknown) => {
      console.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
      process.exit(1);
    },
  );
}
