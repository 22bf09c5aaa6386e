// Protection, part 2 (auth mode, explicit origin list): HS256 JWT on both protocols, refused
// as plain HTTP 401 before any WebSocket exists, and the token-expiry close (1008).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { SignJWT, UnsecuredJWT } from 'jose';
import { startPulse, type RunningPulse } from '../helpers/pulse.js';
import { Probe, metricValue, rawUpgrade, recordedClose, sleep, type UpgradeResult } from '../helpers/raw-socket.js';

const SECRET = 'protection-test-secret-0123456789abcdef';
const KEY = new TextEncoder().encode(SECRET);
const OTHER_KEY = new TextEncoder().encode('a-different-secret-of-plenty-of-characters-for-hs512-use!!');
const ALLOWED = ['https://app.example', 'http://localhost:3000'];
let server: RunningPulse;

before(async () => {
  server = await startPulse({ AUTH_JWT_SECRET: SECRET, ALLOWED_ORIGINS: ALLOWED.join(','), PING_INTERVAL_MS: '60000' });
  // Expiry is timed below; PGlite's boot on this thread stalls the event loop, so let it finish.
  await server.ready();
}, { timeout: 180_000 });

after(async () => {
  await server?.stop();
});

function sign(claims: { sub?: string; name?: string }, exp: string | number = '1h', alg = 'HS256', key = KEY): Promise<string> {
  const jwt = new SignJWT(claims).setProtectedHeader({ alg }).setIssuedAt().setExpirationTime(exp);
  if (claims.sub !== undefined) jwt.setSubject(claims.sub);
  return jwt.sign(key);
}

async function settle(timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (server.pulse.gateway.connectionCount !== 0) {
    if (Date.now() > deadline) throw new Error(`connections still open: ${server.pulse.gateway.connectionCount}`);
    await sleep(20);
  }
}

function status(result: UpgradeResult): number {
  result.ws?.destroy();
  return result.status;
}

