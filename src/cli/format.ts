// Turning server frames and connection events into the lines pulse-client prints. Pure.

import type { OnlineUser, ServerFrame, UserRef } from './frames.js';

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

export function formatUser(u: UserRef): string {
  const name = sanitize(u.name);
  return u.id === u.name ? name : `${name} (${sanitize(u.id)})`;
}

export function formatOnline(n: number): string {
  return `${n} online`;
}

export function formatPresence(frame: Extract<ServerFrame, { type: 'presence' }>): string[] {
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
export function formatUsersReply(frame: Extract<ServerFrame, { type: 'users' }>): string[] {
  const lines = [`${formatOnline(frame.online)}:`];
  for (const u of frame.users) lines.push(`  ${formatUser(u)} · ${u.sessions} session${u.sessions === 1 ? '' : 's'}`);
  if (frame.truncated) lines.push(`  … ${frame.online - frame.users.length} more not shown`);
  return lines;
}

export function formatFibonacci(frame: Extract<ServerFrame, { type: 'fibonacci' }>): string {
  return `F(${frame.n}) = ${frame.value}`;
}

export function formatError(frame: Extract<ServerFrame, { type: 'error' }>): string {
  return `error ${sanitize(frame.code)}: ${sanitize(frame.message)}`;
}

export function formatWelcome(frame: Extract<ServerFrame, { type: 'welcome' }>, url: string): string {
  return `connected to ${url} as ${formatUser(frame.user)}`;
}

/** What an HTTP status from a refused upgrade means (docs/design.md §3). */
export function describeHttpStatus(status: number): string {
  switch (status) {
    case 400:
      return 'bad request: check --name (1-32 letters, digits, space, . _ -)';
    case 401:
      return 'unauthorized: bad or missing token (--token or PULSE_TOKEN)';
    case 403:
      return 'forbidden: origin not allowed';
    case 404:
      return 'not found: no WebSocket endpoint at this path (try /ws)';
    case 429:
      return 'too many connections from this address';
    case 503:
      return 'server full or draining';
    default:
      return status >= 500 ? 'server error' : 'upgrade refused';
  }
}

/** Statuses worth retrying: the same request may succeed later. */
export function isTransientStatus(status: number): boolean {
  return status === 429 || status === 408 || status >= 500;
}

export interface ConnectFailure {
  url: string;
  /** HTTP status when the server answered the upgrade with plain HTTP. */
  status?: number;
  /** Short body of that answer, if any. */
  body?: string;
  /** Node error code (ECONNREFUSED, ENOTFOUND, …) or the error message. */
  code?: string;
  message?: string;
}

export function describeConnectFailure(f: ConnectFailure): string {
  if (f.status !== undefined) {
    const body = f.body?.trim() ? ` — ${sanitize(f.body.trim().slice(0, 200))}` : '';
    return `cannot connect to ${f.url}: HTTP ${f.status} (${describeHttpStatus(f.status)})${body}`;
  }
  const reason =
    f.code === 'ECONNREFUSED'
      ? 'connection refused (is the server running?)'
      : f.code === 'ENOTFOUND' || f.code === 'EAI_AGAIN'
        ? 'unknown host'
        : f.code === 'ETIMEDOUT' || f.code === 'TIMEOUT'
          ? 'timed out'
          : f.code === 'ECONNRESET'
            ? 'connection reset'
            : (f.message ?? f.code ?? 'unknown error');
  const code = f.code && !reason.includes(f.code) ? ` (${f.code})` : '';
  return `cannot connect to ${f.url}: ${reason}${code}`;
}

/** Close codes of docs/design.md §3, for the "disconnected" line. */
export function describeClose(code: number, reason: string): string {
  const meaning: Record<number, string> = {
    1000: 'closed normally',
    1001: 'server shutting down',
    1003: 'binary frame refused',
    1005: 'closed without a code',
    1006: 'connection lost',
    1007: 'invalid UTF-8',
    1008: 'policy violation (rate-limit abuse or token expired)',
    1009: 'message too big',
    1011: 'server internal error',
    1013: 'server overloaded or client too slow',
  };
  const text = meaning[code] ?? 'closed';
  return `${text} (${code}${reason ? `: ${sanitize(reason)}` : ''})`;
}
