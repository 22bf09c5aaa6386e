// Token settings (docs/design.md §6): where the keys come from, which algorithms and claims are
// accepted. Read and checked at start-up with the rest of the configuration: a setting that is
// ambiguous or unsafe stops Pulse with one line, rather than accepting tokens it should refuse.

import { createPublicKey, type KeyObject } from 'node:crypto';

export type KeySource =
  /** HMAC with a shared secret (AUTH_JWT_SECRET). */
  | { kind: 'secret'; secret: string }
  /** One public key (AUTH_JWT_PUBLIC_KEY, PEM SPKI). */
  | { kind: 'public-key'; key: KeyObject }
  /**
   * The identity provider's published keys (AUTH_JWKS_URL): cached for cacheMaxAgeMs, refetched
   * for an unknown kid at most once per cooldownMs.
   */
  | { kind: 'jwks'; url: URL; cooldownMs: number; cacheMaxAgeMs: number };

export interface AuthConfig {
  keys: KeySource;
  /** The `alg` values accepted, never `none`, never HMAC and public-key together. */
  algorithms: string[];
  /** Accepted `iss` values; empty: not checked. */
  issuers: string[];
  /** Accepted `aud` values; empty: not checked. */
  audiences: string[];
  /** Leeway for `exp`, `nbf` and `iat`, in seconds. */
  clockToleranceS: number;
}

const HMAC = ['HS256', 'HS384', 'HS512'];
const PUBLIC_KEY = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'];
/** What identity providers sign with (Keycloak, Auth0, Okta, Cognito, Entra ID, Google: RS256; some ES256). */
const JWKS_DEFAULT = ['RS256', 'ES256'];

/** The algorithms a public key can verify, by its type (and curve). */
function algorithmsFor(key: KeyObject): string[] {
  switch (key.asymmetricKeyType) {
    case 'rsa':
      return ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'];
    case 'rsa-pss':
      return ['PS256', 'PS384', 'PS512'];
    case 'ec': {
      const curve = key.asymmetricKeyDetails?.namedCurve;
      return curve === 'prime256v1' ? ['ES256'] : curve === 'secp384r1' ? ['ES384'] : curve === 'secp521r1' ? ['ES512'] : [];
    }
    case 'ed25519':
      return ['EdDSA', 'Ed25519'];
    default:
      return [];
  }
}

/** The default when AUTH_JWT_ALGORITHMS is unset: the usual one for this key type. */
function defaultAlgorithms(keys: KeySource): string[] {
  if (keys.kind === 'secret') return ['HS256'];
  if (keys.kind === 'jwks') return JWKS_DEFAULT;
  const usable = algorithmsFor(keys.key);
  if (keys.key.asymmetricKeyType === 'rsa') return ['RS256'];
  return usable.slice(0, 1).concat(usable.includes('EdDSA') ? ['Ed25519'] : []);
}

function list(raw: string | undefined): string[] {
  return (raw ?? '')
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');
}

/** A loopback JWKS may be plain HTTP (tests, a sidecar); anything else must be HTTPS. */
function isLoopback(url: URL): boolean {
  return url.hostname === 'localhost' || url.hostname === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(url.hostname);
}

type Env = Record<string, string | undefined>;

function milliseconds(env: Env, name: string, fallback: number, fail: (message: string) => Error): number {
  const raw = env[name]?.trim() || String(fallback);
  if (!/^\d+$/.test(raw) || Number(raw) > 86_400_000) throw fail(`${name}=${JSON.stringify(env[name])} is invalid: expected an integer from 0 to 86400000`);
  return Number(raw);
}

/**
 * The token settings, or undefined in open mode (no token settings at all). Throws an Error whose
 * message is the one line start-up prints.
 */
