// Dispatch without sockets or workers: one frame through limiter → codec → service → reply,
// replies in request order, BUSY, RATE_LIMITED and the closes a frame can cause.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { FibonacciAnswer } from '../../../src/fibonacci/service.js';
import { Dispatcher, type DispatchLimits } from '../../../src/gateway/dispatch.js';
import { OnlineUsers } from '../../../src/presence/online-users.js';
import { ABUSE_MAX_REJECTIONS } from '../../../src/protocol/limits.js';
import { fakeConnection } from '../../helpers/fake-socket.js';
import { gatewayMetrics } from '../../helpers/gateway-metrics.js';
import { silentLogger } from '../../helpers/logger.js';

const LIMITS: DispatchLimits = { fibMaxN: 1_000_000, fibMaxInFlight: 2, rateLimitPerSecond: 0, slowClientCloseBytes: 1 << 20 };

function recordingMetrics() {
  const seen = { errors: [] as string[], frames: 0, rateLimited: 0 };
  const metrics = gatewayMetrics({
    frameReceived: () => void seen.frames++,
    rateLimited: () => void seen.rateLimited++,
    errorReplied: (code) => void seen.errors.push(code),
  });
  return { seen, metrics };
}

/** A Fibonacci service whose big answers wait until the test releases them. */
function controllableFibonacci() {
  const pending = new Map<number, (answer: FibonacciAnswer) => void>();
  const service = {
    compute(n: number): FibonacciAnswer | Promise<FibonacciAnswer> {
      if (n === 13) throw new Error('boom');
      if (Math.abs(n) < 1000) return { n, value: String(n * 2), digits: 1 };
      return new Promise<FibonacciAnswer>((resolve) => pending.set(n, resolve));
    },
  };
  const release = (n: number) => pending.get(n)!({ n, value: `big${n}`, digits: 4 });
  return { service, release, pending };
}

const text = (s: string) => Buffer.from(s);
const settle = () => new Promise((resolve) => setImmediate(resolve));

test('a slow answer holds back the faster ones behind it: replies leave in request order', async () => {
  const { service, release } = controllableFibonacci();
  const dispatcher = new Dispatcher(LIMITS, service, new OnlineUsers(), recordingMetrics().metrics, silentLogger, undefined);
  const { conn, socket } = fakeConnection();
  dispatcher.onFrame(conn, text('{"type":"fibonacci","n":5000,"id":"slow"}'), false);
  dispatcher.onFrame(conn, text('{"type":"fibonacci","n":7,"id":"fast"}'), false);
  dispatcher.onFrame(conn, text('{"type":"users","id":"who"}'), false);
  await settle();
  assert.equal(socket.messages.length, 0, 'nothing may overtake the slow answer');
  release(5000);
  await settle();
  assert.deepEqual(
    socket.messages.map((m) => [m.type, m.id]),
    [
      ['fibonacci', 'slow'],
      ['fibonacci', 'fast'],
      ['users', 'who'],
    ],
  );
  assert.equal(socket.messages[0]!.value, 'big5000');
  assert.equal(conn.inFlight, 0);
});

test('more than FIB_MAX_IN_FLIGHT answers waiting → BUSY, in its place in the order', async () => {
  const { service, release } = controllableFibonacci();
  const { seen, metrics } = recordingMetrics();
  const dispatcher = new Dispatcher(LIMITS, service, new OnlineUsers(), metrics, silentLogger, undefined);
  const { conn, socket } = fakeConnection();
  for (const n of [5001, 5002, 5003]) dispatcher.onFrame(conn, text(`{"type":"fibonacci","n":${n},"id":${n}}`), false);
  release(5001);
  release(5002);
  await settle();
  assert.deepEqual(socket.messages.map((m) => [m.id, m.type, m.code]), [
    [5001, 'fibonacci', undefined],
    [5002, 'fibonacci', undefined],
    [5003, 'error', 'BUSY'],
  ]);
  assert.deepEqual(seen.errors, ['BUSY']);
  // Once answers are out, the next big request goes through again.
  dispatcher.onFrame(conn, text('{"type":"fibonacci","n":5004,"id":4}'), false);
  release(5004);
  await settle();
  assert.equal(socket.messages.at(-1)!.value, 'big5004');
});

