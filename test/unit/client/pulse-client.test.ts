// PulseClient against an in-process fake server (test/helpers/fake-pulse-server.ts): no
// subprocess, no browser. Node 20 has no global WebSocket, so this also covers the `ws` fallback.

import assert from 'node:assert/strict';
import { after, afterEach, before, test } from 'node:test';
import { PulseClient, PulseError, type ClientState, type PulseClientOptions, type RetryInfo } from '../../../src/client/index.js';
import { FakePulseServer } from '../../helpers/fake-pulse-server.js';

let server: FakePulseServer;
const clients: PulseClient[] = [];

before(async () => {
  server = await FakePulseServer.start();
});
after(() => server.stop());
afterEach(() => {
  for (const client of clients.splice(0)) client.close();
  for (const conn of server.connections.splice(0)) conn.socket.terminate();
  Object.assign(server, { upgrades: 0, prechecks: 0, refusal: undefined, users: [], holdAnswers: false, sendWelcome: true });
  server.errorsNext.length = 0;
});

function client(options: Partial<PulseClientOptions> = {}): PulseClient {
  const made = new PulseClient({ url: server.url, name: 'ada', backoff: { baseMs: 20, capMs: 100 }, ...options });
  clients.push(made);
  return made;
}

/** Resolves with the first event of `kind` that `test` accepts. */
function next<E extends 'state' | 'error' | 'online' | 'time' | 'retry'>(c: PulseClient, kind: E, accept: (value: never) => boolean = () => true, timeoutMs = 5_000) {
  return new Promise<unknown>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${kind} event within ${timeoutMs} ms`)), timeoutMs);
    const off = c.on(kind, (value) => {
      if (!accept(value as never)) return;
      clearTimeout(timer);
      off();
      resolve(value);
    });
  });
}

test('connect resolves on the welcome; states, ticks and the name reach the server', async () => {
  const c = client();
  const states: ClientState[] = [];
  c.on('state', (s) => states.push(s));
  const welcome = await c.connect();
  assert.deepEqual(welcome.user, { id: 'ada', name: 'ada' });
  assert.equal(c.state, 'open');
  assert.deepEqual(states, ['connecting', 'open']);
  assert.equal((await server.connection(0)).query.get('name'), 'ada');
  const time = next(c, 'time');
  server.tick(1_800_000_000_000);
  assert.deepEqual(await time, { type: 'time', now: '2027-01-15T08:00:00.000Z', epochMs: 1_800_000_000_000 });
});

test('requests are correlated with their answers, and an error answer rejects with the server\'s code', async () => {
  const c = client({ presence: false });
  await c.connect();
  const [ten, big, minusEight] = await Promise.allSettled([c.fibonacci(10), c.fibonacci(5_000), c.fibonacci(-8)]);
  assert.deepEqual(ten, { status: 'fulfilled', value: { n: 10, value: '55', digits: 2 } });
  assert.equal(big.status, 'rejected');
  assert.ok((big as PromiseRejectedResult).reason instanceof PulseError);
  assert.equal((big as PromiseRejectedResult).reason.code, 'OUT_OF_RANGE');
  assert.deepEqual(minusEight, { status: 'fulfilled', value: { n: -8, value: '-21', digits: 2 } });
  // RATE_LIMITED answers carry id null: answers come in request order, so it is still the right request's.
  server.errorsNext.push({ code: 'RATE_LIMITED', idNull: true });
  const limited = c.fibonacci(1);
  const fine = c.fibonacci(2);
  await assert.rejects(limited, (err: PulseError) => err.code === 'RATE_LIMITED' && err.retryable);
  assert.deepEqual(await fine, { n: 2, value: '1', digits: 1 });
  server.users = [{ id: 'ada', name: 'ada', sessions: 1, since: '2026-01-01T00:00:00.000Z' }];
  assert.deepEqual(await c.users(), { online: 1, users: server.users, truncated: false });
});

test('a drop mid-request rejects it with DISCONNECTED at once, and the client reconnects', async () => {
  const c = client({ presence: false });
  await c.connect();
  server.holdAnswers = true;
  const pending = c.fibonacci(10);
  const conn = await server.connection(0);
  await waitUntil(() => conn.received.length === 1);
  conn.socket.terminate();
  await assert.rejects(pending, (err: PulseError) => err.code === 'DISCONNECTED');
  await server.connection(1);
  await next(c, 'state', (s: ClientState) => s === 'open');
  await assert.rejects(c.fibonacci(1, { timeoutMs: 100 }), (err: PulseError) => err.code === 'TIMEOUT', 'answers still held');
});

test('a timed-out or aborted request never hangs, and a late answer does not confuse the next one', async () => {
  const c = client({ presence: false });
  await c.connect();
  server.holdAnswers = true;
  const slow = c.fibonacci(10, { timeoutMs: 50 });
  const controller = new AbortController();
  const aborted = assert.rejects(c.fibonacci(11, { signal: controller.signal }), (err: PulseError) => err.code === 'ABORTED');
  controller.abort();
  await assert.rejects(slow, (err: PulseError) => err.code === 'TIMEOUT');
  await aborted;
  const third = c.fibonacci(12);
  const conn = await server.connection(0);
  await waitUntil(() => conn.received.length === 3);
  server.answerHeld(conn);
  assert.deepEqual(await third, { n: 12, value: '144', digits: 3 });
  await assert.rejects(new PulseClient({ url: server.url }).fibonacci(1), (err: PulseError) => err.code === 'DISCONNECTED', 'not connected: rejected at once');
});

test('after a 1001 drain it reconnects at once, not after a backoff', async () => {
  const c = client({ backoff: { baseMs: 10_000, capMs: 10_000, drainJitterMs: 50 } });
  await c.connect();
  (await server.connection(0)).socket.close(1001, 'server shutting down');
  const started = Date.now();
  await server.connection(1);
  await next(c, 'state', (s: ClientState) => s === 'open');
  assert.ok(Date.now() - started < 1_000, `back after ${Date.now() - started} ms`);
});

test('other drops back off: capped exponential, full jitter', async () => {
  const delays: number[] = [];
  const c = client({ backoff: { baseMs: 200, capMs: 200 }, random: () => 0.999 });
  await c.connect();
  for (let i = 0; i < 2; i++) {
    (await server.connection(i)).socket.close(4000, 'test drop');
    const dropped = Date.now();
    await server.connection(i + 1);
    delays.push(Date.now() - dropped);
  }
  for (const delay of delays) assert.ok(delay >= 150, `reconnected after ${delay} ms, before the backoff`);
});

test('refusals that retrying cannot fix stop with a PulseError that says why', async () => {
  for (const refusal of [
    { status: 401, code: 'UNAUTHORIZED', message: 'token expired' },
    { status: 403, code: 'ORIGIN_NOT_ALLOWED', message: 'origin not allowed' },
    { status: 400, code: 'INVALID_NAME', message: 'a name is 1-32 letters' },
  ] as const) {
    server.refusal = refusal;
    server.upgrades = 0;
    const c = client();
    const errors: PulseError[] = [];
    c.on('error', (e) => errors.push(e));
    await assert.rejects(c.connect(), (err: PulseError) => err.code === refusal.code && err.message === refusal.message && err.status === refusal.status && !err.retryable);
    assert.equal(c.state, 'closed');
    await new Promise((resolve) => setTimeout(resolve, 150));
    assert.equal(server.upgrades, 1, `${refusal.code}: one attempt, no retry`);
    assert.deepEqual(errors.map((e) => e.code), [refusal.code]);
  }
});

test('a 401 whose signing key cannot be had yet (the identity provider is down) is retried, not final', async () => {
  server.refusal = { status: 401, code: 'SIGNING_KEY_UNAVAILABLE', message: 'signing keys unavailable' };
  const c = client();
  const connected = c.connect();
  const error = (await next(c, 'error')) as PulseError;
  assert.deepEqual([error.code, error.retryable, c.state], ['SIGNING_KEY_UNAVAILABLE', true, 'reconnecting']);
  server.refusal = undefined;
  await connected;
});

test('a name that breaks the rule is refused before any connection is tried', async () => {
  for (const name of ['x²', '½', 'a'.repeat(40)]) {
    const c = client({ name });
    await assert.rejects(c.connect(), (err: PulseError) => err.code === 'INVALID_NAME' && err.message.includes('1-32 letters'));
  }
  assert.equal(server.upgrades, 0);
  assert.equal(server.prechecks, 0);
});

test('retry: every scheduled attempt says how long until it starts and why, with the close code of a drop', async () => {
  const c = client({ backoff: { baseMs: 200, capMs: 200 }, random: () => 0.5 });
  const states: ClientState[] = [];
  c.on('state', (s) => states.push(s));
  await c.connect();
  let retried = next(c, 'retry');
  (await server.connection(0)).socket.close(4000, 'test drop');
  const drop = (await retried) as RetryInfo;
  assert.equal(drop.delayMs, 100, 'half of the 200 ms bound');
  assert.deepEqual(drop.close, { code: 4000, reason: 'test drop' });
  assert.equal(drop.error.code, 'DISCONNECTED');
  assert.equal(drop.error.retryable, true);
  assert.equal(states.at(-1), 'reconnecting', 'announced after the state');
  await next(c, 'state', (s: ClientState) => s === 'open');
  // A refused attempt: no close code to show, the pre-check's reason instead.
  server.refusal = { status: 503, code: 'SERVER_FULL', message: 'server full' };
  retried = next(c, 'retry', (info: RetryInfo) => info.close === undefined);
  (await server.connection(1)).socket.close(4000, 'test drop');
  const refused = (await retried) as RetryInfo;
  assert.equal(refused.error.code, 'SERVER_FULL');
  assert.equal(refused.error.message, 'server full');
  assert.equal(refused.delayMs, 100);
  server.refusal = undefined;
  await next(c, 'state', (s: ClientState) => s === 'open');
});

test('a refusal retrying can fix (503 full, draining) is retried until it passes', async () => {
  server.refusal = { status: 503, code: 'SERVER_FULL', message: 'server full' };
  const c = client();
  const connected = c.connect();
  const error = (await next(c, 'error')) as PulseError;
  assert.equal(error.code, 'SERVER_FULL');
  assert.equal(error.retryable, true);
  assert.equal(c.state, 'reconnecting');
  server.refusal = undefined;
  await connected;
  assert.ok(server.prechecks >= 1);
});

test('silence: no frame for a tick and a half means reconnect', async () => {
  const c = client({ silenceMs: 300, presence: false });
  await c.connect();
  // The fake server sends no ticks: the client gives up on the connection and opens another.
  await server.connection(1);
  await next(c, 'state', (s: ClientState) => s === 'open');
  assert.equal(server.open.length, 1, 'the silent connection was closed');
});

test('getToken is called before every connect and reconnect', async () => {
  let issued = 0;
  const c = client({ name: undefined, getToken: async () => `token-${++issued}` });
  await c.connect();
  (await server.connection(0)).socket.close(1001, 'deploy');
  await server.connection(1);
  assert.deepEqual(server.connections.map((conn) => conn.query.get('token')), ['token-1', 'token-2']);
});

test('before the token expires, a new one from getToken() refreshes the open connection', async () => {
  const unsigned = (exp: number) => `e30.${Buffer.from(JSON.stringify({ sub: 'ada', exp })).toString('base64url')}.sig`;
  const issued: string[] = [];
  const c = client({ name: undefined, silenceMs: 60_000, getToken: () => {
    // Each token lives 2 s: the client must refresh about 1 s before the end.
    const token = unsigned(Math.floor(Date.now() / 1000) + 2);
    issued.push(token);
    return token;
  } });
  await c.connect();
  const deadline = Date.now() + 5_000;
  while (server.refreshes.length < 2) {
    assert.ok(Date.now() < deadline, `${server.refreshes.length} refreshes`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.deepEqual(server.refreshes, issued.slice(1, 3), 'each refresh carries a fresh token');
  assert.equal(server.connections.length, 1, 'on the same connection');
  assert.equal(c.state, 'open');
});

test('online: the snapshot, then joins and leaves, and a new snapshot after a truncated message', async () => {
  server.users = [{ id: 'ada', name: 'ada', sessions: 1, since: '2026-01-01T00:00:00.000Z' }];
  const c = client();
  const seeded = next(c, 'online');
  await c.connect();
  await seeded;
  assert.deepEqual(c.online.map((u) => u.id), ['ada']);
  assert.equal(c.onlineComplete, true);
  assert.equal(c.onlineCount, 1);
  let changed = next(c, 'online');
  server.presence({ online: 2, joined: [{ id: 'bob', name: 'bob' }], left: [] });
  await changed;
  changed = next(c, 'online');
  server.presence({ online: 1, joined: [], left: [{ id: 'ada', name: 'ada' }] });
  await changed;
  assert.deepEqual(c.online.map((u) => u.id), ['bob']);
  // Truncated: the lists are partial, so the client asks for the whole set again.
  server.users = [{ id: 'bob', name: 'bob', sessions: 1, since: '2026-01-01T00:00:00.000Z' }, ...Array.from({ length: 3 }, (_, i) => ({ id: `u${i}`, name: `u${i}`, sessions: 1, since: '2026-01-01T00:00:00.000Z' }))];
  const conn = await server.connection(0);
  const usersAsked = () => conn.sent.filter((f) => f.type === 'users').length;
  const askedBefore = usersAsked();
  const reseeded = next(c, 'online', (list: readonly unknown[]) => list.length === 4);
  server.presence({ online: 4, joined: [{ id: 'u0', name: 'u0' }], left: [], truncated: true, joinedCount: 3, leftCount: 0 });
  await reseeded;
  assert.equal(c.onlineComplete, true);
  assert.equal(c.onlineCount, 4);
  assert.equal(usersAsked() - askedBefore, 1, 'one users request re-seeded the list');
});

test('send(): any frame or raw text, answered with the server frame, errors included', async () => {
  const c = client({ presence: false });
  const frames: string[] = [];
  c.on('frame', (f) => frames.push(f.type));
  await c.connect();
  assert.deepEqual(await c.send({ type: 'fibonacci', n: 7, id: 'mine' }), { type: 'fibonacci', id: 'mine', n: 7, value: '13', digits: 2 });
  assert.deepEqual(await c.send('12'), { type: 'fibonacci', id: null, n: 12, value: '144', digits: 3 });
  const error = await c.send({ type: 'fibonacci', n: 5_000 });
  assert.equal(error.type === 'error' && error.code, 'OUT_OF_RANGE');
  assert.deepEqual(frames, ['welcome', 'fibonacci', 'fibonacci', 'error']);
});

test('reconnect: false: the first failure ends the client, with its reason', async () => {
  const c = client({ reconnect: false });
  await c.connect();
  const ended = next(c, 'error');
  (await server.connection(0)).socket.close(1001, 'deploy');
  assert.equal(((await ended) as PulseError).code, 'DISCONNECTED');
  assert.equal(c.state, 'closed');
  server.refusal = undefined;
  const down = new PulseClient({ url: 'ws://127.0.0.1:9/ws', reconnect: false });
  await assert.rejects(down.connect(), (err: PulseError) => err.code === 'DISCONNECTED' && err.retryable);
  assert.equal(server.connections.length, 1);
});

test('close() during an attempt that waits for its token, then connect() again: one connection, and none after the last close()', async () => {
  let release!: () => void;
  const tokenHeld = new Promise<void>((resolve) => (release = resolve));
  let issued = 0;
  const c = client({ name: undefined, getToken: async () => {
    if (++issued === 1) await tokenHeld; // the first attempt is still waiting when close() comes
    return `token-${issued}`;
  } });
  const first = c.connect();
  c.close();
  await assert.rejects(first, (err: PulseError) => err.code === 'CLOSED');
  await c.connect();
  release();
  await new Promise((resolve) => setTimeout(resolve, 150));
  assert.deepEqual(server.connections.map((conn) => conn.query.get('token')), ['token-2'], 'the abandoned attempt opened nothing');
  c.close();
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.equal(server.connections.filter((conn) => conn.socket.readyState === conn.socket.OPEN).length, 0, 'nothing left open');
});

test('close() rejects pending requests and a pending connect with CLOSED, and stays closed', async () => {
  server.sendWelcome = false;
  const c = client();
  const connecting = c.connect();
  await server.connection(0);
  c.close();
  await assert.rejects(connecting, (err: PulseError) => err.code === 'CLOSED');
  assert.equal(c.state, 'closed');
  await new Promise((resolve) => setTimeout(resolve, 150));
  assert.equal(server.connections.length, 1, 'no reconnect after close()');
});

test('onlineCount is the server\'s count past a truncated list, and each retry carries the drop\'s reason', async () => {
  server.users = [{ id: 'ada', name: 'ada', sessions: 1, since: '2026-01-01T00:00:00.000Z' }];
  const c = client({ backoff: { baseMs: 200, capMs: 200, drainJitterMs: 50 } });
  const retries: { error: PulseError; delayMs: number }[] = [];
  c.on('retry', (retry) => retries.push(retry));
  const seeded = next(c, 'online');
  await c.connect();
  await seeded;
  assert.equal(c.onlineCount, 1);
  const changed = next(c, 'online');
  server.presence({ online: 1500, joined: [{ id: 'bob', name: 'bob' }], left: [], truncated: true, joinedCount: 1499, leftCount: 0 });
  await changed;
  assert.equal(c.onlineCount, 1500, 'the count, not the partial list');
  (await server.connection(0)).socket.close(1001, 'deploy');
  await server.connection(1);
  (await server.connection(1)).socket.close(4000, 'test drop');
  await server.connection(2);
  assert.deepEqual(retries.map((r) => [r.error.code, r.error.message]), [
    ['DISCONNECTED', 'the connection closed: 1001 deploy'],
    ['DISCONNECTED', 'the connection closed: 4000 test drop'],
  ]);
  assert.ok(retries[0]!.delayMs < 50 && retries[1]!.delayMs < 200, JSON.stringify(retries.map((r) => r.delayMs)));
});

test('a failed attempt keeps the runtime\'s error as its cause (Node: ECONNREFUSED)', async () => {
  const down = new PulseClient({ url: 'ws://127.0.0.1:9/ws', reconnect: false });
  await assert.rejects(down.connect(), (err: PulseError) => err.code === 'DISCONNECTED' && (err.cause as { code?: string } | undefined)?.code === 'ECONNREFUSED');
});

async function waitUntil(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
