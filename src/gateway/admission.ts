// Admission: every check an upgrade must pass before a WebSocket exists, in the order they run
// (docs/design.md §6). A refusal is an HTTP status and a code, answered by upgrade.ts:
//   1. draining → 503 DRAINING; as many connections as MAX_CONNECTIONS → 503 SERVER_FULL
//   2. MAX_CONNECTIONS_PER_IP from this address → 429 TOO_MANY_CONNECTIONS
//   3. an Origin that is not allowed → 403 ORIGIN_NOT_ALLOWED
//   4. text protocol: a bad clientId → 400 INVALID_CLIENT_ID
//   5. tokens required (a key is configured): no or a bad token → 401 UNAUTHORIZED, or 401
//      SIGNING_KEY_UNAVAILABLE when its key cannot be had yet (the client may retry);
//      open mode, JSON protocol: a bad ?name= → 400 INVALID_NAME (no name: a guest name)
// An admitted upgrade holds its place in the counts at once; the gateway gives it back when the
// connection closes (release), so the caps hold however many handshakes run at the same time.
// preview() answers the same question without taking a place: it serves the HTTP pre-check
// (GET /api/admission), which tells a browser why its upgrade was refused.

import { randomBytes } from 'node:crypto';
import type { TokenVerifier } from '../auth/token-verifier.js';
import type { Config } from '../config.js';
import type { HttpErrorCode } from '../protocol/codes.js';
import { CLIENT_ID_PATTERN, CLIENT_ID_RULE, NAME_PATTERN, NAME_RULE } from '../protocol/names.js';

export interface Identity {
  userId: string;
  name: string;
  /** Epoch ms at which the token expires (auth mode only). */
  expiresAt: number | undefined;
  /** False when the client opted out of presence messages with `?presence=0`. */
  presence: boolean;
}

export interface UpgradeRequest {
  protocol: 'json' | 'text';
  clientId: string | undefined;
  /** The query string's parameters; the first value of a repeated one (URLSearchParams fits). */
  query: { get(name: string): string | null };
  origin: string | undefined;
  host: string | undefined;
  authorization: string | undefined;
  remoteAddr: string;
}

export interface Refusal {
  ok: false;
  status: 400 | 401 | 403 | 429 | 503;
  code: HttpErrorCode;
  message: string;
}

export type AdmissionDecision = { ok: true; identity: Identity } | Refusal;

export type AdmissionLimits = Pick<Config, 'maxConnections' | 'maxConnectionsPerIp' | 'allowedOrigins'>;

const GUEST_ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';

export function guestName(): string {
  let suffix = '';
  for (const byte of randomBytes(6)) suffix += GUEST_ALPHABET[byte % GUEST_ALPHABET.length];
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

const refuse = (status: Refusal['status'], code: HttpErrorCode, message: string): Refusal => ({ ok: false, status, code, message });

export class Admission {
  private readonly perAddress = new Map<string, number>();
  private admitted = 0;
  private draining = false;

  constructor(
    private readonly limits: AdmissionLimits,
    private readonly tokens: TokenVerifier | undefined,
  ) {}

  /** Connections admitted and not yet released. */
  get count(): number {
    return this.admitted;
  }

  get isDraining(): boolean {
    return this.draining;
  }

  /** From now on every upgrade is refused with 503 DRAINING. */
  drain(): void {
    this.draining = true;
  }

  /**
   * Synchronous in open mode, so that most upgrades cost no promise; a token check is
   * asynchronous. An admitting decision holds a place: the caller accepts the connection, or
   * gives the place back with release().
   */
  check(request: UpgradeRequest): AdmissionDecision | Promise<AdmissionDecision> {
    return this.decide(request, true);
  }

  /** The decision check() would take now, without holding a place. */
  preview(request: UpgradeRequest): AdmissionDecision | Promise<AdmissionDecision> {
    return this.decide(request, false);
  }

  private decide(request: UpgradeRequest, holdPlace: boolean): AdmissionDecision | Promise<AdmissionDecision> {
    const full = this.capacityRefusal(request.remoteAddr);
    if (full) return full;
    if (!originAllowed(this.limits.allowedOrigins, request.origin, request.host)) {
      return refuse(403, 'ORIGIN_NOT_ALLOWED', 'origin not allowed');
    }
    if (request.protocol === 'text' && (request.clientId === undefined || !CLIENT_ID_PATTERN.test(request.clientId))) {
      return refuse(400, 'INVALID_CLIENT_ID', CLIENT_ID_RULE);
    }
    const presence = request.query.get('presence') !== '0';
    if (this.tokens) return this.authenticate(this.tokens, request, presence, holdPlace);
    let identity: Identity;
    if (request.protocol === 'text') {
      identity = { userId: request.clientId!, name: request.clientId!, expiresAt: undefined, presence };
    } else {
      const name = request.query.get('name') ?? guestName();
      if (!NAME_PATTERN.test(name)) return refuse(400, 'INVALID_NAME', NAME_RULE);
      // Open mode: the same name is the same user.
      identity = { userId: name, name, expiresAt: undefined, presence };
    }
    return holdPlace ? this.hold(request.remoteAddr, identity) : { ok: true, identity };
  }

  /** Gives back the place of a connection that closed, or of an admitted upgrade that never completed. */
  release(remoteAddr: string): void {
    this.admitted--;
    const left = (this.perAddress.get(remoteAddr) ?? 1) - 1;
    if (left > 0) this.perAddress.set(remoteAddr, left);
    else this.perAddress.delete(remoteAddr);
  }

  private capacityRefusal(remoteAddr: string): Refusal | undefined {
    if (this.draining) return refuse(503, 'DRAINING', 'server draining');
    if (this.admitted >= this.limits.maxConnections) return refuse(503, 'SERVER_FULL', 'server full');
    if ((this.perAddress.get(remoteAddr) ?? 0) >= this.limits.maxConnectionsPerIp) {
      return refuse(429, 'TOO_MANY_CONNECTIONS', 'too many connections from this address');
    }
    return undefined;
  }

  /** Takes the place; checked again because other upgrades may have filled it during a token check. */
  private hold(remoteAddr: string, identity: Identity): AdmissionDecision {
    const full = this.capacityRefusal(remoteAddr);
    if (full) return full;
    this.admitted++;
    this.perAddress.set(remoteAddr, (this.perAddress.get(remoteAddr) ?? 0) + 1);
    return { ok: true, identity };
  }

  private async authenticate(tokens: TokenVerifier, request: UpgradeRequest, presence: boolean, holdPlace: boolean): Promise<AdmissionDecision> {
    const bearer = request.authorization?.match(/^Bearer\s+(\S+)$/i)?.[1];
    const token = request.query.get('token') ?? bearer;
    if (!token) return refuse(401, 'UNAUTHORIZED', 'missing token');
    const checked = await tokens.verify(token);
    if (!checked.ok) return refuse(401, checked.retryable ? 'SIGNING_KEY_UNAVAILABLE' : 'UNAUTHORIZED', checked.message);
    const identity: Identity = { ...checked.token, presence };
    return holdPlace ? this.hold(request.remoteAddr, identity) : { ok: true, identity };
  }
}
