// Admission (docs/design.md §3, §6) without sockets: origin rule, name rule, JWT in both places,
// text-protocol clientId, the connection caps. Tokens are signed with jose, as a real issuer would.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SignJWT, UnsecuredJWT } from 'jose';
import { loadConfig } from '../../../src/config.js';
import { TokenVerifier } from '../../../src/auth/token-verifier.js';
import { Admission, guestName, originAllowed, type AdmissionDecision, type UpgradeRequest } from '../../../src/gateway/admission.js';
import { storableText } from '../../../src/presence/storable-text.js';
import { NAME_PATTERN } from '../../../src/protocol/names.js';
import { silentLogger } from '../../helpers/logger.js';

const SECRET = 'a-test-secret-of-at-least-32-chars!!';
const key = new TextEncoder().encode(SECRET);

function request(overrides: Partial<Omit<UpgradeRequest, 'query'>> & { query?: URLSearchParams | string } = {}): UpgradeRequest {
  const { query, ...rest } = overrides;
  return {
    protocol: 'json',
    clientId: undefined,
    origin: undefined,
    host: '127.0.0.1:8000',
    authorization: undefined,
    remoteAddr: '127.0.0.1',
    ...rest,
    query: query instanceof URLSearchParams ? query : new URLSearchParams(query ?? ''),
  };
}

/** Admission as the app builds it: open mode, or HS256 tokens; caps high enough not to matter here. */
const openAdmission = () => new Admission(loadConfig({}), undefined);
const tokenAdmission = () => {
  const config = loadConfig({ AUTH_JWT_SECRET: SECRET });
  return new Admission(config, new TokenVerifier(config.auth!, silentLogger));
};

const sign = (claims: Record<string, unknown>, exp: string | number = '1h', alg = 'HS256', secret = key) =>
  new SignJWT(claims).setProtectedHeader({ alg }).setSubject(String(claims.sub ?? 'user-1')).setIssuedAt().setExpirationTime(exp).sign(secret);

test('originAllowed: same origin by default, no Origin allowed', () => {
  assert.equal(originAllowed(undefined, undefined, 'example.com'), true);
  assert.equal(originAllowed(undefined, 'http://127.0.0.1:8000', '127.0.0.1:8000'), true);
  assert.equal(originAllowed(undefined, 'https://Example.COM', 'example.com'), true);
  assert.equal(originAllowed(undefined, 'https://example.com:443', 'example.com'), true); // default port is dropped
  assert.equal(originAllowed(undefined, 'http://127.0.0.1:8001', '127.0.0.1:8000'), false);
  assert.equal(originAllowed(undefined, 'http://evil.example', '127.0.0.1:8000'), false);
  assert.equal(originAllowed(undefined, 'http://127.0.0.1:8000.evil.example', '127.0.0.1:8000'), false);
  assert.equal(originAllowed(undefined, 'null', '127.0.0.1:8000'), false);
  assert.equal(originAllowed(undefined, 'not a url', '127.0.0.1:8000'), false);
  assert.equal(originAllowed(undefined, 'http://127.0.0.1:8000', undefined), false);
});

test('originAllowed: an explicit list replaces the rule; * allows all', () => {
  const list = ['https://app.example', 'http://localhost:3000'];
  assert.equal(originAllowed(list, 'https://app.example', 'other:1'), true);
  assert.equal(originAllowed(list, 'http://localhost:3000', 'localhost:3000'), true);
  assert.equal(originAllowed(list, 'http://127.0.0.1:8000', '127.0.0.1:8000'), false, 'same origin no longer implied');
  assert.equal(originAllowed(list, 'https://app.example.evil', 'x'), false);
  assert.equal(originAllowed(list, undefined, 'x'), true);
  assert.equal(originAllowed('*', 'http://anything.example', '127.0.0.1:8000'), true);
});

test('NAME_PATTERN: 1-32 Unicode letters, digits, space . _ -', () => {
  for (const ok of ['alice', 'Zoë 李', 'a', 'x'.repeat(32), 'Ünïcödé_name-1.2', 'مرحبا', '٣٤', 'Ωμέγα']) assert.ok(NAME_PATTERN.test(ok), ok);
  for (const bad of ['', 'x'.repeat(33), '<script>', 'a/b', 'a\nb', 'tab\t', 'emoji😀', 'quote"', "it's", 'a&b', '\u200b']) {
    assert.ok(!NAME_PATTERN.test(bad), JSON.stringify(bad));
  }
  for (let i = 0; i < 50; i++) assert.match(guestName(), /^guest-[a-z0-9]{6}$/);
});

