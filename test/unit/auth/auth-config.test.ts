// Token settings: the ambiguous and the unsafe stop start-up with one line; the rest become the
// verifier's settings.

import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { test } from 'node:test';
import { ConfigError, loadConfig } from '../../../src/config.js';

const SECRET = 'x'.repeat(32);
const pem = (type: 'rsa' | 'ec' | 'ed25519' | 'dsa'): string => {
  const options = { modulusLength: 2048, namedCurve: 'P-256', divisorLength: 224 };
  const { publicKey } = generateKeyPairSync(type as 'rsa', options);
  return publicKey.export({ type: 'spki', format: 'pem' }).toString();
};

function refusal(env: Record<string, string>): string {
  try {
    loadConfig(env);
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    assert.doesNotMatch(err.message, /\n/, 'one line');
    return err.message;
  }
  assert.fail(`accepted ${JSON.stringify(env)}`);
}

test('open mode without any token setting; a token setting without a key is a mistake', () => {
  assert.equal(loadConfig({}).auth, undefined);
  assert.match(refusal({ AUTH_JWT_ISSUER: 'https://idp.example' }), /AUTH_JWT_ISSUER is set but no key is/);
});

test('ambiguous: two key sources at once', () => {
  assert.match(refusal({ AUTH_JWT_SECRET: SECRET, AUTH_JWKS_URL: 'https://idp.example/jwks' }), /AUTH_JWT_SECRET and AUTH_JWKS_URL are both set/);
  assert.match(refusal({ AUTH_JWT_PUBLIC_KEY: pem('rsa'), AUTH_JWKS_URL: 'https://idp.example/jwks' }), /both set/);
});

test('unsafe: mixed algorithm kinds, none, HMAC with a public key, a short secret, plain-HTTP keys', () => {
  assert.match(refusal({ AUTH_JWKS_URL: 'https://idp.example/jwks', AUTH_JWT_ALGORITHMS: 'RS256,HS256' }), /mixes HMAC and public-key/);
  assert.match(refusal({ AUTH_JWKS_URL: 'https://idp.example/jwks', AUTH_JWT_ALGORITHMS: 'none' }), /never none/);
  assert.match(refusal({ AUTH_JWKS_URL: 'https://idp.example/jwks', AUTH_JWT_ALGORITHMS: 'HS256' }), /HS256 cannot be verified with AUTH_JWKS_URL/);
  assert.match(refusal({ AUTH_JWT_SECRET: SECRET, AUTH_JWT_ALGORITHMS: 'RS256' }), /RS256 cannot be verified with AUTH_JWT_SECRET/);
  assert.match(refusal({ AUTH_JWT_PUBLIC_KEY: pem('ec'), AUTH_JWT_ALGORITHMS: 'RS256' }), /RS256 cannot be verified/);
  assert.match(refusal({ AUTH_JWT_SECRET: 'short' }), /at least 32 characters/);
  assert.match(refusal({ AUTH_JWKS_URL: 'http://idp.example/jwks' }), /expected https:\/\//);
  assert.match(refusal({ AUTH_JWT_PUBLIC_KEY: 'not a key' }), /expected a PEM public key/);
  assert.match(refusal({ AUTH_JWT_PUBLIC_KEY: pem('dsa') }), /dsa key: expected RSA, EC/);
  assert.match(refusal({ AUTH_JWT_SECRET: SECRET, AUTH_JWKS_COOLDOWN_MS: '5' }), /without AUTH_JWKS_URL/);
  assert.match(refusal({ AUTH_JWKS_URL: 'https://idp.example/jwks', AUTH_JWT_CLOCK_TOLERANCE_S: '3600' }), /from 0 to 300/);
});

test('defaults: HS256 for a secret, RS256 and ES256 for a JWKS, the key type for a public key', () => {
  assert.deepEqual(loadConfig({ AUTH_JWT_SECRET: SECRET }).auth?.algorithms, ['HS256']);
  const jwks = loadConfig({ AUTH_JWKS_URL: 'https://idp.example/jwks', AUTH_JWT_ISSUER: 'https://a, https://b', AUTH_JWT_AUDIENCE: 'pulse' }).auth!;
  assert.deepEqual(jwks.algorithms, ['RS256', 'ES256']);
  assert.deepEqual(jwks.keys.kind === 'jwks' && [jwks.keys.cooldownMs, jwks.keys.cacheMaxAgeMs], [30_000, 600_000]);
  assert.deepEqual([jwks.issuers, jwks.audiences, jwks.clockToleranceS], [['https://a', 'https://b'], ['pulse'], 0]);
  assert.deepEqual(loadConfig({ AUTH_JWT_PUBLIC_KEY: pem('rsa') }).auth?.algorithms, ['RS256']);
  assert.deepEqual(loadConfig({ AUTH_JWT_PUBLIC_KEY: pem('ec') }).auth?.algorithms, ['ES256']);
  assert.deepEqual(loadConfig({ AUTH_JWT_PUBLIC_KEY: pem('ed25519') }).auth?.algorithms, ['EdDSA', 'Ed25519']);
  assert.deepEqual(loadConfig({ AUTH_JWT_PUBLIC_KEY: pem('rsa'), AUTH_JWT_ALGORITHMS: 'PS256' }).auth?.algorithms, ['PS256']);
  assert.ok(loadConfig({ AUTH_JWKS_URL: 'http://127.0.0.1:8080/jwks' }).auth, 'plain HTTP on loopback');
});
