// pulse-client as a child process against an in-process Pulse (PGlite in memory).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { SignJWT } from 'jose';
import { startPulse } from '../helpers/pulse.js';
import type { RunningPulse } from '../helpers/pulse.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
// Generous: a child process pays for Node and tsx start-up, on a busy 2-core machine.
const TIMEOUT = 60_000;

function childEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.PULSE_URL;
  delete env.PULSE_TOKEN;
  return env;
}

interface Client {
  child: ChildProcessWithoutNullStreams;
  stdout(): string;
  stderr(): string;
  waitFor(pattern: RegExp, what?: 'stdout' | 'stderr'): Promise<void>;
  exit: Promise<number | null>;
}

function startClient(args: string[], env: Record<string, string> = {}): Client {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
    cwd: root,
    env: { ...childEnv(), ...env },
  });
  let out = '';
  let err = '';
  const waiters = new Set<() => void>();
  const wake = () => {
    for (const w of [...waiters]) w();
  };
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    out += d;
    wake();
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    err += d;
    wake();
  });
  const exit = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  exit.then(wake, wake);
  let exited = false;
  void exit.then(() => (exited = true));
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exit,
    waitFor(pattern, what = 'stdout') {
      return new Promise((resolve, reject) => {
        const check = () => {
          const text = what === 'stdout' ? out : err;
          if (pattern.test(text)) {
            waiters.delete(check);
            clearTimeout(timer);
            resolve();
          } else if (exited) {
            waiters.delete(check);
            clearTimeout(timer);
            reject(new Error(`exited before ${what} matched ${pattern}\nstdout: ${out}\nstderr: ${err}`));
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`timed out waiting for ${what} to match ${pattern}\nstdout: ${out}\nstderr: ${err}`));
        }, TIMEOUT);
        waiters.add(check);
        check();
      });
    },
  };
}

async function run(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const c = startClient(args, env);
  c.child.stdin.end();
  const code = await c.exit;
  return { code, stdout: c.stdout(), stderr: c.stderr() };
}

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  assert.ok(address && typeof address === 'object');
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return address.port;
}

describe('pulse-client', { timeout: 10 * TIMEOUT, concurrency: 4 }, () => {
  let pulse: RunningPulse;
  let url: string;

  before(async () => {
    pulse = await startPulse();
    await pulse.ready();
    url = pulse.wsUrl;
  });
  after(async () => {
    await pulse?.stop();
  });

  test('--fib 10 prints 55 and exits 0', { timeout: TIMEOUT }, async () => {
    const r = await run(['--url', url, '--fib', '10']);
    assert.equal(r.stdout, '55\n', r.stderr);
    assert.equal(r.code, 0);
  });

  test('--fib -8 prints the signed value', { timeout: TIMEOUT }, async () => {
    const r = await run(['--url', url, '--fib', '-8']);
    assert.equal(r.stdout, '-21\n', r.stderr);
    assert.equal(r.code, 0);
  });

  test('--fib abc exits 1 with INVALID_NUMBER on stderr', { timeout: TIMEOUT }, async () => {
    const r = await run(['--url', url, '--fib', 'abc']);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /^error INVALID_NUMBER: /m);
  });

  test('--fib 1000001 exits 1 with OUT_OF_RANGE', { timeout: TIMEOUT }, async () => {
    const r = await run(['--url', url, '--fib', '1000001']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^error OUT_OF_RANGE: /m);
  });

  test('--fib with an integer beyond 2^53 is OUT_OF_RANGE, not rounded', { timeout: TIMEOUT }, async () => {
    const r = await run(['--url', url, '--fib', '99999999999999999999']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^error OUT_OF_RANGE: /m);
  });

  test('--json --fib 10 prints the fibonacci frame as one JSON line', { timeout: TIMEOUT }, async () => {
    const r = await run(['--json', '--url', url, '--fib', '10']);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    assert.equal(lines.length, 1);
    const frame = JSON.parse(lines[0] as string) as Record<string, unknown>;
    assert.equal(frame.type, 'fibonacci');
    assert.equal(frame.value, '55');
    assert.equal(frame.n, 10);
    // The number goes as the text given (exact at any length), which the server answers with id null.
    assert.equal(frame.id, null);
  });

  test('--json --fib abc prints the error frame and exits 1', { timeout: TIMEOUT }, async () => {
    const r = await run(['--json', '--url', url, '--fib', 'abc']);
    assert.equal(r.code, 1);
    const frame = JSON.parse(r.stdout) as Record<string, unknown>;
    assert.equal(frame.type, 'error');
    assert.equal(frame.code, 'INVALID_NUMBER');
  });

  test('--users --name alice lists alice', { timeout: TIMEOUT }, async () => {
    const r = await run(['--url', url, '--users', '--name', 'alice']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^alice\talice\t\d+$/m);
  });

  test('--json --users prints the users frame', { timeout: TIMEOUT }, async () => {
    const r = await run(['--json', '--url', url, '--users', '--name', 'carol']);
    assert.equal(r.code, 0, r.stderr);
    const frame = JSON.parse(r.stdout) as { type: string; users: Array<{ name: string }> };
    assert.equal(frame.type, 'users');
    assert.ok(frame.users.some((u) => u.name === 'carol'));
  });

  test('interactive: a number typed is answered; end of input exits 0', { timeout: TIMEOUT }, async () => {
    const c = startClient(['--url', url, '--name', 'dave']);
    c.child.stdin.write('10\n');
    await c.waitFor(/^F\(10\) = 55$/m);
    c.child.stdin.write('/users\n');
    await c.waitFor(/^ {2}dave · 1 session$/m);
    c.child.stdin.end();
    assert.equal(await c.exit, 0);
    assert.match(c.stdout(), /^connected to ws:\/\/127\.0\.0\.1:\d+\/ws as dave$/m);
  });

  test('interactive: piped input is answered before exiting', { timeout: TIMEOUT }, async () => {
    const c = startClient(['--url', url]);
    c.child.stdin.end('7\nabc\n');
    assert.equal(await c.exit, 0);
    assert.match(c.stdout(), /^F\(7\) = 13$/m);
    assert.match(c.stdout(), /^error INVALID_NUMBER: .* \(for abc\)$/m);
  });

  test('interactive: presence changes are shown', { timeout: 2 * TIMEOUT }, async () => {
    const watcher = startClient(['--url', url, '--name', 'watcher']);
    await watcher.waitFor(/^connected to .* as watcher$/m);
    const erin = startClient(['--url', url, '--name', 'erin']);
    await watcher.waitFor(/^\+ erin joined$/m);
    await watcher.waitFor(/^\d+ online$/m);
    erin.child.stdin.end();
    assert.equal(await erin.exit, 0);
    await watcher.waitFor(/^- erin left$/m);
    watcher.child.kill('SIGINT');
    assert.equal(await watcher.exit, 0);
  });

  test('interactive --json prints frames, one JSON per line', { timeout: TIMEOUT }, async () => {
    const c = startClient(['--json', '--url', url, '--name', 'frank']);
    c.child.stdin.write('10\n');
    await c.waitFor(/"type":"fibonacci"/);
    await c.waitFor(/"type":"time"/);
    c.child.stdin.end();
    assert.equal(await c.exit, 0);
    const frames = c
      .stdout()
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string; value?: string });
    assert.equal(frames[0]?.type, 'welcome');
    assert.equal(frames.find((f) => f.type === 'fibonacci')?.value, '55');
  });

  test('an invalid name is refused with HTTP 400: exit 2', { timeout: TIMEOUT }, async () => {
    const r = await run(['--url', url, '--users', '--name', 'no/slashes']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /HTTP 400/);
  });

  test('an unreachable URL exits 2 with a clear message', { timeout: TIMEOUT }, async () => {
    const port = await closedPort();
    const r = await run(['--url', `ws://127.0.0.1:${port}/ws`, '--fib', '10']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /cannot connect to ws:\/\/127\.0\.0\.1:\d+\/ws: connection refused/);
    const i = await run(['--url', `ws://127.0.0.1:${port}/ws`]);
    assert.equal(i.code, 0, 'interactive with nothing asked: end of input exits 0');
  });

  test('usage errors exit 64; --help and --version exit 0', { timeout: TIMEOUT }, async () => {
    const bad = await run(['--bogus']);
    assert.equal(bad.code, 64);
    assert.match(bad.stderr, /unknown option --bogus/);
    const help = await run(['--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^Usage: pulse-client/);
    const version = await run(['--version']);
    assert.equal(version.code, 0);
    assert.match(version.stdout, /^pulse-client \d+\.\d+\.\d+/);
  });
});

