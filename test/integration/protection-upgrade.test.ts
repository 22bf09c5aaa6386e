// Protection, part 1 (open mode): upgrade checks answered as plain HTTP before any WebSocket
// exists, the connection caps, dead peers (ping/pong), and the hardening of the web page and
// REST API. One real server for the whole file: PGlite is costly to start.

import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { startPulse, type RunningPulse } from '../helpers/pulse.js';
import {
  Opcode,
  Probe,
  encodeClientFrame,
  metricValue,
  rawOpen,
  rawUpgrade,
  recordedClose,
  sleep,
  type RawWebSocket,
  type UpgradeResult,
} from '../helpers/raw-socket.js';

// Short enough to see a dead peer go within seconds; long enough that a stall of this test
// process (the peers run in it too) is unlikely to hold a pong back for a whole interval.
const PING_INTERVAL_MS = 1_000;
let server: RunningPulse;

before(async () => {
  server = await startPulse({
    MAX_CONNECTIONS: '4',
    MAX_CONNECTIONS_PER_IP: '2',
    PING_INTERVAL_MS: String(PING_INTERVAL_MS),
  });
  // PGlite boots in WebAssembly on this thread and stalls the event loop for seconds meanwhile,
  // longer than this file's short ping interval: healthy test clients would be dropped.
  await server.ready();
}, { timeout: 180_000 });

after(async () => {
  await server?.stop();
});

/** Waits until the server holds exactly `count` connections (closes are asynchronous). */
async function settle(count = 0, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (server.pulse.gateway.connectionCount !== count) {
    if (Date.now() > deadline) throw new Error(`expected ${count} connections, have ${server.pulse.gateway.connectionCount}`);
    await sleep(20);
  }
}

/** A refused upgrade: plain HTTP with that status and a small JSON body, never a 101. */
function assertRefused(result: UpgradeResult, status: number, what: string): void {
  result.ws?.destroy();
  assert.equal(result.status, status, `${what}: HTTP ${result.status}`);
  assert.ok(!result.ws, `${what}: no WebSocket`);
  const body = JSON.parse((result as { body: string }).body) as Record<string, unknown>;
  assert.deepEqual(Object.keys(body), ['statusCode', 'code', 'error', 'message'], `${what}: the HTTP error body`);
  assert.equal(body.statusCode, status, what);
  assert.equal(result.headers['sec-websocket-accept'], undefined, `${what}: no handshake headers`);
}

async function assertAccepted(path: string, headers: Record<string, string> = {}): Promise<RawWebSocket> {
  const result = await rawUpgrade(server.port, path, headers);
  assert.equal(result.status, 101, `${path} ${JSON.stringify(headers)}: ${'body' in result ? result.body : ''}`);
  return result.ws!;
}

/** Opens, reads the welcome, closes; returns the welcome. */
async function welcomeOf(url: string): Promise<Record<string, unknown>> {
  const probe = await Probe.open(url);
  const welcome = probe.welcome!;
  await probe.close();
  await settle();
  return welcome;
}

