// Token verification (docs/design.md §6): a JWT checked against the configured keys (a shared
// HMAC secret, one public key, or an identity provider's JWKS through jose's remote key set), the
// algorithm allow-list, `iss`, `aud`, `exp`, `nbf` and `iat`. The user id is `sub`; the display
// name is the `name` claim, else `preferred_username`, else `sub`. Never throws: a bad token, or
// keys that cannot be had, is a refusal with a reason a person can read.

import { createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTPayload, type JWTVerifyOptions } from 'jose';
import type { KeyObject } from 'node:crypto';
import type { Logger } from '../log.js';
import { TOKEN_NAME_MAX_LENGTH, USER_ID_MAX_LENGTH } from '../protocol/limits.js';
import { storableText } from '../presence/storable-text.js';
import type { AuthConfig } from './auth-config.js';

export interface VerifiedToken {
  userId: string;
  name: string;
  /** Epoch ms after which the session must end (`exp` plus the clock tolerance), if the token says. */
  expiresAt: number | undefined;
  /** The token's `exp`, in seconds, as it says; null when it has none. */
  exp: number | null;
}

/** `retryable`: the token may verify later (its key could not be had yet), unlike a bad token. */
export type TokenCheck = { ok: true; token: VerifiedToken } | { ok: false; message: string; retryable: boolean };

type Key = Uint8Array | KeyObject | ReturnType<typeof createRemoteJWKSet>;

/** A kid the cached keys lack: a key newer than them is found at the next refetch, after the cooldown. */
const UNKNOWN_KEY = 'token signed by an unknown key';
const KEYS_UNAVAILABLE = 'signing keys unavailable';

export class TokenVerifier {
  private readonly key: Key;
  private readonly options: JWTVerifyOptions;
  private readonly toleranceMs: number;
  private keysWarnedAt = 0;

  constructor(
    private readonly config: AuthConfig,
    private readonly log: Logger,
  ) {
    const keys = config.keys;
    if (keys.kind === 'secret') this.key = new TextEncoder().encode(keys.secret);
    else if (keys.kind === 'public-key') this.key = keys.key;
    else this.key = createRemoteJWKSet(keys.url, { cooldownDuration: keys.cooldownMs, cacheMaxAge: keys.cacheMaxAgeMs });
    this.options = {
      algorithms: config.algorithms,
      clockTolerance: config.clockToleranceS,
      ...(config.issuers.length > 0 ? { issuer: config.issuers } : {}),
      ...(config.audiences.length > 0 ? { audience: config.audiences } : {}),
    };
    this.toleranceMs = config.clockToleranceS * 1000;
  }

  /** Fetches the JWKS in the background, so that the first upgrade does not wait for it; start-up never does. */
  warmUp(): void {
    const key = this.key;
    if (typeof key !== 'function') return;
    key.reload().then(
      () => this.log.info({ url: String((this.config.keys as { url: URL }).url), keys: key.jwks()?.keys.length ?? 0 }, 'signing keys loaded'),
      (err: Error) => this.log.warn({ err: err.message }, 'could not load the signing keys yet; tokens are refused until they load'),
    );
  }

  async verify(token: string): Promise<TokenCheck> {
    let payload: JWTPayload;
    try {
      // jwtVerify's overloads want either a key or a key resolver; both are handled the same way.
      ({ payload } = await jwtVerify(token, this.key as Uint8Array, this.options));
    } catch (err) {
      const message = this.describe(err);
      return { ok: false, message, retryable: message === UNKNOWN_KEY || message === KEYS_UNAVAILABLE };
    }
    // jose checks iat only against a maximum age: a token issued in the future is refused here.
    if (typeof payload.iat === 'number' && payload.iat * 1000 > Date.now() + this.toleranceMs) {
      return { ok: false, message: 'token issued in the future', retryable: false };
    }
    const sub = payload.sub;
    if (typeof sub !== 'string' || sub.length === 0 || sub.length > USER_ID_MAX_LENGTH || storableText(sub) !== sub) {
      return { ok: false, message: 'token has no usable "sub"', retryable: false };
    }
    const claimed = [payload.name, payload.preferred_username].find((v): v is string => typeof v === 'string' && v.length > 0) ?? sub;
    return {
      ok: true,
      token: {
        userId: sub,
        name: storableText(claimed.slice(0, TOKEN_NAME_MAX_LENGTH)),
        expiresAt: typeof payload.exp === 'number' ? payload.exp * 1000 + this.toleranceMs : undefined,
        exp: typeof payload.exp === 'number' ? payload.exp : null,
      },
    };
  }

  private describe(err: unknown): string {
    if (err instanceof joseErrors.JWTExpired) return 'token expired';
    if (err instanceof joseErrors.JWTClaimValidationFailed) {
      if (err.claim === 'nbf') return 'token not valid yet';
      if (err.claim === 'iss') return 'token from another issuer';
      if (err.claim === 'aud') return 'token for another audience';
      return `invalid token: "${err.claim}" claim`;
    }
    if (err instanceof joseErrors.JOSEAlgNotAllowed) return 'token algorithm not allowed';
    if (err instanceof joseErrors.JWKSNoMatchingKey) return UNKNOWN_KEY;
    if (err instanceof joseErrors.JWKSInvalid || err instanceof joseErrors.JWKSTimeout || isFetchFailure(err)) {
      // Every upgrade meets the same failure while the provider is down: one line per 10 s is enough.
      if (Date.now() - this.keysWarnedAt > 10_000) {
        this.keysWarnedAt = Date.now();
        this.log.warn({ err: (err as Error).message }, 'signing keys unavailable; tokens are refused until they load');
      }
      return KEYS_UNAVAILABLE;
    }
    return 'invalid token';
  }
}

/** A JWKS that cannot be fetched, or answers with something other than JSON. */
function isFetchFailure(err: unknown): boolean {
  return err instanceof joseErrors.JOSEError ? err.code === 'ERR_JOSE_GENERIC' : err instanceof TypeError || err instanceof SyntaxError;
}
