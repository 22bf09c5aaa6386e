// Identity providers: a JWKS served on loopback, key rotation, every refusal on both protocols,
// a single public key, and refreshing a token without reconnecting.

import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { SignJWT, UnsecuredJWT, exportJWK, exportSPKI, generateKeyPair, type CryptoKey, type JWK } from 'jose';
import { startPulse, type RunningPulse } from '../helpers/pulse.js';
import { Probe, rawUpgrade, sleep } from '../helpers/raw-socket.js';

const ISSUER = 'https://idp.example';
const AUDIENCE = 'pulse';

interface SigningKey {
  kid: string;
  privateKey: CryptoKey;
  jwk: JWK;
  pem: string;
}

async function signingKey(kid: string, alg: 'RS256' | 'ES256' = 'RS256'): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' }, pem: await exportSPKI(publicKey) };
}

/** The identity provider's JWKS endpoint: what it publishes, and how often it was asked. */
class JwksServer {
  keys: JWK[] = [];
  broken = false;
  fetches = 0;
  private readonly server: Server;

  constructor() {
    this.server = createServer((_request, response) => {
      this.fetches++;
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(this.broken ? '{"keys": [ not json' : JSON.stringify({ keys: this.keys }));
    });
  }

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/.well-known/jwks.json`;
  }

  stop(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

interface Claims {
  sub?: string;
  name?: string;
  iss?: string;
  aud?: string;
  exp?: number;
  nbf?: number;
  iat?: number;
}

const now = () => Math.floor(Date.now() / 1000);

function sign(key: SigningKey, claims: Claims = {}, alg = key.jwk.alg!): Promise<string> {
  const jwt = new SignJWT({ name: claims.name ?? 'Ada' })
    .setProtectedHeader({ alg, kid: key.kid })
    .setSubject(claims.sub ?? 'ada')
    .setIssuer(claims.iss ?? ISSUER)
    .setAudience(claims.aud ?? AUDIENCE)
    .setIssuedAt(claims.iat ?? now())
    .setExpirationTime(claims.exp ?? now() + 3600);
  if (claims.nbf !== undefined) jwt.setNotBefore(claims.nbf);
  return jwt.sign(key.privateKey);
}

/** The HTTP status an upgrade with this token gets, on the JSON protocol or the text protocol. */
async function upgradeStatus(server: RunningPulse, token: string, protocol: 'json' | 'text' = 'json'): Promise<{ status: number; message: string }> {
  const path = protocol === 'json' ? `/ws?token=${encodeURIComponent(token)}` : `/ws/c1?token=${encodeURIComponent(token)}`;
  const result = await rawUpgrade(server.port, path);
  result.ws?.destroy();
  return { status: result.status, message: 'body' in result ? ((JSON.parse(result.body) as { message: string }).message ?? '') : '' };
}

async function assertRefused(server: RunningPulse, token: string, message: string, what: string): Promise<void> {
  for (const protocol of ['json', 'text'] as const) {
    assert.deepEqual(await upgradeStatus(server, token, protocol), { status: 401, message }, `${what} (${protocol})`);
  }
}

describe('tokens from an identity provider (JWKS)', { timeout: 120_000 }, () => {
  const jwks = new JwksServer();
  let server: RunningPulse;
  let k1: SigningKey;
  let k2: SigningKey;

  before(async () => {
    [k1, k2] = await Promise.all([signingKey('k1'), signingKey('k2', 'ES256')]);
    jwks.keys = [k1.jwk];
    const url = await jwks.start();
    server = await startPulse({
      AUTH_JWKS_URL: url,
      AUTH_JWKS_COOLDOWN_MS: '300',
      AUTH_JWKS_CACHE_MAX_AGE_MS: '1500',
      AUTH_JWT_ISSUER: `https://other.example, ${ISSUER}`,
      AUTH_JWT_AUDIENCE: AUDIENCE,
    });
    await server.ready();
  });
  after(async () => {
    await server?.stop();
    await jwks.stop();
  });

  test('a token signed by a published key opens a session on both protocols; the user is its sub', async () => {
    const token = await sign(k1, { sub: 'u-1', name: 'Ada Lovelace' });
    const probe = await Probe.open(`${server.wsUrl}?token=${token}`);
    assert.deepEqual(probe.welcome!.user, { id: 'u-1', name: 'Ada Lovelace' });
    await probe.close();
    assert.equal((await upgradeStatus(server, token, 'text')).status, 101);
  });

  test('refused with 401: none, algorithm confusion, issuer, audience, expiry, not yet valid, issued in the future, unknown kid', async () => {
    const unsigned = new UnsecuredJWT({ sub: 'ada' }).setIssuer(ISSUER).setAudience(AUDIENCE).setExpirationTime('1h').encode();
    await assertRefused(server, unsigned, 'token algorithm not allowed', 'alg none');
    // HS256 with the provider's public key as the HMAC secret: the attacker knows that "secret".
    const confused = await new SignJWT({ sub: 'admin' }).setProtectedHeader({ alg: 'HS256', kid: 'k1' }).setIssuer(ISSUER).setAudience(AUDIENCE).setExpirationTime('1h').sign(new TextEncoder().encode(k1.pem));
    await assertRefused(server, confused, 'token algorithm not allowed', 'HS256 with the public key as secret');
    await assertRefused(server, await sign(k1, { iss: 'https://evil.example' }), 'token from another issuer', 'wrong iss');
    await assertRefused(server, await sign(k1, { aud: 'someone-else' }), 'token for another audience', 'wrong aud');
    await assertRefused(server, await sign(k1, { exp: now() - 10 }), 'token expired', 'expired');
    await assertRefused(server, await sign(k1, { nbf: now() + 600 }), 'token not valid yet', 'not valid yet');
    await assertRefused(server, await sign(k1, { iat: now() + 600 }), 'token issued in the future', 'iat in the future');
    const stranger = await signingKey('k-unknown');
    await assertRefused(server, await sign(stranger), 'token signed by an unknown key', 'kid unknown even after the refetch');
    // A known kid whose signature was made by another key.
    await assertRefused(server, await sign({ ...stranger, kid: 'k1' }), 'invalid token', 'forged with a known kid');
  });

  test('an unknown kid triggers at most one refetch per cooldown', async () => {
    await sleep(400); // past the cooldown of the refetches above
    const before = jwks.fetches;
    const strangers = await Promise.all([1, 2, 3, 4, 5].map((i) => signingKey(`stranger-${i}`)));
    for (const stranger of strangers) assert.equal((await upgradeStatus(server, await sign(stranger))).status, 401);
    assert.ok(jwks.fetches - before <= 1, `${jwks.fetches - before} fetches for 5 unknown kids within one cooldown`);
  });

  test('rotation: a new kid is picked up; the old key stops working once it is no longer published', async () => {
    await sleep(400);
    jwks.keys = [k1.jwk, k2.jwk];
    assert.equal((await upgradeStatus(server, await sign(k2))).status, 101, 'the new ES256 key, fetched for its unknown kid');
    assert.equal((await upgradeStatus(server, await sign(k1))).status, 101, 'the old one still works while published');
    jwks.keys = [k2.jwk];
    const oldToken = await sign(k1);
    const deadline = Date.now() + 10_000;
    // The cached set expires after AUTH_JWKS_CACHE_MAX_AGE_MS (1.5 s here); the next upgrade refetches it.
    while ((await upgradeStatus(server, oldToken)).status === 101) {
      assert.ok(Date.now() < deadline, 'the removed key still verifies tokens');
      await sleep(200);
    }
    await assertRefused(server, oldToken, 'token signed by an unknown key', 'a key rotated out');
    assert.equal((await upgradeStatus(server, await sign(k2))).status, 101);
  });

  test('a JWKS that fails to parse lets no token through and crashes nothing', async () => {
    jwks.broken = true;
    try {
      await sleep(1_600); // the cached set expires
      await assertRefused(server, await sign(k2), 'signing keys unavailable', 'a broken JWKS');
      // Still a 401, but one that says the token may pass later: clients retry instead of giving up.
      const precheck = await fetch(`${server.baseUrl}/api/admission?token=${await sign(k2)}`);
      assert.deepEqual([precheck.status, ((await precheck.json()) as { code: string }).code], [401, 'SIGNING_KEY_UNAVAILABLE']);
      assert.equal((await fetch(`${server.baseUrl}/healthz`)).status, 200);
    } finally {
      jwks.broken = false;
    }
  });

  test('refresh: a new token moves the expiry close; another user\'s token closes with 1008', async () => {
    const shortLived = await sign(k2, { sub: 'r-1', exp: now() + 2 });
    const probe = await Probe.open(`${server.wsUrl}?token=${shortLived}`);
    const newExp = now() + 5;
    assert.deepEqual(await probe.request(JSON.stringify({ type: 'refresh', token: await sign(k2, { sub: 'r-1', exp: newExp }), id: 'ref1' })), { type: 'refreshed', id: 'ref1', exp: newExp });
    const bad = await probe.request(JSON.stringify({ type: 'refresh', token: 'not.a.token', id: 'ref2' }));
    assert.deepEqual([bad.type, bad.code], ['error', 'UNAUTHORIZED'], 'a bad token is refused; the session keeps its expiry');
    await sleep(3_000); // past the first token's exp
    assert.equal(probe.closed, undefined, 'still open after the old exp');
    // The expiry moved, not away: the close comes at the new exp (within 1 s, and the clock tolerance).
    assert.deepEqual(await probe.waitClosed(), { code: 1008, reason: 'token expired' });
    assert.ok(Date.now() >= newExp * 1000, 'not before the new exp');

    const longLived = await Probe.open(`${server.wsUrl}?token=${await sign(k2, { sub: 'r-2' })}`);
    const other = await longLived.request(JSON.stringify({ type: 'refresh', token: await sign(k2, { sub: 'someone-else' }), id: 'ref3' }));
    assert.deepEqual([other.type, other.code, other.message], ['error', 'UNAUTHORIZED', 'the token is for another user']);
    assert.deepEqual(await longLived.waitClosed(), { code: 1008, reason: 'token for another user' });
  });

  test('start-up does not wait for the JWKS, and an unreachable one refuses tokens without failing', async () => {
    // A JWKS endpoint that accepts and never answers: a start-up that waited for it would hang
    // until jose's fetch timeout (5 s).
    const held: Socket[] = [];
    const silent = createNetServer((socket) => held.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const started = Date.now();
    const waiting = await startPulse({ AUTH_JWKS_URL: `http://127.0.0.1:${(silent.address() as AddressInfo).port}/jwks.json` });
    const startMs = Date.now() - started;
    await waiting.stop();
    for (const socket of held) socket.destroy();
    silent.close();
    assert.ok(startMs < 2_000, `started in ${startMs} ms without waiting for the JWKS`);

    const lonely = await startPulse({ AUTH_JWKS_URL: 'http://127.0.0.1:9/jwks.json' });
    try {
      assert.deepEqual(await upgradeStatus(lonely, await sign(k1)), { status: 401, message: 'signing keys unavailable' });
      assert.equal((await fetch(`${lonely.baseUrl}/healthz`)).status, 200);
    } finally {
      await lonely.stop();
    }
  });
});

describe('tokens verified with one public key (AUTH_JWT_PUBLIC_KEY)', { timeout: 60_000 }, () => {
  let server: RunningPulse;
  let key: SigningKey;
  before(async () => {
    key = await signingKey('any', 'ES256');
    // As an environment variable often holds it: one line, with \n for the line breaks.
    server = await startPulse({ AUTH_JWT_PUBLIC_KEY: key.pem.replace(/\n/g, '\\n') });
    await server.ready();
  });
  after(() => server?.stop());

  test('ES256 tokens signed by its private key pass; the same key as an HMAC secret does not', async () => {
    assert.equal((await upgradeStatus(server, await sign(key))).status, 101);
    const confused = await new SignJWT({ sub: 'admin' }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('1h').sign(new TextEncoder().encode(key.pem));
    await assertRefused(server, confused, 'token algorithm not allowed', 'HS256 with the public key as secret');
    const other = await signingKey('other', 'ES256');
    await assertRefused(server, await sign(other), 'invalid token', 'another key');
  });
});