describe('upgrade checks (open mode, same-origin rule)', () => {
  test('Origin must match Host; no Origin is fine', async () => {
    const port = server.port;
    for (const origin of [`http://localhost:${port}`, `http://127.0.0.1:${port + 1}`, 'http://evil.example', 'null', `http://127.0.0.1:${port}.evil.example`]) {
      assertRefused(await rawUpgrade(port, '/ws', { Origin: origin }), 403, `Origin ${origin}`);
      assertRefused(await rawUpgrade(port, '/ws/client1', { Origin: origin }), 403, `text protocol, Origin ${origin}`);
    }
    // Host and Origin agreeing on another name is same-origin too (behind a proxy, say).
    const agreeing = await assertAccepted('/ws', { Host: `pulse.example:${port}`, Origin: `http://pulse.example:${port}` });
    agreeing.destroy();
    const same = await assertAccepted('/ws', { Origin: `http://127.0.0.1:${port}` });
    same.destroy();
    const none = await assertAccepted('/ws');
    none.destroy();
    const text = await assertAccepted('/ws/client1', { Origin: `http://127.0.0.1:${port}` });
    text.destroy();
    await settle();
    assert.ok((await metricValue(server.baseUrl, 'pulse_upgrades_rejected_total', { status: '403' })) >= 10);
  });

  test('invalid names → 400; Unicode letters are a name', async () => {
    for (const name of ['', 'x'.repeat(33), '<script>', 'a/b', 'tab\there', 'emoji😀']) {
      assertRefused(await rawUpgrade(server.port, `/ws?name=${encodeURIComponent(name)}`), 400, `name ${JSON.stringify(name)}`);
    }
    const welcome = await welcomeOf(`${server.wsUrl}?name=${encodeURIComponent('Zoë 李')}`);
    assert.deepEqual(welcome.user, { id: 'Zoë 李', name: 'Zoë 李' });
    const longest = await welcomeOf(`${server.wsUrl}?name=${'n'.repeat(32)}`);
    assert.deepEqual(longest.user, { id: 'n'.repeat(32), name: 'n'.repeat(32) });
    const guest = await welcomeOf(server.wsUrl);
    assert.match((guest.user as { name: string }).name, /^guest-[a-z0-9]{6}$/);
  });

  test('text protocol: a bad clientId → 400', async () => {
    for (const clientId of ['a%20b', 'x'.repeat(65), '%3Cscript%3E', 'caf%C3%A9', 'a.b', '']) {
      assertRefused(await rawUpgrade(server.port, `/ws/${clientId}`), 400, `clientId ${clientId}`);
    }
    const ok = await Probe.open(`ws://127.0.0.1:${server.port}/ws/${'x'.repeat(64)}`);
    await sleep(200);
    assert.equal(ok.closed, undefined);
    await ok.close();
    await settle();
  });

  test('a plain GET of /ws is 426, not an upgrade', async () => {
    const res = await fetch(`${server.baseUrl}/ws`);
    assert.equal(res.status, 426);
    await res.arrayBuffer();
  });

  test('per-address cap → 429, server cap → 503, both released on close', async () => {
    await settle();
    const before429 = await metricValue(server.baseUrl, 'pulse_upgrades_rejected_total', { status: '429' });
    const before503 = await metricValue(server.baseUrl, 'pulse_upgrades_rejected_total', { status: '503' });
    const open: RawWebSocket[] = [];
    try {
      // These answer pings (PING_INTERVAL_MS is short in this file), so only the test closes them.
      const opened = async (path: string, localAddress?: string) => {
        const ws = await rawOpen(server.port, path, {}, localAddress);
        ws.answerPings = true;
        open.push(ws);
      };
      await opened('/ws?name=a1');
      await opened('/ws/a2');
      assertRefused(await rawUpgrade(server.port, '/ws?name=a3'), 429, 'third from 127.0.0.1');
      assertRefused(await rawUpgrade(server.port, '/ws/a3'), 429, 'third from 127.0.0.1, text protocol');
      // Without TRUST_PROXY a forwarded-for header changes nothing: the socket's address counts.
      assertRefused(await rawUpgrade(server.port, '/ws?name=a3', { 'X-Forwarded-For': '203.0.113.9' }), 429, 'spoofed X-Forwarded-For');
      // Another address has its own allowance, until the server itself is full (4).
      await opened('/ws?name=b1', '127.0.0.2');
      await opened('/ws?name=b2', '127.0.0.2');
      assertRefused(await rawUpgrade(server.port, '/ws?name=c1', {}, { localAddress: '127.0.0.3' }), 503, 'fifth connection');
      assert.equal(server.pulse.gateway.connectionCount, 4);
      assert.equal(await metricValue(server.baseUrl, 'pulse_upgrades_rejected_total', { status: '429' }), before429 + 3);
      assert.equal(await metricValue(server.baseUrl, 'pulse_upgrades_rejected_total', { status: '503' }), before503 + 1);
      // Closing one frees a place for its address and for the server.
      open.shift()!.destroy();
      await settle(3);
      await opened('/ws?name=a4');
      assertRefused(await rawUpgrade(server.port, '/ws?name=c2', {}, { localAddress: '127.0.0.3' }), 503, 'full again');
    } finally {
      for (const ws of open) ws.destroy();
    }
    await settle();
    const again = await rawOpen(server.port, '/ws?name=c3', {}, '127.0.0.3');
    again.destroy();
    await settle();
  });
});

