// The gateway's connection lifecycle without a network: accept (session, listeners, welcome),
// frames routed to dispatch, close (session closed with the right code, place given back, text
// clients told), token expiry and drain.

import assert from 'node:assert/strict';
import { mock, test } from 'node:test';
import { loadConfig } from '../../../src/config.js';
import { Admission, type Identity } from '../../../src/gateway/admission.js';
import type { Connection } from '../../../src/gateway/connection.js';
import { Gateway, type GatewayPresence } from '../../../src/gateway/gateway.js';
import { OnlineUsers } from '../../../src/presence/online-users.js';
import { FakeSocket, fakeConnection } from '../../helpers/fake-socket.js';
import { gatewayMetrics } from '../../helpers/gateway-metrics.js';
import { silentLogger } from '../../helpers/logger.js';


function setup() {
  const config = loadConfig({ MAX_CONNECTIONS: '10' });
  const admission = new Admission(config, undefined);
  const sessions = { opened: [] as Connection[], closed: [] as { id: string; code: number | null; reason: string | null }[] };
  const presence: GatewayPresence = {
    instanceId: '00000000-0000-4000-8000-000000000001',
    onlineUsers: new OnlineUsers(),
    open: (session) => void sessions.opened.push(session as Connection),
    close: (session, code, reason) => void sessions.closed.push({ id: session.id, code, reason }),
    takeChanges: () => undefined,
  };
  const counted = { opened: 0, closed: [] as number[] };
  const metrics = gatewayMetrics({
    connectionOpened: () => void counted.opened++,
    connectionClosed: (_protocol, code) => void counted.closed.push(code),
  });
  const fibonacci = { compute: (n: number) => ({ n, value: String(n), digits: String(n).length }) };
  const gateway = new Gateway({ config, admission, presence, fibonacci, tokens: undefined, metrics, log: silentLogger });
  /** Admits and accepts one connection, as upgrade.ts would. */
  const connect = (protocol: 'json' | 'text', userId: string, extra: Partial<Identity> = {}) => {
    const decision = admission.check({
      protocol,
      clientId: protocol === 'text' ? userId : undefined,
      query: new URLSearchParams(protocol === 'json' ? `name=${userId}` : ''),
      origin: undefined,
      host: 'localhost',
      authorization: undefined,
      remoteAddr: '10.0.0.1',
    });
    assert.ok(!(decision instanceof Promise) && decision.ok);
    const socket = new FakeSocket();
    gateway.accept(socket.asWebSocket(), protocol, { ...decision.identity, ...extra }, '10.0.0.1', 'test-agent');
    return socket;
  };
  return { gateway, admission, sessions, counted, connect };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

test('accept: the session opens in presence and the welcome is the first frame', () => {
  const { gateway, sessions, counted, connect } = setup();
  const socket = connect('json', 'ada');
  assert.equal(gateway.connectionCount, 1);
  assert.equal(counted.opened, 1);
  const [session] = sessions.opened;
  assert.equal(session!.userId, 'ada');
  assert.equal(session!.userAgent, 'test-agent');
  const [welcome] = socket.messages;
  assert.equal(welcome!.type, 'welcome');
  assert.equal(welcome!.protocol, 1);
  assert.equal(welcome!.sessionId, session!.id);
  assert.equal(welcome!.instanceId, '00000000-0000-4000-8000-000000000001');
  assert.deepEqual(welcome!.user, { id: 'ada', name: 'ada' });
  assert.deepEqual(welcome!.limits, { maxN: 1_000_000, maxMessageBytes: 4096, messagesPerSecond: 20 });
  // The text protocol has no welcome.
  assert.equal(connect('text', 'c1').texts.length, 0);
});

test('frames reach dispatch through the one shared listener', () => {
  const { connect } = setup();
  const socket = connect('json', 'ada');
  socket.emit('message', Buffer.from('{"type":"fibonacci","n":12,"id":"q"}'), false);
  assert.deepEqual(socket.messages.at(-1), { type: 'fibonacci', id: 'q', n: 12, value: '12', digits: 2 });
});

test('close: the server\'s own code is recorded (not the peer\'s echo), and the place is given back', async () => {
  const { gateway, admission, sessions, counted, connect } = setup();
  const socket = connect('json', 'ada');
  assert.equal(admission.count, 1);
  socket.emit('message', Buffer.from([0]), true); // binary: the server closes with 1003
  socket.peerClosed(1000, 'ok'); // the peer's answer carries its own code
  await settle();
  assert.deepEqual(sessions.closed, [{ id: sessions.opened[0]!.id, code: 1003, reason: 'binary frames are not supported' }]);
  assert.deepEqual(counted.closed, [1003]);
  assert.equal(admission.count, 0);
  assert.equal(gateway.connectionCount, 0);
});

test('close: the peer\'s code and reason, made storable; text clients hear that a text client left', () => {
  const { sessions, connect } = setup();
  const alice = connect('text', 'alice');
  const bob = connect('text', 'bob');
  const ada = connect('json', 'ada');
  alice.peerClosed(4000, 'bye\u0000now');
  assert.deepEqual(sessions.closed.map((c) => [c.code, c.reason]), [[4000, 'bye\uFFFDnow']]);
  assert.deepEqual(bob.texts, ['Client #alice has left the chat']);
  assert.ok(ada.messages.every((m) => m.type === 'welcome'), 'JSON clients are told through presence instead');
});

test('an expiring token closes the connection with 1008 at its exp', () => {
  mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 1_000_000 });
  try {
    const { connect } = setup();
    const socket = connect('json', 'ada', { expiresAt: 1_000_000 + 60_000 });
    mock.timers.tick(59_999);
    assert.equal(socket.closedWith, undefined);
    mock.timers.tick(1);
    assert.deepEqual(socket.closedWith, { code: 1008, reason: 'token expired' });
  } finally {
    mock.timers.reset();
  }
});

test('an expiry set after the connection closed (a refresh checked late) arms nothing', () => {
  mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 1_000_000 });
  try {
    const { conn, socket } = fakeConnection();
    socket.peerClosed(1000, '');
    conn.expireAt(1_000_000 + 60_000);
    mock.timers.tick(60_000);
    assert.equal(socket.closedWith, undefined, 'no timer fired a 1008 at a connection that is gone');
  } finally {
    mock.timers.reset();
  }
});

test('drain: everyone gets 1001, upgrades are refused from then on, and it ends when all are gone', async () => {
  const { gateway, admission, sessions, connect } = setup();
  const sockets = [connect('json', 'a'), connect('json', 'b'), connect('text', 'c')];
  for (const socket of sockets) socket.echoCloses = true;
  await gateway.drain(Date.now() + 5_000);
  for (const socket of sockets) assert.deepEqual(socket.closedWith, { code: 1001, reason: 'server shutting down' });
  assert.equal(gateway.connectionCount, 0);
  assert.deepEqual(sessions.closed.map((c) => c.code), [1001, 1001, 1001]);
  assert.equal(gateway.isDraining, true);
  const late = admission.check({ protocol: 'json', clientId: undefined, query: new URLSearchParams(), origin: undefined, host: 'h', authorization: undefined, remoteAddr: '10.0.0.2' });
  assert.deepEqual(late, { ok: false, status: 503, code: 'DRAINING', message: 'server draining' });
  // No "has left the chat" during a drain: every text client is going too.
  assert.equal(sockets[2]!.texts.length, 0);
});
