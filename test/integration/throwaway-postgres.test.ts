// The throwaway PostgreSQL (scripts/throwaway-postgres.ts) that `npm test` starts when
// TEST_DATABASE_URL is unset. CI sets it, so this file is what exercises that path there: another
// port when the preferred one is taken, never root, loopback only, and nothing left behind, even
// when its owner is killed with SIGKILL.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { startThrowawayPostgres, type ThrowawayPostgres } from '../../scripts/throwaway-postgres.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Polls until `check` holds, for at most `ms`. */
async function until(what: string, ms: number, check: () => boolean): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`not within ${ms} ms: ${what}`);
    await new Promise((wake) => setTimeout(wake, 50));
  }
}

function ps(field: 'uid' | 'stat', pid: number): string {
  return spawnSync('ps', ['-o', `${field}=`, '-p', String(pid)], { encoding: 'utf8' }).stdout.trim();
}

/** No such process, or a zombie that an init has yet to reap: it has stopped either way. */
function gone(pid: number): boolean {
  const stat = ps('stat', pid);
  return stat === '' || stat.startsWith('Z');
}

async function settings(url: string): Promise<Record<string, string>> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<Record<string, string>>(
      "SELECT current_setting('listen_addresses') AS listen, current_setting('unix_socket_directories') AS sockets, (6 * 7)::text AS answer",
    );
    return rows[0]!;
  } finally {
    await client.end();
  }
}

function assertServes(server: Pick<ThrowawayPostgres, 'port' | 'pid' | 'uid'>, found: Record<string, string>): void {
  assert.deepEqual(found, { listen: '127.0.0.1', sockets: '', answer: '42' });
  assert.equal(existsSync(`/tmp/.s.PGSQL.${server.port}`), false, 'no Unix socket file in /tmp');
  const uid = Number(ps('uid', server.pid));
  assert.notEqual(uid, 0, 'the server does not run as root');
  assert.equal(uid, server.uid);
}

test('stop() stops the server and removes its folder', { timeout: 60_000 }, async () => {
  const server = await startThrowawayPostgres();
  try {
    assertServes(server, await settings(server.url));
  } finally {
    await server.stop();
  }
  assert.ok(gone(server.pid), 'postgres stopped');
  assert.equal(existsSync(server.folder), false, 'folder removed');
});

test('preferred port taken: another one; owner killed by SIGKILL: nothing left', { timeout: 90_000 }, async () => {
  const blocker = createServer();
  await new Promise<void>((done) => blocker.listen(0, '127.0.0.1', () => done()));
  const taken = (blocker.address() as { port: number }).port;

  // The owner is a process of its own, so that it can be killed outright.
  const owner = spawn(process.execPath, ['--import', 'tsx', 'scripts/throwaway-postgres.ts', '--port', String(taken)], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  owner.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  let server: ThrowawayPostgres;
  try {
    const first = once(createInterface({ input: owner.stdout }), 'line', { signal: AbortSignal.timeout(60_000) });
    const exited = once(owner, 'exit').then(() => assert.fail(`the owner exited before the server was up:\n${stderr}`));
    server = JSON.parse(((await Promise.race([first, exited])) as string[])[0]!) as ThrowawayPostgres;

    assert.notEqual(server.port, taken);
    assert.match(readFileSync(join(server.folder, 'postgres.log'), 'utf8'), /could not bind IPv4 address "127\.0\.0\.1": Address already in use/);
    assertServes(server, await settings(server.url));
  } finally {
    owner.kill('SIGKILL');
    blocker.close();
  }
  await until('postgres stopped and its folder removed after the owner died', 15_000, () => gone(server.pid) && !existsSync(server.folder));
});