describe('the pre-check GET /api/admission', () => {
  async function precheck(query: string, headers: Record<string, string> = {}) {
    const res = await fetch(`${server.baseUrl}/api/admission${query}`, { headers });
    return { status: res.status, cors: res.headers.get('access-control-allow-origin'), body: (await res.json()) as Record<string, unknown> };
  }

  test('answers what an upgrade with the same parameters would get, readable from any origin', async () => {
    assert.deepEqual(await precheck('?name=ada'), { status: 200, cors: '*', body: { ok: true, user: { id: 'ada', name: 'ada' } } });
    assert.deepEqual(await precheck(''), { status: 200, cors: '*', body: { ok: true } }, 'a guest: the name is picked at the upgrade');
    for (const name of ['x²', '½', 'a'.repeat(40)]) {
      const refused = await precheck(`?name=${encodeURIComponent(name)}`);
      assert.equal(refused.status, 400, name);
      assert.equal(refused.body.code, 'INVALID_NAME', name);
      assert.equal(refused.cors, '*');
      assertRefused(await rawUpgrade(server.port, `/ws?name=${encodeURIComponent(name)}`), 400, `the upgrade agrees for ${name}`);
    }
    const foreign = await precheck('?name=ada', { Origin: 'http://evil.example' });
    assert.deepEqual([foreign.status, foreign.body.code, foreign.cors], [403, 'ORIGIN_NOT_ALLOWED', '*']);
  });

  test('takes no place: the caps count connections, not pre-checks', async () => {
    await settle();
    for (let i = 0; i < 10; i++) assert.equal((await precheck(`?name=p${i}`)).status, 200);
    const ws = await assertAccepted('/ws?name=after-prechecks');
    ws.destroy();
    await settle();
  });
});

describe('handshake details', () => {
  test('permessage-deflate is never negotiated, and a compressed frame is a protocol error (1002)', async () => {
    const result = await rawUpgrade(server.port, '/ws?name=deflate', { 'Sec-WebSocket-Extensions': 'permessage-deflate; client_max_window_bits' });
    assert.equal(result.status, 101);
    assert.equal(result.headers['sec-websocket-extensions'], undefined, 'no extension accepted');
    const ws = result.ws!;
    ws.answerPings = true;
    await ws.until(() => ws.texts.length > 0, 'welcome');
    const frame = encodeClientFrame(Opcode.TEXT, '10');
    frame[0] = frame[0]! | 0x40; // RSV1: "compressed"
    ws.write(frame);
    await ws.until(() => ws.closeCode !== undefined || ws.ended, 'a close');
    assert.equal(ws.closeCode, 1002);
    ws.destroy();
    await settle();
  });

  test('a handshake with an invalid Sec-WebSocket-Key is a plain 400 and opens no session', async () => {
    // A second, empty key header: the two are joined into a value that is no key.
    const result = await rawUpgrade(server.port, '/ws?name=nokey', { 'Sec-WebSocket-Key': '' });
    assert.equal(result.status, 400);
    assert.equal(result.ws, undefined);
    assert.equal(server.pulse.gateway.connectionCount, 0);
  });
});