describe('upgrade checks in auth mode', () => {
  test('missing, bad, expired, unsigned and wrong-algorithm tokens → 401 on both protocols', async () => {
    const good = await sign({ sub: 'u1' });
    const bad: Record<string, string> = {
      'garbage': 'not-a-token',
      'expired': await sign({ sub: 'u1' }, Math.floor(Date.now() / 1000) - 5),
      'alg none': new UnsecuredJWT({ sub: 'u1' }).setExpirationTime('1h').encode(),
      'HS256, other key': await sign({ sub: 'u1' }, '1h', 'HS256', OTHER_KEY),
      'HS512, other key': await sign({ sub: 'u1' }, '1h', 'HS512', OTHER_KEY),
      'HS512, right key': await sign({ sub: 'u1' }, '1h', 'HS512'),
      'no sub': await sign({ name: 'nobody' }),
      'tampered': `${good.slice(0, good.lastIndexOf('.') + 1)}${'A'.repeat(43)}`,
    };
    const REASONS: Record<string, string> = {
      expired: 'token expired',
      'alg none': 'token algorithm not allowed',
      'HS512, other key': 'token algorithm not allowed',
      'HS512, right key': 'token algorithm not allowed',
      'no sub': 'token has no usable "sub"',
    };
    const before401 = await metricValue(server.baseUrl, 'pulse_upgrades_rejected_total', { status: '401' });
    assert.equal(status(await rawUpgrade(server.port, '/ws')), 401, 'no token');
    assert.equal(status(await rawUpgrade(server.port, '/ws/c1')), 401, 'no token, text protocol');
    assert.equal(status(await rawUpgrade(server.port, '/ws', { Authorization: 'Bearer' })), 401, 'empty bearer');
    assert.equal(status(await rawUpgrade(server.port, '/ws', { Authorization: `Basic ${Buffer.from('u1:pw').toString('base64')}` })), 401, 'basic');
    let refused = 4;
    for (const [what, token] of Object.entries(bad)) {
      const viaQuery = await rawUpgrade(server.port, `/ws?token=${encodeURIComponent(token)}`);
      assert.equal(viaQuery.ws, undefined, what);
      assert.equal(viaQuery.status, 401, `${what} in ?token=`);
      assert.deepEqual(JSON.parse((viaQuery as { body: string }).body), {
        statusCode: 401,
        code: 'UNAUTHORIZED',
        error: 'Unauthorized',
        message: REASONS[what] ?? 'invalid token',
      }, `${what}: the HTTP error body`);
      assert.equal(status(await rawUpgrade(server.port, '/ws', { Authorization: `Bearer ${token}` })), 401, `${what} as Bearer`);
      assert.equal(status(await rawUpgrade(server.port, `/ws/c1?token=${encodeURIComponent(token)}`)), 401, `${what}, text protocol`);
      refused += 3;
    }
    assert.equal(await metricValue(server.baseUrl, 'pulse_upgrades_rejected_total', { status: '401' }), before401 + refused);
    assert.equal(server.pulse.gateway.connectionCount, 0);
  });

  test('a good token in ?token= or Authorization: Bearer → user id = sub, name = name claim', async () => {
    const token = await sign({ sub: 'user-42', name: 'Zoë <b>李</b>' });
    const viaQuery = await Probe.open(`${server.wsUrl}?token=${token}&name=ignored`);
    assert.deepEqual(viaQuery.welcome!.user, { id: 'user-42', name: 'Zoë <b>李</b>' });
    const viaHeader = await Probe.open(server.wsUrl, { headers: { Authorization: `Bearer ${token}` } });
    assert.deepEqual(viaHeader.welcome!.user, { id: 'user-42', name: 'Zoë <b>李</b>' });
    // Both are one user with two sessions.
    const reply = await viaHeader.request('{"type":"users","id":"u"}');
    assert.deepEqual(reply.users, [{ id: 'user-42', name: 'Zoë <b>李</b>', sessions: 2, since: (reply.users as { since: string }[])[0]!.since }]);
    const nameless = await Probe.open(`${server.wsUrl}?token=${await sign({ sub: 'only-sub' })}`);
    assert.deepEqual(nameless.welcome!.user, { id: 'only-sub', name: 'only-sub' });
    const text = await Probe.open(`ws://127.0.0.1:${server.port}/ws/c1`, { headers: { Authorization: `Bearer ${token}` } });
    text.send('10');
    await text.until(() => text.texts.includes('Fibonacci(10) = 55'), 'the text-protocol answer');
    for (const probe of [viaQuery, viaHeader, nameless, text]) await probe.close();
    await settle();
  });

  test('ALLOWED_ORIGINS replaces the same-origin rule; origin is checked before the token', async () => {
    const token = await sign({ sub: 'o1' });
    for (const origin of ALLOWED) {
      const ok = await rawUpgrade(server.port, `/ws?token=${token}`, { Origin: origin });
      assert.equal(status(ok), 101, origin);
    }
    assert.equal(status(await rawUpgrade(server.port, `/ws?token=${token}`)), 101, 'no Origin');
    for (const origin of [`http://127.0.0.1:${server.port}`, 'https://app.example:8443', 'http://app.example', 'https://evil.example']) {
      assert.equal(status(await rawUpgrade(server.port, `/ws?token=${token}`, { Origin: origin })), 403, origin);
      assert.equal(status(await rawUpgrade(server.port, '/ws', { Origin: origin })), 403, `${origin}, no token: 403 first`);
    }
    await settle();
  });
});

describe('the pre-check in auth mode', () => {
  test('GET /api/admission judges the token as the upgrade does', async () => {
    const check = async (query: string) => {
      const res = await fetch(`${server.baseUrl}/api/admission${query}`);
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };
    assert.deepEqual(await check(''), { status: 401, body: { statusCode: 401, code: 'UNAUTHORIZED', error: 'Unauthorized', message: 'missing token' } });
    const expired = await check(`?token=${await sign({ sub: 'u1' }, Math.floor(Date.now() / 1000) - 5)}`);
    assert.deepEqual([expired.status, expired.body.message], [401, 'token expired']);
    const good = await check(`?token=${await sign({ sub: 'u-9', name: 'Nine' })}`);
    assert.deepEqual(good, { status: 200, body: { ok: true, user: { id: 'u-9', name: 'Nine' } } });
  });
});

