// Starting and stopping the two servers under test, and the PostgreSQL database Pulse uses.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { freePort, sleep, withTimeout } from './util.js';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const PULSE_ENTRY = join(REPO_ROOT, 'dist/src/main.js');
const REFERENCE_ENTRY = join(REPO_ROOT, 'bench/reference-server.ts');

export type ServerKind = 'pulse' | 'reference';
export type DbKind = 'pg' | 'pglite';

export interface ServerOptions {
  workers: number;
  db: DbKind;
  /** PostgreSQL URL of a database to connect to as administrator (to create the bench database). */
  pgAdminUrl: string;
  /** Extra environment for Pulse. */
  env?: Record<string, string>;
}

export interface RunningServer {
  kind: ServerKind;
  pid: number;
  port: number;
  httpUrl: string;
  wsUrl: string;
  /** PostgreSQL URL of Pulse's database (pg only). */
  databaseUrl?: string;
  /** Last lines the server wrote to stdout/stderr (for failure reports). */
  output(): string;
  stop(): Promise<void>;
}

export function defaultPgAdminUrl(): string {
  return process.env.BENCH_PG_URL ?? process.env.TEST_DATABASE_URL ?? process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
}

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs);
  }
  return newest;
}

/** `npm run build` when dist/src/main.js is missing or older than anything in src/ (unless BENCH_NO_BUILD=1). */
export function ensurePulseBuilt(log: (line: string) => void = console.error): void {
  const built = existsSync(PULSE_ENTRY) ? statSync(PULSE_ENTRY).mtimeMs : 0;
  // BENCH_NO_BUILD=1 (or --no-build): run dist/ as it is.
  if (process.env.BENCH_NO_BUILD === '1' && built > 0) return;
  if (built > 0 && built >= newestMtime(join(REPO_ROOT, 'src'))) return;
  log('bench: building Pulse (npm run build)…');
  const result = spawnSync('npm', ['run', 'build', '--silent'], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'], timeout: 300_000 });
  if (result.status !== 0) {
    throw new Error(`npm run build failed (${result.status}):\n${String(result.stdout)}${String(result.stderr)}`.slice(0, 4000));
  }
  if (!existsSync(PULSE_ENTRY)) throw new Error(`npm run build produced no ${PULSE_ENTRY}`);
}

/** A fresh, uniquely named database on the server of adminUrl; drop() removes it. */
export async function createBenchDatabase(adminUrl: string): Promise<{ url: string; name: string; drop(): Promise<void> }> {
  const name = `pulse_bench_${Date.now()}_${randomBytes(3).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 5000 });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE "${name}"`);
  } finally {
    await admin.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const drop = async (): Promise<void> => {
    pendingDrops.delete(drop);
    const client = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 5000 });
    await client.connect();
    try {
      await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    } finally {
      await client.end();
    }
  };
  pendingDrops.add(drop);
  return { url: url.toString(), name, drop };
}

/** Bench databases not dropped yet: Ctrl-C drops them before the bench exits. */
const pendingDrops = new Set<() => Promise<void>>();

const live = new Set<ChildProcess>();
let exitHookInstalled = false;
function track(child: ChildProcess): void {
  live.add(child);
  child.once('exit', () => live.delete(child));
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const c of live) c.kill('SIGKILL');
    });
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      process.once(signal, () => {
        for (const c of live) c.kill('SIGTERM');
        // The bench databases go too (FORCE: servers still connected do not stop it), within 5 s.
        const drops = Promise.allSettled([...pendingDrops].map((drop) => drop()));
        void Promise.race([drops, sleep(5_000)]).finally(() => process.exit(130));
      });
    }
  }
}

