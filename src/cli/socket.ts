// Opening a WebSocket to Pulse, turning every way the upgrade can fail into a ConnectFailure.

import WebSocket from 'ws';
import type { ConnectFailure } from './format.js';

export const HANDSHAKE_TIMEOUT_MS = 10_000;
const MAX_BODY_CHARS = 1024;

export class ConnectError extends Error {
  constructor(readonly failure: ConnectFailure) {
    super(failure.message ?? failure.code ?? `HTTP ${failure.status}`);
    this.name = 'ConnectError';
  }
}

/**
 * Resolves with an open socket, or rejects with a ConnectError. `onText` is attached before
 * the socket opens: the server's first frame often arrives with the upgrade response and is
 * emitted before a listener added after the promise resolves could see it.
 */
export function dial(
  url: string,
  token: string | undefined,
  onText: (text: string, ws: WebSocket) => void,
  timeoutMs = HANDSHAKE_TIMEOUT_MS,
): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const display = displayUrl(url);
    let ws: WebSocket;
    try {
      ws = new WebSocket(url, {
        headers: token === undefined ? {} : { Authorization: `Bearer ${token}` },
        handshakeTimeout: timeoutMs,
        followRedirects: false,
      });
    } catch (err) {
      reject(new ConnectError({ url: display, message: (err as Error).message }));
      return;
    }
    let settled = false;
    let http: { status: number; body: string } | undefined;

    ws.on('unexpected-response', (_req, res) => {
      http = { status: res.statusCode ?? 0, body: '' };
      const h = http;
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        if (h.body.length < MAX_BODY_CHARS) h.body += chunk.slice(0, MAX_BODY_CHARS - h.body.length);
      });
      const stop = setTimeout(() => ws.terminate(), 1000);
      res.on('end', () => {
        clearTimeout(stop);
        ws.terminate();
      });
      res.on('error', () => ws.terminate());
    });
    ws.on('message', (data, isBinary) => {
      if (!isBinary) onText(String(data), ws);
    });
    ws.once('open', () => {
      settled = true;
      resolve(ws);
    });
    // Kept for the socket's whole life: an 'error' without a listener would crash the process.
    ws.on('error', (err: NodeJS.ErrnoException) => {
      if (settled) return;
      settled = true;
      if (http) {
        reject(new ConnectError({ url: display, status: http.status, body: bodyText(http.body) }));
        return;
      }
      const timedOut = /handshake has timed out/i.test(err.message);
      reject(new ConnectError({ url: display, code: timedOut ? 'TIMEOUT' : (err.code ?? undefined), message: err.message }));
    });
  });
}

/** The URL without its query: the token never appears in messages (it travels as a header anyway). */
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

/** A JSON error body's message, or the plain text. */
function bodyText(body: string): string {
  try {
    const v: unknown = JSON.parse(body);
    if (typeof v === 'object' && v !== null) {
      const o = v as Record<string, unknown>;
      const msg = o.message ?? o.error;
      if (typeof msg === 'string') return msg;
    }
  } catch {
    // not JSON
  }
  return body;
}
