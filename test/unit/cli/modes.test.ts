// Both modes of pulse-client against the in-process fake server (test/helpers/fake-pulse-server.ts):
// what each of PulseClient's events looks like, and the exit status, without a child process.

import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { after, afterEach, before, test } from 'node:test';
import type { CliOptions } from '../../../src/cli/args.js';
import { runInteractive } from '../../../src/cli/interactive.js';
import { runOneShot } from '../../../src/cli/oneshot.js';
import { FakePulseServer } from '../../helpers/fake-pulse-server.js';

let server: FakePulseServer;
let ticker: NodeJS.Timeout;

before(async () => {
  server = await FakePulseServer.start();
  // PulseClient takes a silent connection for a dead one: tick as the server does.
  ticker = setInterval(() => server.tick(), 500);
});
after(async () => {
  clearInterval(ticker);
  await server.stop();
});
afterEach(() => {
  for (const conn of server.connections.splice(0)) conn.socket.terminate();
  Object.assign(server, { refusal: undefined, users: [], holdAnswers: false, upgrades: 0 });
});

function options(extra: Partial<CliOptions> = {}): CliOptions {
  return { mode: 'interactive', url: server.url, name: 'ada', json: false, ...extra };
}

/** An interactive session on pipes: what it prints, and its exit status. */
function session(opts: CliOptions) {
  const input = new PassThrough();
  const output = new PassThrough().setEncoding('utf8');
  const error = new PassThrough().setEncoding('utf8');
  let out = '';
  let err = '';
  output.on('data', (d: string) => (out += d));
  error.on('data', (d: string) => (err += d));
  const exit = runInteractive(opts, { input, output, error });
  const waitFor = async (pattern: RegExp, stream: 'out' | 'err' = 'out') => {
    const deadline = Date.now() + 5_000;
    while (!pattern.test(stream === 'out' ? out : err)) {
      if (Date.now() > deadline) throw new Error(`no ${pattern} in\nstdout: ${out}\nstderr: ${err}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  };
  return { input, exit, waitFor, out: () => out, err: () => err };
}

test('interactive: questions typed before the welcome are asked once connected; end of input exits 0', { timeout: 15_000 }, async () => {
  server.users = [{ id: 'ada', name: 'ada', sessions: 1, since: '2026-01-01T00:00:00.000Z' }];
  const s = session(options());
  s.input.end('10\n/users\n');
  assert.equal(await s.exit, 0);
  assert.match(s.out(), /^connected to ws:\/\/127\.0\.0\.1:\d+\/ws as ada\nF\(10\) = 55\n1 online:\n {2}ada · 1 session\n$/m);
});

test('interactive: a drop is announced with the next attempt, and the session carries on', { timeout: 15_000 }, async () => {
  const s = session(options());
  await s.waitFor(/^connected to /m);
  (await server.connection(0)).socket.terminate();
  await s.waitFor(/^disconnected: the connection closed: 1006 .*; reconnecting in \d+\.\ds \(attempt 1\)$/m);
  await server.connection(1);
  await s.waitFor(/^connected to [^\n]*\n(.*\n)*connected to /m);
  s.input.end('7\n');
  assert.equal(await s.exit, 0);
  assert.match(s.out(), /^F\(7\) = 13$/m);
});

test('interactive: the connection lost after end of input, answers still due: exit 2', { timeout: 15_000 }, async () => {
  const s = session(options());
  await s.waitFor(/^connected to /m);
  server.holdAnswers = true;
  s.input.end('10\n');
  const conn = await server.connection(0);
  while (conn.received.length === 0) await new Promise((resolve) => setTimeout(resolve, 10));
  conn.socket.terminate();
  assert.equal(await s.exit, 2);
  assert.match(s.err(), /^disconnected: the connection closed: 1006 /m);
});

test('interactive: a refusal retrying cannot fix ends the session with its reason, exit 2', { timeout: 15_000 }, async () => {
  server.refusal = { status: 401, code: 'UNAUTHORIZED', message: 'token expired' };
  const s = session(options({ token: 'old' }));
  assert.equal(await s.exit, 2);
  assert.match(s.err(), /^cannot connect to ws:\/\/127\.0\.0\.1:\d+\/ws: HTTP 401 \(unauthorized: token expired; check --token or PULSE_TOKEN\)$/m);
  assert.doesNotMatch(s.err(), /old/, 'the token is never printed');
});

test('interactive --json: stdout carries the server\'s frames only, one per line', { timeout: 15_000 }, async () => {
  const s = session(options({ json: true }));
  s.input.end('10\n/bogus\n');
  assert.equal(await s.exit, 0);
  const frames = s.out().trimEnd().split('\n').map((line) => JSON.parse(line) as { type: string });
  assert.equal(frames[0]?.type, 'welcome');
  assert.ok(frames.some((f) => f.type === 'fibonacci'));
  assert.match(s.err(), /^unknown command \/bogus; try \/help$/m);
});

function oneShot(opts: CliOptions) {
  const out: string[] = [];
  const err: string[] = [];
  const exit = runOneShot(opts, { out: (line) => out.push(line), err: (line) => err.push(line) });
  return { exit, out, err };
}

test('one-shot: a server error exits 1; the connection lost before the answer exits 2', { timeout: 15_000 }, async () => {
  const refused = oneShot(options({ mode: 'fib', fib: '5000' }));
  assert.equal(await refused.exit, 1);
  assert.deepEqual(refused.err, ['error OUT_OF_RANGE: n must be between -1000 and 1000']);
  server.holdAnswers = true;
  const lost = oneShot(options({ mode: 'fib', fib: '10' }));
  const conn = await server.connection(1);
  while (conn.received.length === 0) await new Promise((resolve) => setTimeout(resolve, 10));
  conn.socket.terminate();
  assert.equal(await lost.exit, 2);
  assert.match(lost.err.join('\n'), /^the connection closed \(1006 .*\) before the answer came$/);
});

test('one-shot: one attempt, even when retrying could help (503), and presence is not asked for', { timeout: 15_000 }, async () => {
  server.refusal = { status: 503, code: 'SERVER_FULL', message: 'server full' };
  const full = oneShot(options({ mode: 'users' }));
  assert.equal(await full.exit, 2);
  assert.match(full.err.join('\n'), /HTTP 503 \(server full\)$/);
  assert.equal(server.upgrades, 1, 'no retry');
  server.refusal = undefined;
  const users = oneShot(options({ mode: 'users' }));
  assert.equal(await users.exit, 0);
  assert.equal((await server.connection(0)).query.get('presence'), '0');
});