describe('refused upgrades end their connection', () => {
  /** Sockets the HTTP server holds open, refused ones included. */
  const openSockets = () => new Promise<number>((resolve, reject) => server.pulse.app.server.getConnections((err, n) => (err ? reject(err) : resolve(n))));

  test('the server closes a refused connection even when the client keeps its side open', async () => {
    await settle();
    const before = await openSockets();
    const clients: Socket[] = [];
    try {
      for (const path of ['/ws?name=%3Cbad%3E', '/ws/a%20b', '/healthz']) {
        for (let i = 0; i < 5; i++) {
          const socket = connect({ port: server.port, host: '127.0.0.1', allowHalfOpen: true });
          clients.push(socket);
          socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`);
          socket.resume();
          await new Promise((resolve) => socket.once('end', resolve)); // the answer, then the server's FIN
        }
      }
      const deadline = Date.now() + 5_000;
      while ((await openSockets()) > before) {
        assert.ok(Date.now() < deadline, `${(await openSockets()) - before} refused sockets still open on the server`);
        await sleep(20);
      }
    } finally {
      for (const socket of clients) socket.destroy();
    }
  });

  test('a handshake ws refuses after admission gives its place back', async () => {
    await settle();
    // This file allows 2 connections per address: 5 refused handshakes must not use them up.
    for (let i = 0; i < 5; i++) {
      const refused = await rawUpgrade(server.port, '/ws?name=proto', { 'Sec-WebSocket-Protocol': 'not a token list,' }, { localAddress: '127.0.0.4' });
      assertRefused(refused, 400, 'a malformed Sec-WebSocket-Protocol');
    }
    const a = await rawOpen(server.port, '/ws?name=after1', {}, '127.0.0.4');
    const b = await rawOpen(server.port, '/ws?name=after2', {}, '127.0.0.4');
    a.destroy();
    b.destroy();
    await settle();
  });
});

describe('dead peers', () => {
  test(`a peer that never answers pings is dropped within about 2 × PING_INTERVAL_MS (${PING_INTERVAL_MS} ms)`, async () => {
    await settle();
    const closes1006 = await metricValue(server.baseUrl, 'pulse_closes_total', { code: '1006' });
    const healthy = await Probe.open(`${server.wsUrl}?name=healthy`);
    const ponging = await rawOpen(server.port, '/ws?name=ponging');
    ponging.answerPings = true;
    // From another address: the per-address cap of this file is 2.
    const silent = await rawOpen(server.port, '/ws?name=silent', {}, '127.0.0.2');
    const openedAt = Date.now();
    assert.equal(server.pulse.presence.localSessions, 3);

    await silent.until(() => silent.ended, 'the server to drop the silent peer', 10_000);
    const droppedAfter = Date.now() - openedAt;
    await settle(2);
    assert.ok(droppedAfter < 2 * PING_INTERVAL_MS + 2_000, `dropped after ${droppedAfter} ms (expected about ${2 * PING_INTERVAL_MS} ms)`);
    assert.ok(silent.frames.some((f) => f.opcode === Opcode.PING), 'the silent peer was pinged');
    assert.equal(silent.closeCode, undefined, 'terminated without a closing handshake');
    assert.equal(server.pulse.presence.localSessions, 2);
    const users = (await (await fetch(`${server.baseUrl}/api/users`)).json()) as { online: number; users: { id: string }[] };
    assert.deepEqual(users.users.map((u) => u.id).sort(), ['healthy', 'ponging']);
    assert.deepEqual(await recordedClose(server.baseUrl, 'silent'), { closeCode: 1006, closeReason: 'no pong within the ping interval' });
    assert.equal(await metricValue(server.baseUrl, 'pulse_closes_total', { code: '1006' }), closes1006 + 1);

    // Peers that answer stay, several ping intervals later.
    await sleep(3 * PING_INTERVAL_MS);
    assert.equal(healthy.closed, undefined);
    assert.equal(ponging.ended, false);
    assert.ok(ponging.frames.filter((f) => f.opcode === Opcode.PING).length >= 3, 'pinged repeatedly');
    assert.equal(server.pulse.presence.localSessions, 2);
    await healthy.close();
    ponging.destroy();
    await settle();
  });
});

describe('web page and REST API', () => {
  const STACK = /\bat [\w.<>]+ \(|\bat file:|\/work\/|node_modules|\.ts:\d+|\.js:\d+|[A-Z]:\\/;

  async function get(path: string, init?: RequestInit): Promise<{ status: number; headers: Headers; body: string }> {
    const res = await fetch(`${server.baseUrl}${path}`, init);
    const body = await res.text();
    assert.doesNotMatch(body, STACK, `${path}: no stack frames or file paths in ${body.slice(0, 300)}`);
    return { status: res.status, headers: res.headers, body };
  }

  async function jsonError(path: string, status: number, code?: string): Promise<void> {
    const res = await get(path);
    assert.equal(res.status, status, `${path}: ${res.body}`);
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/, path);
    const body = JSON.parse(res.body) as Record<string, unknown>;
    assert.equal(body.stack, undefined, path);
    if (code) assert.equal(body.code, code, path);
  }

  test('GET / has a CSP without unsafe-inline and nosniff', async () => {
    const res = await get('/');
    assert.equal(res.status, 200);
    const csp = res.headers.get('content-security-policy') ?? '';
    assert.match(csp, /default-src 'self'/);
    assert.match(csp, /script-src 'self'/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    // The page itself has no inline script for the CSP to forbid.
    assert.doesNotMatch(res.body, /<script(?![^>]*\bsrc=)[^>]*>/i);
    assert.doesNotMatch(res.body, /\son[a-z]+\s*=/i, 'no inline event handlers');
    for (const path of ['/api/users', '/healthz', '/api/fibonacci/10', '/nope']) {
      assert.equal((await get(path)).headers.get('x-content-type-options'), 'nosniff', path);
    }
  });

  test('a request Node cannot parse gets the one error body, with the same headers as any refusal', async () => {
    const socket = connect(server.port, '127.0.0.1');
    let answer = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (answer += chunk));
    const ended = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    socket.write('THIS IS NOT HTTP\r\n\r\n');
    await ended;
    const [head = '', body = ''] = answer.split('\r\n\r\n');
    assert.match(head, /^HTTP\/1\.1 400 Bad Request\r\n/);
    assert.match(head, /\r\nX-Content-Type-Options: nosniff\r\n/i);
    assert.match(head, /\r\nCache-Control: no-store\r\n/i);
    assert.deepEqual(JSON.parse(body), { statusCode: 400, code: 'INVALID_REQUEST', error: 'Bad Request', message: 'malformed HTTP request' });
  });

  test('REST input errors are 400 JSON without a stack', async () => {
    await jsonError('/api/users?limit=0', 400);
    await jsonError('/api/users?limit=abc', 400);
    await jsonError('/api/users?limit=1001', 400);
    await jsonError('/api/users?limit=-1', 400);
    await jsonError(`/api/users?after=${'x'.repeat(129)}`, 400);
    await jsonError('/api/users/alice/sessions?limit=501', 400);
    await jsonError('/api/users/alice/sessions?limit=0', 400);
    await jsonError('/api/users/a%00b/sessions', 400); // was a 500: PostgreSQL refuses U+0000
    await jsonError('/api/users/%zz/sessions', 400, 'INVALID_REQUEST'); // a bad escape: Fastify's own refusal, in the one body
    await jsonError(`/api/users/${'x'.repeat(129)}/sessions`, 414); // over Fastify's maxParamLength
    await jsonError('/api/fibonacci/abc', 400, 'INVALID_NUMBER');
    await jsonError('/api/fibonacci/1.5', 400, 'INVALID_NUMBER');
    await jsonError('/api/fibonacci/0x10', 400, 'INVALID_NUMBER');
    await jsonError('/api/fibonacci/1000001', 400, 'OUT_OF_RANGE');
    await jsonError('/api/fibonacci/-1000001', 400, 'OUT_OF_RANGE');
    await jsonError(`/api/fibonacci/${'9'.repeat(99)}`, 400, 'OUT_OF_RANGE');
    await jsonError(`/api/fibonacci/${'9'.repeat(500)}`, 414); // over Fastify's maxParamLength
    await jsonError('/no/such/route', 404);
    await jsonError('/api/fibonacci', 404);
  });

  test('valid REST requests still answer', async () => {
    assert.deepEqual(JSON.parse((await get('/api/fibonacci/10')).body), { n: 10, value: '55', digits: 2 });
    assert.deepEqual(JSON.parse((await get('/api/fibonacci/-8')).body), { n: -8, value: '-21', digits: 2 });
    assert.deepEqual(JSON.parse((await get('/api/fibonacci/%2B007')).body), { n: 7, value: '13', digits: 2 });
    const users = await get('/api/users?limit=5');
    assert.equal(users.status, 200);
    assert.equal(typeof (JSON.parse(users.body) as { online: unknown }).online, 'number');
    // Paging: past the limit the page says so and where to go on.
    const [p1, p2] = [await Probe.open(`${server.wsUrl}?name=page1`), await Probe.open(`${server.wsUrl}?name=page2`)];
    try {
      const first = JSON.parse((await get('/api/users?limit=1')).body) as { online: number; users: { id: string }[]; truncated?: boolean; next?: string };
      assert.deepEqual([first.online, first.users.length, first.truncated, first.next], [2, 1, true, first.users[0]!.id]);
      const second = JSON.parse((await get(`/api/users?limit=1&after=${first.next}`)).body) as { users: { id: string }[]; truncated?: boolean };
      assert.deepEqual([second.users.length, second.truncated], [1, undefined]);
    } finally {
      await p1.close();
      await p2.close();
      await settle();
    }
  });

  test('malformed and hostile requests never leak internals', async () => {
    const cases: [string, RequestInit | undefined][] = [
      ['/api/fibonacci/%E0%A4%A', undefined],
      ['/api/users?limit=%FF', undefined],
      ['/%2e%2e/package.json', undefined],
      ['/..%2f..%2fetc%2fpasswd', undefined],
      ['/api/users', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":' }],
      ['/api/users', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ x: 'y'.repeat(5000) }) }],
      ['/api/users', { method: 'DELETE' }],
    ];
    for (const [path, init] of cases) {
      const res = await get(path, init);
      assert.ok(res.status >= 400 && res.status < 500, `${init?.method ?? 'GET'} ${path}: ${res.status} ${res.body.slice(0, 200)}`);
      assert.doesNotMatch(res.body, /"name":\s*"pulse"|root:x:0/, `${path}: no file contents`);
    }
  });
});

describe('draining (last: stops the server)', () => {
  test('while clients are being closed with 1001, upgrades get 503 and /readyz 503', async () => {
    await settle();
    const probe = await Probe.open(`${server.wsUrl}?name=leaving`);
    // A raw client never answers the close frame, so the drain waits for it (up to its grace).
    const stubborn = await rawOpen(server.port, '/ws?name=stubborn', {}, '127.0.0.2');
    stubborn.answerPings = true;
    const stopping = server.stop();
    assert.equal((await probe.waitClosed()).code, 1001);
    await stubborn.until(() => stubborn.closeCode !== undefined, 'the close frame');
    assert.equal(stubborn.closeCode, 1001);
    const refused = await rawUpgrade(server.port, '/ws?name=late', {}, { localAddress: '127.0.0.3' });
    refused.ws?.destroy();
    assert.equal(refused.status, 503);
    assert.deepEqual(JSON.parse((refused as { body: string }).body), { statusCode: 503, code: 'DRAINING', error: 'Service Unavailable', message: 'server draining' });
    const ready = await fetch(`${server.baseUrl}/readyz`);
    assert.equal(ready.status, 503);
    await ready.arrayBuffer();
    await stopping;
    stubborn.destroy();
  });
});