export function readAuthConfig(env: Env, fail: (message: string) => Error): AuthConfig | undefined {
  const secret = env.AUTH_JWT_SECRET || undefined;
  const pem = env.AUTH_JWT_PUBLIC_KEY?.trim() || undefined;
  const jwksUrl = env.AUTH_JWKS_URL?.trim() || undefined;
  const given = [secret && 'AUTH_JWT_SECRET', pem && 'AUTH_JWT_PUBLIC_KEY', jwksUrl && 'AUTH_JWKS_URL'].filter(Boolean);
  const tokenSettings = ['AUTH_JWT_ALGORITHMS', 'AUTH_JWT_ISSUER', 'AUTH_JWT_AUDIENCE', 'AUTH_JWT_CLOCK_TOLERANCE_S', 'AUTH_JWKS_COOLDOWN_MS', 'AUTH_JWKS_CACHE_MAX_AGE_MS'];
  if (given.length === 0) {
    const stray = tokenSettings.find((name) => env[name]?.trim());
    if (stray) throw fail(`${stray} is set but no key is: set AUTH_JWT_SECRET, AUTH_JWT_PUBLIC_KEY or AUTH_JWKS_URL`);
    return undefined;
  }
  if (given.length > 1) throw fail(`${given.join(' and ')} are both set: tokens must be verified one way; keep one`);

  let keys: KeySource;
  if (secret !== undefined) {
    if (secret.length < 32) throw fail('AUTH_JWT_SECRET is invalid: expected a secret of at least 32 characters');
    keys = { kind: 'secret', secret };
  } else if (pem !== undefined) {
    let key: KeyObject;
    try {
      // A PEM in an environment variable often arrives with literal \n for its line breaks.
      key = createPublicKey({ key: pem.replace(/\\n/g, '\n'), format: 'pem' });
    } catch {
      throw fail('AUTH_JWT_PUBLIC_KEY is invalid: expected a PEM public key (-----BEGIN PUBLIC KEY-----, SPKI)');
    }
    if (algorithmsFor(key).length === 0) throw fail(`AUTH_JWT_PUBLIC_KEY is a ${key.asymmetricKeyType} key: expected RSA, EC (P-256, P-384, P-521) or Ed25519`);
    keys = { kind: 'public-key', key };
  } else {
    let url: URL;
    try {
      url = new URL(jwksUrl!);
    } catch {
      throw fail(`AUTH_JWKS_URL=${JSON.stringify(jwksUrl)} is invalid: expected an https:// URL`);
    }
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopback(url))) {
      throw fail('AUTH_JWKS_URL is invalid: keys fetched over plain HTTP could be forged in transit; expected https:// (http:// only on loopback)');
    }
    keys = { kind: 'jwks', url, cooldownMs: milliseconds(env, 'AUTH_JWKS_COOLDOWN_MS', 30_000, fail), cacheMaxAgeMs: milliseconds(env, 'AUTH_JWKS_CACHE_MAX_AGE_MS', 600_000, fail) };
  }
  for (const name of ['AUTH_JWKS_COOLDOWN_MS', 'AUTH_JWKS_CACHE_MAX_AGE_MS']) {
    if (keys.kind !== 'jwks' && env[name]?.trim()) throw fail(`${name} is set without AUTH_JWKS_URL`);
  }

  const algorithms = list(env.AUTH_JWT_ALGORITHMS);
  for (const alg of algorithms) {
    if (!HMAC.includes(alg) && !PUBLIC_KEY.includes(alg)) {
      throw fail(`AUTH_JWT_ALGORITHMS contains ${JSON.stringify(alg)}: expected JWS algorithms such as RS256, ES256 or HS256 (never none)`);
    }
  }
  if (algorithms.some((a) => HMAC.includes(a)) && algorithms.some((a) => PUBLIC_KEY.includes(a))) {
    throw fail('AUTH_JWT_ALGORITHMS mixes HMAC and public-key algorithms: a public key could then be used as an HMAC secret; list one kind');
  }
  const accepted = algorithms.length > 0 ? algorithms : defaultAlgorithms(keys);
  const wanted = keys.kind === 'secret' ? HMAC : keys.kind === 'jwks' ? PUBLIC_KEY : algorithmsFor(keys.key);
  const unusable = accepted.filter((alg) => !wanted.includes(alg));
  if (unusable.length > 0) {
    throw fail(`AUTH_JWT_ALGORITHMS ${unusable.join(', ')} cannot be verified with ${given[0]}: expected some of ${wanted.join(', ')}`);
  }

  const tolerance = env.AUTH_JWT_CLOCK_TOLERANCE_S?.trim() || '0';
  if (!/^\d+$/.test(tolerance) || Number(tolerance) > 300) {
    throw fail(`AUTH_JWT_CLOCK_TOLERANCE_S=${JSON.stringify(env.AUTH_JWT_CLOCK_TOLERANCE_S)} is invalid: expected an integer from 0 to 300`);
  }
  return {
    keys,
    algorithms: accepted,
    issuers: list(env.AUTH_JWT_ISSUER),
    audiences: list(env.AUTH_JWT_AUDIENCE),
    clockToleranceS: Number(tolerance),
  };
}
