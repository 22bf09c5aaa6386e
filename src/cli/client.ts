// The PulseClient behind both modes. One-shot modes make one attempt, without presence messages;
// interactive mode keeps the connection open and follows who is online.

import WebSocket from 'ws';
import { PulseClient, type WebSocketFactory } from '../client/index.js';
import type { CliOptions } from './args.js';

/** Longer than PulseClient's default: F(n) near the server's largest n takes seconds to compute and to send. */
const ANSWER_TIMEOUT_MS = 60_000;

export function createClient(opts: CliOptions, mode: { interactive: boolean }): PulseClient {
  const token = opts.token;
  return new PulseClient({
    url: opts.url,
    name: opts.name,
    getToken: token === undefined ? undefined : () => token,
    presence: mode.interactive,
    reconnect: mode.interactive,
    requestTimeoutMs: ANSWER_TIMEOUT_MS,
    // `ws` on every Node version, not Node 22's global WebSocket: its error events carry the
    // network error's code (ECONNREFUSED, ENOTFOUND), which describeFailure turns into advice.
    WebSocket: WebSocket as unknown as WebSocketFactory,
  });
}
