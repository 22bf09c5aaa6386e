// Interactive mode: live clock, presence, answers to what the user types, automatic reconnect.

import { createInterface } from 'node:readline';
import type WebSocket from 'ws';
import type { CliOptions } from './args.js';
import { connectUrl } from './args.js';
import { backoffDelay } from './backoff.js';
import { fibonacciRequest, fibonacciRequestKeepsId, parseServerFrame, usersRequest } from './frames.js';
import {
  describeClose,
  describeConnectFailure,
  formatClock,
  formatError,
  formatFibonacci,
  formatOnline,
  formatPresence,
  formatUsersReply,
  formatWelcome,
  isTransientStatus,
} from './format.js';
import { EXIT_CONNECTION, EXIT_OK } from './exit-codes.js';
import { closeQuietly } from './oneshot.js';
import { Screen, type Terminal } from './screen.js';
import { ConnectError, dial, displayUrl } from './socket.js';

/** No frame for this long (the clock ticks every second) → the connection is presumed dead. */
const SILENCE_MS = 10_000;
/** After end of input, how long to wait for outstanding answers. */
const DRAIN_MS = 15_000;
const MAX_QUEUED = 100;
/** Id of the users request sent on welcome to fill the status line's online count. */
const STATUS_ID = 'status';

const HELP = [
  'type an integer for its Fibonacci number, e.g. 10',
  '/users   who is online',
  '{...}    send a raw JSON frame',
  '/quit    exit (also Ctrl-C, Ctrl-D)',
];

interface Request {
  frame: string;
  /** The id its answer will carry (null: answered with id null). */
  id: string | number | null;
  /** What the user typed, to say which request an error answers. */
  label: string;
}

/** The id a raw JSON frame typed by the user will be answered with. */
function rawFrameId(frame: string): string | number | null {
  try {
    const v: unknown = JSON.parse(frame);
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) {
      const id = (v as Record<string, unknown>).id;
      if (typeof id === 'string' || typeof id === 'number') return id;
    }
  } catch {
    // answered INVALID_JSON, id null
  }
  return null;
}