test('interactive: reconnects after the server restarts', { timeout: 4 * TIMEOUT }, async () => {
  let pulse = await startPulse();
  await pulse.ready();
  const port = pulse.port;
  const c = startClient(['--url', pulse.wsUrl, '--name', 'gina']);
  try {
    await c.waitFor(/^connected to .* as gina$/m);
    await pulse.stop();
    await c.waitFor(/^disconnected: .*; reconnecting in \d+\.\ds \(attempt 1\)$/m);
    pulse = await startPulse({ PORT: String(port) });
    await c.waitFor(/connected to .* as gina\n(.*\n)*connected to .* as gina$/m);
    c.child.stdin.write('11\n');
    await c.waitFor(/^F\(11\) = 89$/m);
    c.child.stdin.end();
    assert.equal(await c.exit, 0);
  } finally {
    c.child.kill();
    await pulse.stop();
  }
});

test('with AUTH_JWT_SECRET: no token → HTTP 401, exit 2; --token or PULSE_TOKEN → answered', { timeout: 3 * TIMEOUT }, async () => {
  const secret = 'a-test-secret-of-at-least-32-characters!';
  const pulse = await startPulse({ AUTH_JWT_SECRET: secret });
  try {
    // Until the embedded database has started, the event loop is busy and upgrades are slow.
    await pulse.ready();
    const token = await new SignJWT({ name: 'Ivy' })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('u-ivy')
      .setExpirationTime('10m')
      .sign(new TextEncoder().encode(secret));
    const denied = await run(['--url', pulse.wsUrl, '--fib', '10']);
    assert.equal(denied.code, 2);
    assert.match(denied.stderr, /HTTP 401 \(unauthorized/);
    const allowed = await run(['--url', pulse.wsUrl, '--users', '--token', token]);
    assert.equal(allowed.code, 0, allowed.stderr);
    assert.match(allowed.stdout, /^Ivy\tu-ivy\t1$/m);
    const fromEnv = await run(['--url', pulse.wsUrl, '--fib', '10'], { PULSE_TOKEN: token });
    assert.equal(fromEnv.stdout, '55\n', fromEnv.stderr);
  } finally {
    await pulse.stop();
  }
});
