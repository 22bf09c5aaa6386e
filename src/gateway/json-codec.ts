// JSON protocol v1 codec: client frames → requests, answers → bytes. Pure: no sockets.
// Incoming frames are at most MAX_MESSAGE_BYTES, so parsing and the depth walk are bounded.

import { z } from 'zod';
import { checkJsonN, parseIntegerText } from '../fibonacci/parse.js';
import type { FibonacciAnswer } from '../fibonacci/service.js';
import { toOnlineUser, type OnlineUserRecord, type PresenceChanges } from '../presence/online-users.js';
import type { ErrorCode } from '../protocol/codes.js';
import { MAX_ID_LENGTH, MAX_JSON_DEPTH, PRESENCE_LIST_MAX } from '../protocol/limits.js';
import type { PresenceFrame } from '../protocol/frames.js';
import { CLIENT_MESSAGE_TYPES, PROTOCOL_VERSION, type RequestId, type WelcomeLimits } from '../protocol/messages.js';

export type JsonRequest =
  | { type: 'fibonacci'; id: RequestId; n: number }
  | { type: 'users'; id: RequestId }
  | { type: 'refresh'; id: RequestId; token: string }
  | { type: 'error'; id: RequestId; code: ErrorCode; message: string };

const envelope = z.object({
  type: z.enum(CLIENT_MESSAGE_TYPES),
  id: z.union([z.string().max(MAX_ID_LENGTH), z.number().int().refine(Number.isSafeInteger)]).optional(),
});
/** Nesting deeper than MAX_JSON_DEPTH needs at least this many characters (`[[[…]]]`). */
const SHORTEST_TOO_DEEP = 2 * (MAX_JSON_DEPTH + 1);

function depthExceeds(value: unknown, limit: number): boolean {
  // Iterative, so a hostile frame cannot exhaust the stack.
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!;
    if (node === null || typeof node !== 'object') continue;
    if (depth > limit) return true;
    for (const child of Object.values(node)) if (child !== null && typeof child === 'object') stack.push([child, depth + 1]);
  }
  return false;
}

function invalid(id: RequestId, code: ErrorCode, message: string): JsonRequest {
  return { type: 'error', id, code, message };
}

/** Decodes one text frame of the JSON protocol. Never throws. */
export function decodeJsonFrame(text: string, maxN: number): JsonRequest {
  const first = text.trimStart().charCodeAt(0);
  // `{` or `[` → JSON; anything else is a bare integer as text (or not a number at all).
  if (first !== 0x7b && first !== 0x5b) {
    const parsed = parseIntegerText(text, maxN);
    return parsed.ok ? { type: 'fibonacci', id: null, n: parsed.n } : invalid(null, parsed.code, parsed.message);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return invalid(null, 'INVALID_JSON', 'frame is not valid JSON');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return invalid(null, 'INVALID_MESSAGE', 'expected a JSON object with a "type"');
  }
  if (text.length >= SHORTEST_TOO_DEEP && depthExceeds(value, MAX_JSON_DEPTH)) {
    return invalid(null, 'INVALID_MESSAGE', `JSON nested deeper than ${MAX_JSON_DEPTH} levels`);
  }
  const message = value as Record<string, unknown>;
  // One schema pass on the hot path; its issues tell a bad id (not echoed) from a bad type (echoed id).
  const checked = envelope.safeParse(message);
  if (!checked.success) {
    if (checked.error.issues.some((issue) => issue.path[0] === 'id')) {
      return invalid(null, 'INVALID_MESSAGE', `"id" must be a string of at most ${MAX_ID_LENGTH} characters or a safe integer`);
    }
    return invalid((message.id as RequestId | undefined) ?? null, 'INVALID_MESSAGE', `"type" must be one of ${CLIENT_MESSAGE_TYPES.join(', ')}`);
  }
  const id: RequestId = checked.data.id ?? null;
  if (checked.data.type === 'users') return { type: 'users', id };
  if (checked.data.type === 'refresh') {
    const token = message.token;
    return typeof token === 'string' && token.length > 0 ? { type: 'refresh', id, token } : invalid(id, 'INVALID_MESSAGE', 'a refresh needs "token"');
  }
  if (!Object.hasOwn(message, 'n')) return invalid(id, 'INVALID_MESSAGE', 'a fibonacci request needs "n"');
  const n = checkJsonN(message.n, maxN);
  return n.ok ? { type: 'fibonacci', id, n: n.n } : invalid(id, n.code, n.message);
}

// --- server → client. Strings are assembled by hand where it saves re-escaping big values. ---

function idJson(id: RequestId): string {
  return id === null ? 'null' : typeof id === 'number' ? String(id) : JSON.stringify(id);
}

export function encodeFibonacci(id: RequestId, answer: FibonacciAnswer): string {
  // `value` is digits with an optional sign: nothing to escape, so a 200 kB answer is not scanned again.
  return `{"type":"fibonacci","id":${idJson(id)},"n":${answer.n},"value":"${answer.value}","digits":${answer.digits}}`;
}

/** `exp` in seconds, as in the token; null for a token that does not expire. */
export function encodeRefreshed(id: RequestId, exp: number | null): string {
  return `{"type":"refreshed","id":${idJson(id)},"exp":${exp === null ? 'null' : exp}}`;
}

export function encodeError(id: RequestId, code: ErrorCode, message: string): string {
  return `{"type":"error","id":${idJson(id)},"code":"${code}","message":${JSON.stringify(message)}}`;
}

/** The welcome for one session, with what every session of this instance shares serialised once. */
export function welcomeEncoder(instanceId: string, limits: WelcomeLimits): (sessionId: string, user: { id: string; name: string }, now: number) => string {
  const shared = `"instanceId":${JSON.stringify(instanceId)}`;
  const limitsJson = JSON.stringify({ maxN: limits.maxN, maxMessageBytes: limits.maxMessageBytes, messagesPerSecond: limits.messagesPerSecond });
  return (sessionId, user, now) =>
    `{"type":"welcome","protocol":${PROTOCOL_VERSION},"sessionId":${JSON.stringify(sessionId)},"user":${JSON.stringify({ id: user.id, name: user.name })},` +
    `${shared},"now":"${new Date(now).toISOString()}","limits":${limitsJson}}`;
}

/** The part of a `users` reply that does not depend on the request: cached per presence version. */
export function encodeUsersBody(online: number, users: OnlineUserRecord[], truncated: boolean): string {
  const list = users.map(toOnlineUser);
  return `"online":${online},"users":${JSON.stringify(list)}${truncated ? ',"truncated":true' : ''}`;
}

export function encodeUsers(id: RequestId, body: string): string {
  return `{"type":"users","id":${idJson(id)},${body}}`;
}

export function encodePresence(changes: PresenceChanges): string {
  const truncated = changes.joinedCount > PRESENCE_LIST_MAX || changes.leftCount > PRESENCE_LIST_MAX;
  return JSON.stringify({
    type: 'presence',
    online: changes.online,
    joined: changes.joined,
    left: changes.left,
    ...(truncated ? { truncated: true as const, joinedCount: changes.joinedCount, leftCount: changes.leftCount } : {}),
  } satisfies PresenceFrame);
}
