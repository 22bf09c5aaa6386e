// --fib and --users: connect, ask once, print the answer, exit.

import type WebSocket from 'ws';
import type { CliOptions } from './args.js';
import { connectUrl } from './args.js';
import { fibonacciRequest, parseServerFrame, usersRequest } from './frames.js';
import type { ServerFrame } from './frames.js';
import { describeClose, describeConnectFailure, formatError, formatUserRow } from './format.js';
import { EXIT_CONNECTION, EXIT_OK, EXIT_SERVER_ERROR } from './exit-codes.js';
import { ConnectError, dial } from './socket.js';

const REQUEST_ID = 'cli';
const ANSWER_TIMEOUT_MS = 60_000;

export interface Output {
  out(line: string): void;
  err(line: string): void;
}

export async function runOneShot(opts: CliOptions, io: Output): Promise<number> {
  const url = connectUrl(opts.url, { ...(opts.name === undefined ? {} : { name: opts.name }), presence: false });
  let onText: (text: string) => void = () => {};
  let ws: WebSocket;
  try {
    ws = await dial(url, opts.token, (text) => onText(text));
  } catch (err) {
    io.err(err instanceof ConnectError ? describeConnectFailure(err.failure) : `cannot connect: ${(err as Error).message}`);
    return EXIT_CONNECTION;
  }

  const expected = opts.mode === 'fib' ? 'fibonacci' : 'users';
  const request = opts.mode === 'fib' ? fibonacciRequest(opts.fib ?? '', REQUEST_ID) : usersRequest(REQUEST_ID);

  const code = await new Promise<number>((resolve) => {
    const timer = setTimeout(() => {
      io.err(`no answer from the server within ${ANSWER_TIMEOUT_MS / 1000}s`);
      resolve(EXIT_CONNECTION);
    }, ANSWER_TIMEOUT_MS);
    const done = (exit: number) => {
      clearTimeout(timer);
      onText = () => {};
      ws.off('close', onClose);
      resolve(exit);
    };
    onText = (text: string) => {
      const frame = parseServerFrame(text);
      if (!frame || !isAnswer(frame, expected)) return;
      if (frame.type === 'error') {
        if (opts.json) io.out(text);
        else io.err(formatError(frame));
        done(EXIT_SERVER_ERROR);
        return;
      }
      if (opts.json) io.out(text);
      else if (frame.type === 'fibonacci') io.out(frame.value);
      else if (frame.type === 'users') {
        for (const u of frame.users) io.out(formatUserRow(u));
        if (frame.truncated) io.err(`(${frame.online} online, only the first ${frame.users.length} listed)`);
      }
      done(EXIT_OK);
    };
    const onClose = (closeCode: number, reason: Buffer) => {
      io.err(`connection closed before the answer: ${describeClose(closeCode, String(reason))}`);
      done(EXIT_CONNECTION);
    };
    ws.on('close', onClose);
    ws.send(request);
  });

  await closeQuietly(ws);
  return code;
}

/** The reply to our single request: ours by id, or id null (a bare-text request, or a frame-level error). */
function isAnswer(frame: ServerFrame, expected: 'fibonacci' | 'users'): boolean {
  if (frame.type !== expected && frame.type !== 'error') return false;
  return frame.id === REQUEST_ID || frame.id === null;
}

/** Normal closure, waiting at most a second for the server's close frame. */
export function closeQuietly(ws: WebSocket): Promise<void> {
  return new Promise((resolve) => {
    if (ws.readyState === ws.CLOSED) {
      resolve();
      return;
    }
    const timer = setTimeout(() => {
      ws.terminate();
      resolve();
    }, 1000);
    ws.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    if (ws.readyState === ws.OPEN) ws.close(1000);
    else ws.terminate();
  });
}
