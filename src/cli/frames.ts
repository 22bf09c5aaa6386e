// The JSON protocol v1 (docs/design.md §3) as the client sees it: server frames, checked just enough
// to be used safely, and the request frames the client sends. Pure.

export interface UserRef {
  id: string;
  name: string;
}

export interface OnlineUser extends UserRef {
  sessions: number;
  since: string;
}

export type RequestId = string | number | null;

export type ServerFrame =
  | {
      type: 'welcome';
      protocol: number;
      sessionId: string;
      user: UserRef;
      instanceId: string;
      now: string;
      limits: { maxN?: number; maxMessageBytes?: number; messagesPerSecond?: number };
    }
  | { type: 'time'; now: string; epochMs: number }
  | { type: 'fibonacci'; id: RequestId; n: number; value: string; digits: number }
  | { type: 'users'; id: RequestId; online: number; users: OnlineUser[]; truncated?: boolean }
  | {
      type: 'presence';
      online: number;
      joined: UserRef[];
      left: UserRef[];
      truncated?: boolean;
      joinedCount?: number;
      leftCount?: number;
    }
  | { type: 'error'; id: RequestId; code: string; message: string };

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const isStr = (v: unknown): v is string => typeof v === 'string';
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const isId = (v: unknown): v is RequestId => v === null || v === undefined || isStr(v) || isNum(v);
const isUserRef = (v: unknown): v is UserRef => isObj(v) && isStr(v.id) && isStr(v.name);
const isUserList = (v: unknown): v is UserRef[] => Array.isArray(v) && v.every(isUserRef);
const isOnlineUser = (v: unknown): v is OnlineUser => isObj(v) && isStr(v.id) && isStr(v.name) && isNum(v.sessions);

/**
 * Parses one text frame from the server. Returns null for anything that is not a well-formed
 * frame of a known type (a newer server may add types; the client ignores them).
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
      return isUserRef(v.user) && isStr(v.sessionId) ? ({ limits: {}, ...v } as ServerFrame) : null;
    case 'time':
      return isStr(v.now) && isNum(v.epochMs) ? (v as ServerFrame) : null;
    case 'fibonacci':
      return isStr(v.value) && isNum(v.n) && isId(v.id) ? ({ ...v, id: v.id ?? null } as ServerFrame) : null;
    case 'users':
      return isNum(v.online) && Array.isArray(v.users) && v.users.every(isOnlineUser) && isId(v.id)
        ? ({ ...v, id: v.id ?? null } as ServerFrame)
        : null;
    case 'presence':
      return isNum(v.online) && isUserList(v.joined ?? []) && isUserList(v.left ?? [])
        ? ({ ...v, joined: v.joined ?? [], left: v.left ?? [] } as unknown as ServerFrame)
        : null;
    case 'error':
      return isStr(v.code) && isId(v.id)
        ? ({ ...v, id: v.id ?? null, message: isStr(v.message) ? v.message : '' } as ServerFrame)
        : null;
    default:
      return null;
  }
}

const INTEGER_TEXT = /^\s*[+-]?[0-9]+\s*$/;

/**
 * The frame asking for F(input). A safe integer goes as a JSON integer with the given id.
 * A longer integer goes as bare text (the server answers OUT_OF_RANGE, with id null), so
 * it is never rounded on the way. Anything else goes as `"n":"<text>"`, which the
 * server answers with INVALID_NUMBER (docs/design.md §3: `n` must be a JSON integer), keeping the id.
 */
export function fibonacciRequest(input: string, id: string | number): string {
  if (INTEGER_TEXT.test(input)) {
    const n = Number(input.trim());
    if (Number.isSafeInteger(n)) return JSON.stringify({ type: 'fibonacci', n, id });
    return input;
  }
  return JSON.stringify({ type: 'fibonacci', n: input, id });
}

/** Whether the reply to fibonacciRequest(input) carries the request's id (false: it carries null). */
export function fibonacciRequestKeepsId(input: string): boolean {
  return !INTEGER_TEXT.test(input) || Number.isSafeInteger(Number(input.trim()));
}

export function usersRequest(id: string | number): string {
  return JSON.stringify({ type: 'users', id });
}