describe('token expiry', () => {
  test('a session is closed with 1008 within about 1 s of the token exp', async () => {
    const closes1008 = await metricValue(server.baseUrl, 'pulse_closes_total', { code: '1008' });
    const expSeconds = Math.floor(Date.now() / 1000) + 3; // 2 to 3 s from now
    const short = await Probe.open(`${server.wsUrl}?token=${await sign({ sub: 'short', name: 'short' }, expSeconds)}`);
    const long = await Probe.open(`${server.wsUrl}?token=${await sign({ sub: 'long', name: 'long' }, '1h')}`);
    assert.deepEqual(short.welcome!.user, { id: 'short', name: 'short' });
    // Still served right up to exp.
    assert.equal((await short.request('{"type":"fibonacci","n":10}')).value, '55');

    const closed = await short.waitClosed(10_000);
    const lateBy = Date.now() - expSeconds * 1000;
    assert.equal(closed.code, 1008);
    assert.equal(closed.reason, 'token expired');
    assert.ok(lateBy >= -50, `closed ${-lateBy} ms before exp`);
    assert.ok(lateBy < 2_000, `closed ${lateBy} ms after exp (docs/design.md §6: within 1 s)`);
    await sleep(200);
    assert.equal(long.closed, undefined, 'a token valid for an hour keeps its session');
    assert.equal((await long.request('{"type":"fibonacci","n":11}')).value, '89');
    assert.equal(await metricValue(server.baseUrl, 'pulse_closes_total', { code: '1008' }), closes1008 + 1);
    assert.equal(server.pulse.presence.localSessions, 1);
    // The session row records the code the server sent.
    assert.deepEqual(await recordedClose(server.baseUrl, 'short'), { closeCode: 1008, closeReason: 'token expired' });
    // The expired token can no longer open a session.
    const again = await rawUpgrade(server.port, `/ws?token=${await sign({ sub: 'short' }, expSeconds)}`);
    assert.equal(status(again), 401);
    await long.close();
    await settle();
  });
});

describe('text the database cannot store', () => {
  test('a NUL in a close reason or a name claim does not stop the session writes', async () => {
    const failures = await metricValue(server.baseUrl, 'pulse_db_write_failures_total');
    // Any client chooses its close reason; U+0000 is valid UTF-8 there.
    const closer = await Probe.open(`${server.wsUrl}?token=${await sign({ sub: 'closer' })}`);
    closer.ws.close(4000, 'bye\u0000now');
    await closer.waitClosed();
    assert.deepEqual(await recordedClose(server.baseUrl, 'closer'), { closeCode: 4000, closeReason: 'bye\uFFFDnow' });
    // A name claim with U+0000, and one cut at 64 UTF-16 units inside a surrogate pair.
    const nul = await Probe.open(`${server.wsUrl}?token=${await sign({ sub: 'nul-name', name: 'x\u0000y' })}`);
    assert.deepEqual(nul.welcome!.user, { id: 'nul-name', name: 'x\uFFFDy' });
    const cut = await Probe.open(`${server.wsUrl}?token=${await sign({ sub: 'cut-name', name: `${'a'.repeat(63)}😀` })}`);
    assert.deepEqual(cut.welcome!.user, { id: 'cut-name', name: `${'a'.repeat(63)}\uFFFD` });
    await nul.close();
    await cut.close();
    assert.equal((await recordedClose(server.baseUrl, 'nul-name')).closeCode, 1000);
    assert.equal((await recordedClose(server.baseUrl, 'cut-name')).closeCode, 1000);
    // A sub that cannot be stored as it is is refused rather than altered.
    assert.equal(status(await rawUpgrade(server.port, `/ws?token=${await sign({ sub: 'a\u0000b' })}`)), 401);
    assert.equal(await metricValue(server.baseUrl, 'pulse_db_write_failures_total'), failures, 'no failed database batch');
    await settle();
  });
});