export function runInteractive(opts: CliOptions, term: Terminal): Promise<number> {
  return new Promise((resolveExit) => {
    const url = connectUrl(opts.url, { ...(opts.name === undefined ? {} : { name: opts.name }), presence: true });
    const shownUrl = displayUrl(url);
    const useTerminal = !opts.json && term.input.isTTY === true && term.output.isTTY === true;
    const rl = createInterface(
      useTerminal
        ? { input: term.input, output: term.output, terminal: true, historySize: 100 }
        : { input: term.input, terminal: false },
    );
    const screen = new Screen(term, useTerminal ? rl : null, !opts.json && term.output.isTTY === true);
    // In --json mode stdout carries frames only; everything else goes to stderr.
    const note = (line: string) => (opts.json ? term.error.write(`${line}\n`) : screen.print(line));

    let ws: WebSocket | null = null;
    let connecting = false;
    let attempt = 0;
    let stateText = 'connecting…';
    let clock = '';
    let online: number | null = null;
    let nextId = 1;
    /** Requests typed while not connected, sent as soon as the next connection opens. */
    const queue: Request[] = [];
    /** Sent requests awaiting their answer, oldest first. */
    const inFlight: Request[] = [];
    let inputEnded = false;
    let finished = false;
    let retryTimer: NodeJS.Timeout | undefined;
    let silenceTimer: NodeJS.Timeout | undefined;
    let drainTimer: NodeJS.Timeout | undefined;

    const refresh = () => {
      const parts = [clock || '---------- --:--:--'];
      if (stateText) parts.push(stateText);
      if (online !== null && ws) parts.push(formatOnline(online));
      screen.status(parts.join(' · '));
    };

    const finish = (code: number) => {
      if (finished) return;
      finished = true;
      clearTimeout(retryTimer);
      clearTimeout(silenceTimer);
      clearTimeout(drainTimer);
      screen.end();
      rl.close();
      const socket = ws;
      ws = null;
      void (socket ? closeQuietly(socket) : Promise.resolve()).then(() => resolveExit(code));
    };

    const outstanding = () => inFlight.length + queue.length;
    const maybeDone = () => {
      if (inputEnded && outstanding() === 0) finish(EXIT_OK);
    };

    const send = (req: Request) => {
      if (ws && ws.readyState === ws.OPEN) {
        ws.send(req.frame);
        inFlight.push(req);
        return;
      }
      if (queue.length >= MAX_QUEUED) {
        note('not connected: request dropped (queue full)');
        return;
      }
      queue.push(req);
      if (useTerminal || screen.live) note('not connected yet: request queued');
    };

    /**
     * Marks the answer to a request as received; returns what was asked, if known. By id when
     * the answer has one; an answer with id null (bare-text request, or a frame refused before
     * it was read, such as RATE_LIMITED) settles the oldest request still waiting.
     */
    const settle = (id: string | number | null): string | undefined => {
      let i = inFlight.findIndex((r) => r.id === id);
      if (i < 0 && id === null && inFlight.length > 0) i = 0;
      if (i < 0) return undefined;
      return inFlight.splice(i, 1)[0]?.label;
    };

    const onLine = (raw: string) => {
      const line = raw.trim();
      if (line === '') {
        if (useTerminal) rl.prompt();
        return;
      }
      if (line === '/quit' || line === '/exit') {
        finish(EXIT_OK);
        return;
      }
      if (line === '/help') {
        for (const h of HELP) note(h);
      } else if (line === '/users') {
        const id = nextId++;
        send({ frame: usersRequest(id), id, label: '/users' });
      } else if (line.startsWith('{')) {
        send({ frame: line, id: rawFrameId(line), label: line });
      } else if (line.startsWith('/')) {
        note(`unknown command ${line}; try /help`);
      } else {
        const id = nextId++;
        send({ frame: fibonacciRequest(line, id), id: fibonacciRequestKeepsId(line) ? id : null, label: line });
      }
      if (useTerminal) rl.prompt(true);
    };

    const onFrame = (text: string) => {
      if (opts.json) term.output.write(`${text}\n`);
      const frame = parseServerFrame(text);
      if (!frame) return;
      switch (frame.type) {
        case 'welcome': {
          attempt = 0;
          stateText = '';
          if (!opts.json) screen.print(formatWelcome(frame, shownUrl));
          // The status line shows the online count from the start, not only after the first change.
          if (screen.live) ws?.send(usersRequest(STATUS_ID));
          break;
        }
        case 'time':
          clock = formatClock(frame.now);
          if (!opts.json && !screen.live) screen.print(`time ${clock}`);
          break;
        case 'presence':
          online = frame.online;
          if (!opts.json) for (const l of formatPresence(frame)) screen.print(l);
          break;
        case 'users':
          online = frame.online;
          if (frame.id === STATUS_ID) break;
          settle(frame.id);
          if (!opts.json) for (const l of formatUsersReply(frame)) screen.print(l);
          break;
        case 'fibonacci':
          settle(frame.id);
          if (!opts.json) screen.print(formatFibonacci(frame));
          break;
        case 'error': {
          const asked = settle(frame.id);
          if (!opts.json) screen.print(asked === undefined ? formatError(frame) : `${formatError(frame)} (for ${asked})`);
          break;
        }
      }
      refresh();
      maybeDone();
    };

    const armSilence = (socket: WebSocket) => {
      clearTimeout(silenceTimer);
      silenceTimer = setTimeout(() => {
        note(`no data for ${SILENCE_MS / 1000}s: reconnecting`);
        socket.terminate();
      }, SILENCE_MS);
    };

    const scheduleReconnect = (why: string) => {
      attempt++;
      const delay = backoffDelay(attempt);
      stateText = `reconnecting in ${(delay / 1000).toFixed(1)}s (attempt ${attempt})`;
      note(`${why}; ${stateText}`);
      refresh();
      retryTimer = setTimeout(connect, delay);
    };

    /** Requests sent on a dead socket are never answered; queued ones go out on the next connection. */
    const loseInFlight = () => {
      const lost = inFlight.length;
      inFlight.length = 0;
      if (lost > 0) note(`${lost} request${lost === 1 ? '' : 's'} lost with the connection`);
    };

    const connect = () => {
      if (finished || connecting) return;
      connecting = true;
      stateText = attempt === 0 ? 'connecting…' : `connecting… (attempt ${attempt + 1})`;
      refresh();
      // Frames that arrive with the upgrade response, before `ws` is set below.
      let early: string[] | null = [];
      const onText = (text: string, socket: WebSocket) => {
        if (early) early.push(text);
        else if (socket === ws && !finished) {
          armSilence(socket);
          onFrame(text);
        }
      };
      dial(url, opts.token, onText).then(
        (socket) => {
          connecting = false;
          if (finished) {
            early = null;
            void closeQuietly(socket);
            return;
          }
          ws = socket;
          stateText = 'waiting for welcome';
          armSilence(socket);
          for (const req of queue.splice(0)) send(req);
          const buffered = early ?? [];
          early = null;
          for (const text of buffered) onFrame(text);
          socket.on('close', (code, reason) => {
            clearTimeout(silenceTimer);
            if (ws !== socket) return;
            ws = null;
            online = null;
            if (finished) return;
            loseInFlight();
            if (inputEnded) {
              note(`disconnected: ${describeClose(code, String(reason))}`);
              finish(EXIT_OK);
              return;
            }
            scheduleReconnect(`disconnected: ${describeClose(code, String(reason))}`);
          });
        },
        (err: unknown) => {
          connecting = false;
          early = null;
          if (finished) return;
          const message =
            err instanceof ConnectError ? describeConnectFailure(err.failure) : `cannot connect: ${(err as Error).message}`;
          const status = err instanceof ConnectError ? err.failure.status : undefined;
          if ((status !== undefined && !isTransientStatus(status)) || inputEnded) {
            screen.printError(message);
            finish(EXIT_CONNECTION);
            return;
          }
          scheduleReconnect(message);
        },
      );
    };

    rl.on('line', onLine);
    rl.on('close', () => {
      // End of input (Ctrl-D, or the end of a pipe): answer what was asked, then exit 0.
      if (finished) return;
      inputEnded = true;
      if (outstanding() === 0) {
        finish(EXIT_OK);
        return;
      }
      drainTimer = setTimeout(() => finish(EXIT_OK), DRAIN_MS);
    });
    rl.on('SIGINT', () => finish(EXIT_OK));
    process.once('SIGINT', () => finish(EXIT_OK));
    process.once('SIGTERM', () => finish(EXIT_OK));

    refresh();
    connect();
  });
}