test('a failing computation is INTERNAL for that request only, and the connection stays', async () => {
  const { service } = controllableFibonacci();
  const { seen, metrics } = recordingMetrics();
  const errors: string[] = [];
  const log = { ...silentLogger, error: (_fields: object, msg: string) => void errors.push(msg) };
  const dispatcher = new Dispatcher(LIMITS, service, new OnlineUsers(), metrics, log, undefined);
  const { conn, socket } = fakeConnection();
  dispatcher.onFrame(conn, text('{"type":"fibonacci","n":13,"id":"x"}'), false);
  dispatcher.onFrame(conn, text('12'), false);
  assert.deepEqual(socket.messages.map((m) => [m.type, m.code ?? m.value]), [
    ['error', 'INTERNAL'],
    ['fibonacci', '24'],
  ]);
  assert.deepEqual(seen.errors, ['INTERNAL']);
  assert.deepEqual(errors, ['fibonacci failed']);
  assert.equal(socket.closedWith, undefined);
});

test('RATE_LIMITED past the bucket; more than ABUSE_MAX_REJECTIONS of them closes with 1008', () => {
  const { service } = controllableFibonacci();
  const { seen, metrics } = recordingMetrics();
  const dispatcher = new Dispatcher({ ...LIMITS, rateLimitPerSecond: 1 }, service, new OnlineUsers(), metrics, silentLogger, undefined);
  const { conn, socket } = fakeConnection({ perSecond: 1, burst: 3 });
  for (let i = 0; i < 3 + ABUSE_MAX_REJECTIONS + 1; i++) dispatcher.onFrame(conn, text('1'), false);
  const types = socket.messages.map((m) => (m.type === 'error' ? m.code : m.type));
  assert.deepEqual(types.slice(0, 3), ['fibonacci', 'fibonacci', 'fibonacci']);
  assert.equal(types.filter((t) => t === 'RATE_LIMITED').length, ABUSE_MAX_REJECTIONS);
  assert.deepEqual(socket.closedWith, { code: 1008, reason: 'rate limit exceeded persistently' });
  assert.equal(seen.rateLimited, ABUSE_MAX_REJECTIONS + 1);
});

test('a binary frame closes with 1003 and reaches no service', () => {
  const { seen, metrics } = recordingMetrics();
  const dispatcher = new Dispatcher(LIMITS, controllableFibonacci().service, new OnlineUsers(), metrics, silentLogger, undefined);
  const { conn, socket } = fakeConnection();
  dispatcher.onFrame(conn, Buffer.from([1, 2, 3]), true);
  assert.deepEqual(socket.closedWith, { code: 1003, reason: 'binary frames are not supported' });
  assert.equal(seen.frames, 0);
  assert.equal(socket.texts.length, 0);
});

test('text protocol: the original lines, errors included', () => {
  const { seen, metrics } = recordingMetrics();
  const dispatcher = new Dispatcher(LIMITS, controllableFibonacci().service, new OnlineUsers(), metrics, silentLogger, undefined);
  const { conn, socket } = fakeConnection({ protocol: 'text' });
  for (const frame of ['10', 'abc', '2000000', '{"type":"users"}']) dispatcher.onFrame(conn, text(frame), false);
  assert.deepEqual(socket.texts, [
    'Fibonacci(10) = 20',
    'Error: Only numbers are accepted.',
    'Error: n must be between -1000000 and 1000000.',
    'Error: Only numbers are accepted.',
  ]);
  assert.deepEqual(seen.errors, ['INVALID_NUMBER', 'OUT_OF_RANGE', 'INVALID_NUMBER']);
});

test('users: the reply follows presence, and its body is rebuilt only when presence changed', () => {
  let listed = 0;
  const online = new (class extends OnlineUsers {
    override list(limit: number, after?: string) {
      listed++;
      return super.list(limit, after);
    }
  })();
  const dispatcher = new Dispatcher(LIMITS, controllableFibonacci().service, online, recordingMetrics().metrics, silentLogger, undefined);
  const { conn, socket } = fakeConnection();
  online.apply('bob', 'Bob', 1, Date.UTC(2026, 0, 1));
  dispatcher.onFrame(conn, text('{"type":"users","id":1}'), false);
  dispatcher.onFrame(conn, text('{"type":"users","id":2}'), false);
  online.apply('alice', 'Alice', 1, Date.UTC(2026, 0, 2));
  dispatcher.onFrame(conn, text('{"type":"users","id":3}'), false);
  assert.equal(listed, 2, 'built for the first request and again after the change, not for the second');
  const [first, second, third] = socket.messages;
  assert.deepEqual(first, { type: 'users', id: 1, online: 1, users: [{ id: 'bob', name: 'Bob', sessions: 1, since: '2026-01-01T00:00:00.000Z' }] });
  assert.deepEqual(second!.users, first!.users);
  assert.deepEqual(
    (third!.users as { id: string }[]).map((u) => u.id),
    ['alice', 'bob'],
    'ordered by name, and the new user is there',
  );
});
