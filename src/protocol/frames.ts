// The JSON protocol's frames in both directions (docs/design.md §3), as types, plus the check a
// client runs on what arrives: just enough to use a frame safely. Browser-safe: no Node imports.

import type { ErrorCode } from './codes.js';
import type { RequestId, WelcomeLimits } from './messages.js';

export interface UserRef {
  id: string;
  name: string;
}

/** A user in a `users` reply or a page of `GET /api/users`. */
export interface OnlineUser extends UserRef {
  /** Open sessions of this user on every instance. */
  sessions: number;
  /** ISO-8601 time the user came online. */
  since: string;
}

// --- server → client

export interface WelcomeFrame {
  type: 'welcome';
  protocol: number;
  sessionId: string;
  user: UserRef;
  instanceId: string;
  now: string;
  limits: WelcomeLimits;
}

export interface TimeFrame {
  type: 'time';
  /** ISO-8601 UTC, the second boundary. */
  now: string;
  /** The second boundary in epoch ms: a multiple of 1000. */
  epochMs: number;
}

export interface FibonacciFrame {
  type: 'fibonacci';
  id: RequestId;
  n: number;
  /** Exact decimal, with '-' for negative results. */
  value: string;
  /** Decimal digits, sign excluded. */
  digits: number;
}

export interface UsersFrame {
  type: 'users';
  id: RequestId;
  online: number;
  users: OnlineUser[];
  truncated?: true;
}

export interface PresenceFrame {
  type: 'presence';
  online: number;
  joined: UserRef[];
  left: UserRef[];
  truncated?: true;
  joinedCount?: number;
  leftCount?: number;
}

/** The answer to a refresh: the session now ends at the new token's `exp` (seconds; null: never). */
export interface RefreshedFrame {
  type: 'refreshed';
  id: RequestId;
  exp: number | null;
}

export interface ErrorFrame {
  type: 'error';
  id: RequestId;
  code: ErrorCode;
  message: string;
}

export type ServerFrame = WelcomeFrame | TimeFrame | FibonacciFrame | UsersFrame | PresenceFrame | RefreshedFrame | ErrorFrame;

// --- client → server (a bare integer as text is a fibonacci request too)

export interface FibonacciRequest {
  type: 'fibonacci';
  n: number;
  id?: string | number;
}

export interface UsersRequest {
  type: 'users';
  id?: string | number;
}

/** A new token for the open session (token mode): it must carry the same `sub`. */
export interface RefreshRequest {
  type: 'refresh';
  token: string;
  id?: string | number;
}

export type ClientFrame = FibonacciRequest | UsersRequest | RefreshRequest;

// --- checking what arrives

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const isStr = (v: unknown): v is string => typeof v === 'string';
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const isId = (v: unknown): v is RequestId => v === null || isStr(v) || isNum(v);
const isUserRef = (v: unknown): v is UserRef => isObj(v) && isStr(v.id) && isStr(v.name);
const isUserList = (v: unknown): v is UserRef[] => Array.isArray(v) && v.every(isUserRef);
const isOnlineUser = (v: unknown): v is OnlineUser => isObj(v) && isStr(v.id) && isStr(v.name) && isNum(v.sessions) && isStr(v.since);

/**
 * One text frame from the server, or null when it is not a well-formed frame of a known type
 * (a newer server may add types: a client ignores them).
 */
export function parseServerFrame(text: string): ServerFrame | null {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return null;
  }
  if (!isObj(v)) return null;
  switch (v.type) {
    case 'welcome':
      return isStr(v.sessionId) && isUserRef(v.user) && isStr(v.instanceId) && isObj(v.limits) ? (v as unknown as WelcomeFrame) : null;
    case 'time':
      return isStr(v.now) && isNum(v.epochMs) ? (v as unknown as TimeFrame) : null;
    case 'fibonacci':
      return isId(v.id) && isNum(v.n) && isStr(v.value) && isNum(v.digits) ? (v as unknown as FibonacciFrame) : null;
    case 'users':
      return isId(v.id) && isNum(v.online) && Array.isArray(v.users) && v.users.every(isOnlineUser) ? (v as unknown as UsersFrame) : null;
    case 'presence':
      return isNum(v.online) && isUserList(v.joined) && isUserList(v.left) ? (v as unknown as PresenceFrame) : null;
    case 'refreshed':
      return isId(v.id) && (v.exp === null || isNum(v.exp)) ? (v as unknown as RefreshedFrame) : null;
    case 'error':
      return isId(v.id) && isStr(v.code) && isStr(v.message) ? (v as unknown as ErrorFrame) : null;
    default:
      return null;
  }
}