async function waitReady(child: ChildProcess, httpUrl: string, timeoutMs: number, output: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`server exited (${child.exitCode ?? child.signalCode}) before ready:\n${output()}`);
    }
    try {
      const res = await fetch(`${httpUrl}/readyz`, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      if (res.status === 200) return;
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  child.kill('SIGKILL');
  throw new Error(`server not ready within ${timeoutMs} ms:\n${output()}`);
}

export async function startServer(kind: ServerKind, options: ServerOptions): Promise<RunningServer> {
  try {
    return await startServerOnce(kind, options);
  } catch (error) {
    // A machine shared with other test runs: one retry when the server was killed from outside
    // (a signal) before it was ready; a server that exits by itself fails at once.
    if (!(error instanceof Error && /exited \(SIG[A-Z]+\) before ready/.test(error.message))) throw error;
    console.error(`bench: ${kind} ${error.message.split('\n')[0] ?? ''}; retrying once`);
    return startServerOnce(kind, options);
  }
}

async function startServerOnce(kind: ServerKind, options: ServerOptions): Promise<RunningServer> {
  const port = await freePort();
  let database: Awaited<ReturnType<typeof createBenchDatabase>> | undefined;
  if (kind === 'pulse' && options.db === 'pg') database = await createBenchDatabase(options.pgAdminUrl);
  let instance: ServerInstance;
  try {
    instance = await startInstance(kind, { port, workers: options.workers, databaseUrl: database?.url, env: options.env });
  } catch (error) {
    await database?.drop().catch(() => undefined);
    throw error;
  }
  return {
    kind,
    pid: instance.pid,
    port,
    httpUrl: instance.httpUrl,
    wsUrl: instance.wsUrl,
    databaseUrl: database?.url,
    output: instance.output,
    async stop() {
      await instance.stop();
      await database?.drop().catch((error: unknown) => console.error(`bench: could not drop ${database?.name}: ${String(error)}`));
    },
  };
}

export interface InstanceOptions {
  port: number;
  workers: number;
  /** Pulse: PostgreSQL URL of its database; none: PGlite in memory. */
  databaseUrl?: string;
  /** Extra environment for Pulse. */
  env?: Record<string, string>;
}

/** One server process on a given port; the database (if any) belongs to the caller. */
export interface ServerInstance {
  pid: number;
  port: number;
  httpUrl: string;
  wsUrl: string;
  /** Resolves when the process has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal: NodeJS.Signals): void;
  output(): string;
  /** SIGTERM, SIGKILL after 15 s; resolves once it is gone. */
  stop(): Promise<void>;
}

/**
 * Starts one server on `port` and waits for /readyz: several Pulse instances can share one
 * database, and an instance can be started again on the port it had (a rolling deploy).
 */
export async function startInstance(kind: ServerKind, options: InstanceOptions): Promise<ServerInstance> {
  const { port } = options;
  let command: string[];
  const env: Record<string, string | undefined> = { ...process.env };
  delete env.NODE_OPTIONS;
  if (kind === 'pulse') {
    ensurePulseBuilt();
    Object.assign(env, {
      PORT: String(port),
      HOST: '127.0.0.1',
      // Pulse's default level, as an operator runs it (connections at debug, a summary each minute).
      LOG_LEVEL: process.env.BENCH_PULSE_LOG_LEVEL ?? 'info',
      RATE_LIMIT_PER_SECOND: '0',
      MAX_CONNECTIONS_PER_IP: '1000000',
      MAX_CONNECTIONS: '1000000',
      PULSE_WORKERS: String(options.workers),
      ...options.env,
    });
    delete env.DATABASE_URL;
    delete env.DATA_DIR;
    if (options.databaseUrl) env.DATABASE_URL = options.databaseUrl;
    else env.DATA_DIR = ':memory:';
    // BENCH_PULSE_NODE_ARGS, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof", reaches Pulse only.
    const nodeArgs = process.env.BENCH_PULSE_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
    command = [process.execPath, ...nodeArgs, PULSE_ENTRY];
  } else {
    command = [process.execPath, '--import', 'tsx', REFERENCE_ENTRY, '--port', String(port), '--workers', String(options.workers)];
  }

  const child = spawn(command[0] as string, command.slice(1), { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  track(child);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  let tail = '';
  const keep = (chunk: Buffer): void => {
    tail = (tail + chunk.toString()).slice(-8000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const httpUrl = `http://127.0.0.1:${port}`;
  await waitReady(child, httpUrl, kind === 'pulse' ? 60_000 : 30_000, () => tail);
  return {
    pid: child.pid ?? 0,
    port,
    httpUrl,
    wsUrl: `ws://127.0.0.1:${port}/ws`,
    exited,
    kill: (signal) => void child.kill(signal),
    output: () => tail,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      if (!(await withTimeout(exited, 15_000))) {
        child.kill('SIGKILL');
        await withTimeout(exited, 2000);
      }
    },
  };
}

/**
 * One number from Pulse's Prometheus text, or undefined (metric missing, server unreachable).
 * `selector` is the sample's name with its labels exactly as exported, e.g. `x{quantile="0.99"}`.
 */
export async function scrapeMetric(httpUrl: string, selector: string): Promise<number | undefined> {
  try {
    const res = await fetch(`${httpUrl}/metrics`, { signal: AbortSignal.timeout(3000) });
    const text = await res.text();
    for (const line of text.split('\n')) {
      if (line.startsWith(`${selector} `)) {
        const value = Number(line.slice(selector.length + 1).trim().split(' ')[0]);
        if (Number.isFinite(value)) return value;
      }
    }
  } catch {
    // no metrics endpoint
  }
  return undefined;
}

/**
 * A quantile estimated from a Prometheus histogram's cumulative buckets (summed over labels),
 * taking the upper bound of the bucket that holds it; undefined when the metric is missing.
 */
export async function scrapeHistogramQuantile(httpUrl: string, name: string, q: number): Promise<number | undefined> {
  let text: string;
  try {
    const res = await fetch(`${httpUrl}/metrics`, { signal: AbortSignal.timeout(3000) });
    text = await res.text();
  } catch {
    return undefined;
  }
  const buckets = new Map<number, number>();
  const pattern = new RegExp(`^${name}_bucket\\{(?:.*,)?le="([^"]+)"[^}]*\\} ([0-9.eE+-]+)`);
  for (const line of text.split('\n')) {
    const match = pattern.exec(line);
    if (!match) continue;
    const le = match[1] === '+Inf' ? Number.POSITIVE_INFINITY : Number(match[1]);
    buckets.set(le, (buckets.get(le) ?? 0) + Number(match[2]));
  }
  const sorted = [...buckets.entries()].sort((a, b) => a[0] - b[0]);
  const total = sorted.at(-1)?.[1] ?? 0;
  if (total === 0) return undefined;
  for (const [le, count] of sorted) if (count >= q * total) return le;
  return undefined;
}