test('open mode: name from ?name=, guest by default, invalid → 400', async () => {
  const gate = openAdmission();
  const named = await gate.check(request({ query: 'name=Zo%C3%AB%20%E6%9D%8E' }));
  assert.deepEqual(named, { ok: true, identity: { userId: 'Zoë 李', name: 'Zoë 李', expiresAt: undefined, presence: true } });
  const guest = await gate.check(request({ query: 'presence=0' }));
  assert.ok(guest.ok && /^guest-/.test(guest.identity.name) && guest.identity.presence === false);
  for (const query of ['name=', `name=${'x'.repeat(33)}`, 'name=%3Cscript%3E']) {
    const refused = await gate.check(request({ query }));
    assert.equal(refused.ok ? 200 : refused.status, 400, query);
  }
  const origin = await gate.check(request({ origin: 'http://evil.example', query: 'name=x' }));
  assert.equal(origin.ok ? 200 : origin.status, 403);
});

test('text protocol: clientId rule → 400, else id = name = clientId', async () => {
  const gate = openAdmission();
  const ok = await gate.check(request({ protocol: 'text', clientId: 'client_1' }));
  assert.deepEqual(ok, { ok: true, identity: { userId: 'client_1', name: 'client_1', expiresAt: undefined, presence: true } });
  for (const clientId of ['', 'a b', 'x'.repeat(65), '<script>', undefined]) {
    const refused = await gate.check(request({ protocol: 'text', clientId }));
    assert.equal(refused.ok ? 200 : refused.status, 400, String(clientId));
  }
});

test('auth mode: a good HS256 token in the query or the Authorization header', async () => {
  const gate = tokenAdmission();
  const token = await sign({ sub: 'u-42', name: '<img src=x onerror=alert(1)>' });
  const viaQuery = await gate.check(request({ query: `token=${token}` }));
  assert.ok(viaQuery.ok);
  assert.equal(viaQuery.identity.userId, 'u-42');
  assert.equal(viaQuery.identity.name, '<img src=x onerror=alert(1)>', 'any text, rendered as text by clients');
  assert.ok(viaQuery.identity.expiresAt! > Date.now() + 3_500_000);
  const viaHeader = await gate.check(request({ authorization: `Bearer ${token}` }));
  assert.ok(viaHeader.ok && viaHeader.identity.userId === 'u-42');
  // ?name= is ignored in auth mode: the token decides.
  const named = await gate.check(request({ query: `token=${token}&name=admin` }));
  assert.ok(named.ok && named.identity.name === '<img src=x onerror=alert(1)>');
  // No name claim → the sub.
  const bare = await gate.check(request({ query: `token=${await sign({ sub: 'u-7' })}` }));
  assert.ok(bare.ok && bare.identity.name === 'u-7');
  // Text protocol needs the token too.
  const text = await gate.check(request({ protocol: 'text', clientId: 'c1', authorization: `Bearer ${token}` }));
  assert.ok(text.ok && text.identity.userId === 'u-42');
  const textNoToken = await gate.check(request({ protocol: 'text', clientId: 'c1' }));
  assert.equal(textNoToken.ok ? 200 : textNoToken.status, 401);
});

test('auth mode: missing, malformed, expired, unsigned, wrong-key and wrong-alg tokens → 401', async () => {
  const gate = tokenAdmission();
  const otherKey = new TextEncoder().encode('another-secret-that-is-long-enough-for-hs512-0123456789abcdef');
  const good = await sign({ sub: 'u' });
  const tampered = good.slice(0, -2) + (good.endsWith('AA') ? 'BB' : 'AA');
  const payloadSwap = (() => {
    const [h, , s] = good.split('.');
    const p = Buffer.from(JSON.stringify({ sub: 'admin', exp: Math.floor(Date.now() / 1000) + 3600 })).toString('base64url');
    return `${h}.${p}.${s}`;
  })();
  const tokens: Record<string, string> = {
    expired: await sign({ sub: 'u' }, Math.floor(Date.now() / 1000) - 10),
    'alg none': new UnsecuredJWT({ sub: 'u' }).setExpirationTime('1h').encode(),
    'HS256 with another key': await sign({ sub: 'u' }, '1h', 'HS256', otherKey),
    'HS512 with another key': await sign({ sub: 'u' }, '1h', 'HS512', otherKey),
    'HS512 with the right key': await sign({ sub: 'u' }, '1h', 'HS512'),
    'HS384 with the right key': await sign({ sub: 'u' }, '1h', 'HS384'),
    'tampered signature': tampered,
    'swapped payload': payloadSwap,
    'empty sub': await sign({ sub: '' }),
    'sub too long': await sign({ sub: 'x'.repeat(129) }),
    'not a JWT': 'hello',
    'three dots': 'a.b.c',
  };
  const missing = await gate.check(request());
  assert.deepEqual(missing, { ok: false, status: 401, code: 'UNAUTHORIZED', message: 'missing token' });
  for (const [what, token] of Object.entries(tokens)) {
    for (const placed of [{ query: `token=${encodeURIComponent(token)}` }, { authorization: `Bearer ${token}` }]) {
      const decision = await gate.check(request(placed));
      assert.equal(decision.ok ? 200 : decision.status, 401, `${what} via ${Object.keys(placed)[0]}`);
    }
  }
  const expired = await gate.check(request({ query: `token=${tokens.expired}` }));
  assert.ok(!expired.ok && expired.message === 'token expired');
  const basic = await gate.check(request({ authorization: `Basic ${Buffer.from('u:p').toString('base64')}` }));
  assert.equal(basic.ok ? 200 : basic.status, 401);
  // Origin is checked first: a good token from a foreign page is still 403.
  const foreign = await gate.check(request({ origin: 'http://evil.example', query: `token=${good}` }));
  assert.equal(foreign.ok ? 200 : foreign.status, 403);
});

