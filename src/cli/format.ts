// The lines pulse-client prints, from the server's frames and PulseClient's errors. Pure.

import type { PulseError } from '../client/index.js';
import type { ErrorFrame, FibonacciFrame, OnlineUser, PresenceFrame, ServerFrame, UserRef, UsersFrame, WelcomeFrame } from '../protocol/frames.js';

/**
 * Names are any text under JWT auth (docs/design.md §6): never let them drive the terminal.
 * C0/C1 controls, DEL and bidirectional overrides are shown as \u{…} escapes.
 */
export function sanitize(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, (c) =>
    `\\u{${(c.codePointAt(0) ?? 0).toString(16)}}`,
  );
}

const pad = (n: number) => String(n).padStart(2, '0');

/** `2026-11-29 16:45:27` in the local time zone of this machine, from the server's ISO instant. */
export function formatClock(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return sanitize(iso);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

function formatUser(u: UserRef): string {
  const name = sanitize(u.name);
  return u.id === u.name ? name : `${name} (${sanitize(u.id)})`;
}

export function formatOnline(n: number): string {
  return `${n} online`;
}

/** The status line of a live terminal: clock, connection state, online count. */
export function formatStatus(clock: string, state: string, online: number | undefined): string {
  const parts = [clock || '---------- --:--:--'];
  if (state) parts.push(state);
  if (online !== undefined) parts.push(formatOnline(online));
  return parts.join(' · ');
}

export function formatPresence(frame: PresenceFrame): string[] {
  const lines = [...frame.joined.map((u) => `+ ${formatUser(u)} joined`), ...frame.left.map((u) => `- ${formatUser(u)} left`)];
  if (frame.truncated) {
    const moreJoined = (frame.joinedCount ?? frame.joined.length) - frame.joined.length;
    const moreLeft = (frame.leftCount ?? frame.left.length) - frame.left.length;
    lines.push(`… and ${moreJoined} more joined, ${moreLeft} more left (/users for the full list)`);
  }
  lines.push(formatOnline(frame.online));
  return lines;
}

/** One line per user for scripts: name, id, sessions, tab-separated. */
export function formatUserRow(u: OnlineUser): string {
  return `${sanitize(u.name)}\t${sanitize(u.id)}\t${u.sessions}`;
}

/** The `/users` answer in interactive mode. */
export function formatUsersReply(frame: UsersFrame): string[] {
  const lines = [`${formatOnline(frame.online)}:`];
  for (const u of frame.users) lines.push(`  ${formatUser(u)} · ${u.sessions} session${u.sessions === 1 ? '' : 's'}`);
  if (frame.truncated) lines.push(`  … ${frame.online - frame.users.length} more not shown`);
  return lines;
}

export function formatFibonacci(frame: FibonacciFrame): string {
  return `F(${frame.n}) = ${frame.value}`;
}

/** An error frame, or a PulseError carrying a server's code. */
export function formatError(error: ErrorFrame | PulseError): string {
  return `error ${sanitize(error.code)}: ${sanitize(error.message)}`;
}

export function formatWelcome(frame: WelcomeFrame, url: string): string {
  return `connected to ${url} as ${formatUser(frame.user)}`;
}

/** The server's answer to a question typed in interactive mode; `label` is what was typed. */
export function formatAnswer(frame: ServerFrame, label: string): string[] {
  switch (frame.type) {
    case 'fibonacci':
      return [formatFibonacci(frame)];
    case 'users':
      return formatUsersReply(frame);
    case 'error':
      return [`${formatError(frame)} (for ${sanitize(label)})`];
    default:
      return [sanitize(JSON.stringify(frame))];
  }
}

/** A question whose answer will not come: the connection went, or the answer took too long. */
export function formatUnanswered(error: PulseError, label: string): string {
  return `no answer to ${sanitize(label)}: ${sanitize(error.message)}`;
}

/** The URL without its query or credentials: what messages show. */
export function displayUrl(url: string): string {
  try {
    const u = new URL(url);
    u.search = '';
    u.username = '';
    u.password = '';
    return u.toString();
  } catch {
    return url;
  }
}

/** What the CLI adds to a refusal's own message: a word for it, and the option that fixes it. */
const REFUSALS: Readonly<Record<string, { label: string; fix?: string }>> = {
  INVALID_NAME: { label: 'the server refuses the name', fix: 'check --name' },
  UNAUTHORIZED: { label: 'unauthorized', fix: 'check --token or PULSE_TOKEN' },
  ORIGIN_NOT_ALLOWED: { label: 'forbidden' },
};

/** Node's codes for a connection that failed below HTTP, in words. */
const NETWORK_FAILURES: Readonly<Record<string, string>> = {
  ECONNREFUSED: 'connection refused (is the server running?)',
  ENOTFOUND: 'unknown host',
  EAI_AGAIN: 'unknown host',
  ETIMEDOUT: 'timed out',
  ECONNRESET: 'connection reset',
};

/** Why a connection could not be made: the server's refusal (HTTP status, code, message) or the network's. */
export function describeFailure(error: PulseError, url: string): string {
  if (error.status !== undefined) return `cannot connect to ${url}: HTTP ${error.status} (${describeRefusal(error)})`;
  const network = describeNetworkFailure(error.cause);
  return network === undefined ? sanitize(error.message) : `cannot connect to ${url}: ${network}`;
}

function describeRefusal(error: PulseError): string {
  const message = sanitize(error.message);
  const refusal = REFUSALS[error.code];
  if (!refusal) return message;
  return `${refusal.label}: ${message}${refusal.fix ? `; ${refusal.fix}` : ''}`;
}

/**
 * `ws`'s words for an upgrade answered with plain HTTP. PulseClient's pre-check explains a refusal
 * by the server's admission; this is what is left, mostly a path that is not /ws (a 404).
 */
const UNEXPECTED_RESPONSE = /^Unexpected server response: (\d{3})$/;

/** The runtime's error for a connection that failed below the WebSocket, in words; undefined without one. */
function describeNetworkFailure(cause: unknown): string | undefined {
  if (!(cause instanceof Error)) return undefined;
  const status = UNEXPECTED_RESPONSE.exec(cause.message)?.[1];
  if (status !== undefined) return `HTTP ${status}${status === '404' ? ' (no WebSocket endpoint at this path; try /ws)' : ''}`;
  const code = (cause as NodeJS.ErrnoException).code;
  const reason = (code && NETWORK_FAILURES[code]) || sanitize(cause.message);
  return code && !reason.includes(code) ? `${reason} (${code})` : reason;
}

/** The state of a scheduled reconnect, for the status line and the line that announces it. */
export function formatReconnecting(delayMs: number, attempt: number): string {
  return `reconnecting in ${(delayMs / 1000).toFixed(1)}s (attempt ${attempt})`;
}
