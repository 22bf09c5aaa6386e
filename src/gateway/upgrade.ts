// Upgrade checks, answered as plain HTTP before any WebSocket exists (docs/design.md §3):
// draining/full → 503, origin → 403, token → 401, name → 400, per-address cap → 429.

import { randomBytes } from 'node:crypto';
import { errors as joseErrors, jwtVerify } from 'jose';
import type { Config } from '../config.js';
import { TextProtocol } from './protocol.js';

export interface Identity {
  userId: string;
  name: string;
  /** Epoch ms at which the token expires (auth mode only). */
  expiresAt: number | undefined;
  presence: boolean;
}

export type UpgradeDecision = { ok: true; identity: Identity } | { ok: false; status: 400 | 401 | 403 | 429 | 503; message: string };

export interface UpgradeRequest {
  protocol: 'json' | 'text';
  clientId: string | undefined;
  /** The query string's parameters; the first value of a repeated one (URLSearchParams fits). */
  query: { get(name: string): string | null };
  origin: string | undefined;
  host: string | undefined;
  authorization: string | undefined;
}

/** Display names: 1–32 Unicode letters, decimal digits, space, `.`, `_`, `-`. */
export const NAME_PATTERN = /^[\p{L}\p{Nd} ._-]{1,32}$/u;
const GUEST_ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';
/** U+0000 and unpaired surrogates: PostgreSQL text and jsonb refuse both. */
// eslint-disable-next-line no-control-regex
const UNSTORABLE = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/**
 * Text that reaches the database (names, close reasons) with what PostgreSQL cannot store replaced
 * by U+FFFD. One such string in a batch would fail every later batch of the instance.
 */
export function storableText(text: string): string {
  return text.replace(UNSTORABLE, '\uFFFD');
}

export function guestName(): string {
  const bytes = randomBytes(6);
  let suffix = '';
  for (const byte of bytes) suffix += GUEST_ALPHABET[byte % GUEST_ALPHABET.length];
  return `guest-${suffix}`;
}

/** Same origin means the Origin's host:port equals the Host header; no Origin (non-browser clients) is fine. */
export function originAllowed(allowed: Config['allowedOrigins'], origin: string | undefined, host: string | undefined): boolean {
  if (origin === undefined || allowed === '*') return true;
  if (allowed !== undefined) return allowed.includes(origin);
  try {
    return host !== undefined && new URL(origin).host === host.toLowerCase();
  } catch {
    return false;
  }
}

export class UpgradeGate {
  private readonly secret: Uint8Array | undefined;

  constructor(private readonly config: Config) {
    this.secret = config.authJwtSecret === undefined ? undefined : new TextEncoder().encode(config.authJwtSecret);
  }

  /** Synchronous in open mode, so that most upgrades cost no promise; a token check is async. */
  check(request: UpgradeRequest): UpgradeDecision | Promise<UpgradeDecision> {
    if (!originAllowed(this.config.allowedOrigins, request.origin, request.host)) {
      return { ok: false, status: 403, message: 'origin not allowed' };
    }
    const presence = request.query.get('presence') !== '0';
    if (request.protocol === 'text' && (request.clientId === undefined || !TextProtocol.clientIdPattern.test(request.clientId))) {
      return { ok: false, status: 400, message: 'clientId must be 1-64 characters of A-Z, a-z, 0-9, _ and -' };
    }
    if (this.secret) return this.authenticate(request, presence);
    if (request.protocol === 'text') {
      return { ok: true, identity: { userId: request.clientId!, name: request.clientId!, expiresAt: undefined, presence } };
    }
    const name = request.query.get('name') ?? guestName();
    if (!NAME_PATTERN.test(name)) {
      return { ok: false, status: 400, message: 'name must be 1-32 letters, digits, spaces, ".", "_" or "-"' };
    }
    // Open mode: the same name is the same user.
    return { ok: true, identity: { userId: name, name, expiresAt: undefined, presence } };
  }

  private async authenticate(request: UpgradeRequest, presence: boolean): Promise<UpgradeDecision> {
    const bearer = request.authorization?.match(/^Bearer\s+(\S+)$/i)?.[1];
    const token = request.query.get('token') ?? bearer;
    if (!token) return { ok: false, status: 401, message: 'missing token' };
    try {
      const { payload } = await jwtVerify(token, this.secret!, { algorithms: ['HS256'] });
      if (typeof payload.sub !== 'string' || payload.sub.length === 0 || payload.sub.length > 128 || storableText(payload.sub) !== payload.sub) {
        return { ok: false, status: 401, message: 'token has no usable "sub"' };
      }
      const claimed = typeof payload.name === 'string' && payload.name.length > 0 ? payload.name : payload.sub;
      return {
        ok: true,
        identity: {
          userId: payload.sub,
          name: storableText(claimed.slice(0, 64)),
          expiresAt: typeof payload.exp === 'number' ? payload.exp * 1000 : undefined,
          presence,
        },
      };
    } catch (err) {
      const message = err instanceof joseErrors.JWTExpired ? 'token expired' : 'invalid token';
      return { ok: false, status: 401, message };
    }
  }
}