test('config: AUTH_JWT_SECRET shorter than 32 characters stops start-up', () => {
  assert.throws(() => loadConfig({ AUTH_JWT_SECRET: 'x'.repeat(31) }), /AUTH_JWT_SECRET/);
  assert.doesNotThrow(() => loadConfig({ AUTH_JWT_SECRET: 'x'.repeat(32) }));
  assert.throws(() => loadConfig({ ALLOWED_ORIGINS: 'https://a.example/path' }), /ALLOWED_ORIGINS/);
  assert.deepEqual(loadConfig({ ALLOWED_ORIGINS: 'https://a.example, http://b.example:81' }).allowedOrigins, ['https://a.example', 'http://b.example:81']);
  assert.equal(loadConfig({ ALLOWED_ORIGINS: '*' }).allowedOrigins, '*');
});

test('storableText: U+0000 and lone surrogates become U+FFFD, everything else is kept', () => {
  assert.equal(storableText('plain Zoë 李 😀 <b>'), 'plain Zoë 李 😀 <b>');
  assert.equal(storableText('a\u0000b'), 'a\uFFFDb');
  assert.equal(storableText('\ud83d'), '\uFFFD');
  assert.equal(storableText('x\ude00y'), 'x\uFFFDy');
  assert.equal(storableText('\ude00\ud83d'), '\uFFFD\uFFFD');
  assert.equal(storableText('\ud83d\ude00'), '😀');
  assert.equal(storableText('\t\n\u001f\u007f'), '\t\n\u001f\u007f');
});

test('auth mode: a sub PostgreSQL cannot store → 401; such a name is made storable', async () => {
  const gate = tokenAdmission();
  for (const sub of ['a\u0000b', 'x\ud83d', '\ude00']) {
    const decision = await gate.check(request({ query: `token=${await sign({ sub })}` }));
    assert.equal(decision.ok ? 200 : decision.status, 401, JSON.stringify(sub));
  }
  const named = await gate.check(request({ query: `token=${await sign({ sub: 'u', name: 'n\u0000me' })}` }));
  assert.ok(named.ok && named.identity.name === 'n\uFFFDme');
  // Cut at 64 UTF-16 units inside a surrogate pair: no half character survives.
  const cut = await gate.check(request({ query: `token=${await sign({ sub: 'u', name: `${'a'.repeat(63)}😀` })}` }));
  assert.ok(cut.ok && cut.identity.name === `${'a'.repeat(63)}\uFFFD`);
});

test('caps: full → 503, per address → 429; a place is held from the decision until release()', () => {
  const admission = new Admission(loadConfig({ MAX_CONNECTIONS: '3', MAX_CONNECTIONS_PER_IP: '2' }), undefined);
  const from = (remoteAddr: string) => admission.check(request({ query: 'name=x', remoteAddr })) as AdmissionDecision;
  assert.ok(from('10.0.0.1').ok);
  assert.ok(from('10.0.0.1').ok);
  assert.deepEqual(from('10.0.0.1'), { ok: false, status: 429, code: 'TOO_MANY_CONNECTIONS', message: 'too many connections from this address' });
  assert.ok(from('10.0.0.2').ok);
  assert.deepEqual(from('10.0.0.3'), { ok: false, status: 503, code: 'SERVER_FULL', message: 'server full' });
  assert.equal(admission.count, 3);
  admission.release('10.0.0.1');
  assert.ok(from('10.0.0.1').ok, 'the address has room again');
  // A refusal holds nothing, and preview() never does.
  assert.equal(admission.count, 3);
  admission.release('10.0.0.2');
  assert.ok((admission.preview(request({ query: 'name=x', remoteAddr: '10.0.0.9' })) as AdmissionDecision).ok);
  assert.equal(admission.count, 2);
});

test('a place is checked again after a token check: the server may have filled meanwhile', async () => {
  const config = loadConfig({ AUTH_JWT_SECRET: SECRET, MAX_CONNECTIONS: '1' });
  const admission = new Admission(config, new TokenVerifier(config.auth!, silentLogger));
  const token = await sign({ sub: 'u' });
  const first = admission.check(request({ query: `token=${token}` }));
  const second = admission.check(request({ query: `token=${token}` }));
  const decisions = await Promise.all([first, second]);
  assert.deepEqual(decisions.map((d) => (d.ok ? 'ok' : d.code)), ['ok', 'SERVER_FULL']);
  assert.equal(admission.count, 1);
});

test('draining refuses every upgrade with 503 DRAINING', () => {
  const admission = openAdmission();
  admission.drain();
  assert.deepEqual(admission.check(request({ query: 'name=x' })), { ok: false, status: 503, code: 'DRAINING', message: 'server draining' });
});
