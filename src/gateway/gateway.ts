// Connection lifecycle and message flow. Follow a frame: onFrame → codec → limiter → service →
// codec → Connection.send. Follow a tick: tick() → one buffer → every open, keeping-up socket.

import { randomUUID } from 'node:crypto';
import type { WebSocket } from 'ws';
import type { Config } from '../config.js';
import type { FibonacciAnswer, FibonacciService } from '../fibonacci/service.js';
import type { ParseResult } from '../fibonacci/parse.js';
import type { Metrics } from '../http/metrics.js';
import { PRESENCE_LIST_LIMIT, type Presence } from '../presence/presence.js';
import { jsonTimeFrame, textTimeFrame } from '../clock/frames.js';
import { Connection, textFrameBytes } from './connection.js';
import {
  decodeJsonFrame,
  encodeError,
  encodeFibonacci,
  encodePresence,
  encodeUsers,
  encodeUsersBody,
  welcomeEncoder,
  type RequestId,
} from './json-codec.js';
import { CloseCode, TextProtocol, type ErrorCode } from './protocol.js';
import { RateLimiter } from './rate-limiter.js';
import { decodeTextFrame, encodeTextError } from './text-codec.js';
import { storableText, type Identity } from './upgrade.js';

export interface GatewayLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface Admission {
  ok: boolean;
  status?: 429 | 503;
  message?: string;
}

/** Largest `users` reply; the REST API pages past it. */
export const USERS_REPLY_LIMIT = 1000;
const USER_AGENT_MAX = 256;
/** Text-protocol answers the original never needed: kept in its style. */
const TEXT_RATE_LIMITED = 'Error: Too many messages, slow down.';
const TEXT_BUSY = 'Error: Too many requests in flight.';
const TEXT_INTERNAL = 'Error: Internal error.';

// ws reports protocol violations with these codes; the close code it sends follows them.
const WS_ERROR_CLOSE_CODES: Record<string, number> = {
  WS_ERR_UNSUPPORTED_MESSAGE_LENGTH: CloseCode.MESSAGE_TOO_BIG,
  WS_ERR_INVALID_UTF8: CloseCode.INVALID_PAYLOAD,
};

const CONNECTION = Symbol('pulse.connection');
type SocketWithConnection = WebSocket & { [CONNECTION]: Connection };

function onPong(this: WebSocket): void {
  (this as SocketWithConnection)[CONNECTION].alive = true;
}

function onSocketError(this: WebSocket, err: Error & { code?: string }): void {
  const conn = (this as SocketWithConnection)[CONNECTION];
  conn.closeCode ??= WS_ERROR_CLOSE_CODES[err.code ?? ''] ?? 1002;
  conn.closeReason ??= err.message;
}

export class Gateway {
  private readonly jsonConnections = new Set<Connection>();
  private readonly textConnections = new Set<Connection>();
  private readonly perAddress = new Map<string, number>();
  private draining = false;
  private pingTimer: NodeJS.Timeout | undefined;
  private lastPingAt = Date.now();
  /**
   * Pings are spread over the interval: every connection belongs to one of `pingSlices` slices,
   * and one slice is pinged per round, half-way between two ticks, so that 100k pings never land
   * on a second boundary at once. Intervals under 2 s (tests) ping everyone each interval.
   */
  private readonly pingSlices: number;
  private pingRound = 0;
  private nextPingSlot = 0;
  private usersCache = { version: -1, body: '' };
  private readonly encodeWelcome: ReturnType<typeof welcomeEncoder>;
  /** One listener of each kind for every socket; `this` is the socket. */
  private readonly onMessage: (this: WebSocket, data: Buffer, isBinary: boolean) => void;
  private readonly onSocketClose: (this: WebSocket, code: number, reason: Buffer) => void;

  constructor(
    private readonly config: Config,
    private readonly presence: Presence,
    private readonly fibonacci: FibonacciService,
    private readonly metrics: Metrics,
    private readonly log: GatewayLogger,
  ) {
    // The listeners need both the socket (their `this`) and the gateway.
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const gateway = this;
    this.onMessage = function (data, isBinary) {
      gateway.onFrame((this as SocketWithConnection)[CONNECTION], data, isBinary);
    };
    this.onSocketClose = function (code, reason) {
      gateway.onClose((this as SocketWithConnection)[CONNECTION], code, reason.toString());
    };
    this.encodeWelcome = welcomeEncoder(presence.instanceId, {
      maxN: config.fibMaxN,
      maxMessageBytes: config.maxMessageBytes,
      messagesPerSecond: config.rateLimitPerSecond,
    });
    this.pingSlices = config.pingIntervalMs < 2_000 ? 1 : Math.floor(config.pingIntervalMs / 1_000);
    if (this.pingSlices === 1) {
      this.pingTimer = setInterval(() => this.pingSlice(), config.pingIntervalMs);
      this.pingTimer.unref();
    }
  }

  get connectionCount(): number {
    return this.jsonConnections.size + this.textConnections.size;
  }

  get isDraining(): boolean {
    return this.draining;
  }

  /** Capacity checks for an upgrade (the rest are in UpgradeGate). */
  admit(remoteAddr: string): Admission {
    if (this.draining) return { ok: false, status: 503, message: 'server draining' };
    if (this.connectionCount >= this.config.maxConnections) return { ok: false, status: 503, message: 'server full' };
    if ((this.perAddress.get(remoteAddr) ?? 0) >= this.config.maxConnectionsPerIp) {
      return { ok: false, status: 429, message: 'too many connections from this address' };
    }
    return { ok: true };
  }

  accept(socket: WebSocket, protocol: 'json' | 'text', identity: Identity, remoteAddr: string, userAgent: string | undefined): void {
    const now = Date.now();
    const conn = new Connection(
      socket,
      randomUUID(),
      identity.userId,
      identity.name,
      protocol,
      remoteAddr,
      userAgent ? userAgent.slice(0, USER_AGENT_MAX) : null,
      now,
      new RateLimiter(this.config.rateLimitPerSecond, this.config.rateLimitBurst, now),
      protocol === 'json' && identity.presence,
    );
    conn.pingSlot = this.nextPingSlot++ % this.pingSlices;
    // Re-checked here: several handshakes may have passed admit() at once, or draining began.
    if (!this.admit(remoteAddr).ok) {
      socket.on('error', () => undefined); // the close below may still fail; nothing to record
      if (this.draining) socket.close(CloseCode.GOING_AWAY, 'server shutting down');
      else socket.close(CloseCode.TRY_AGAIN_LATER, 'server full');
      return;
    }
    this.perAddress.set(remoteAddr, (this.perAddress.get(remoteAddr) ?? 0) + 1);
    (protocol === 'json' ? this.jsonConnections : this.textConnections).add(conn);
    this.metrics.connections.inc({ protocol });
    this.metrics.connectionsTotal.inc({ protocol });

    // Shared listeners that find their connection on the socket: no closures per connection.
    (socket as SocketWithConnection)[CONNECTION] = conn;
    socket.on('message', this.onMessage);
    socket.on('pong', onPong);
    socket.on('error', onSocketError);
    socket.once('close', this.onSocketClose);

    if (identity.expiresAt !== undefined) this.armExpiry(conn, identity.expiresAt);
    this.presence.open(conn);
    this.log.info({ sessionId: conn.id, userId: conn.userId, protocol, remoteAddr }, 'session opened');
    if (protocol === 'json') {
      conn.send(this.encodeWelcome(conn.id, { id: conn.userId, name: conn.name }, now), this.config.slowClientCloseBytes);
    }
  }

  /** Called by the clock at every second boundary. */
  tick(epochMs: number): void {
    const skipAbove = this.config.slowClientSkipBytes;
    const closeAbove = this.config.slowClientCloseBytes;
    let sent = 0;
    let skipped = 0;
    for (const [connections, timePayload] of [
      [this.jsonConnections, jsonTimeFrame],
      [this.textConnections, textTimeFrame],
    ] as const) {
      if (connections.size === 0) continue; // no frame is built for a protocol nobody speaks
      const frame = textFrameBytes(timePayload(epochMs));
      for (const conn of connections) {
        // bufferedAmount is read once here; the write below repeats none of these checks.
        const buffered = conn.socket.bufferedAmount;
        if (buffered > skipAbove) {
          skipped++;
          if (buffered > closeAbove) conn.closeSlow();
        } else if (conn.writeFrame(frame)) {
          sent++;
        }
      }
    }
    this.metrics.ticksSent.inc(sent);
    if (skipped > 0) this.metrics.ticksSkipped.inc(skipped);
    this.broadcastPresence(closeAbove);
    this.metrics.tickFanout.observe(Math.max(0, Date.now() - epochMs) / 1000);
    this.metrics.usersOnline.set(this.presence.online.online);
    if (this.pingSlices > 1 && !this.draining) {
      clearTimeout(this.pingTimer);
      this.pingTimer = setTimeout(() => this.pingSlice(), 500);
      this.pingTimer.unref();
    }
  }

  /** Starts draining: new upgrades get 503, every client is closed with 1001. Resolves when all are gone. */
  async drain(deadline: number): Promise<void> {
    this.draining = true;
    clearInterval(this.pingTimer);
    clearTimeout(this.pingTimer);
    const all = [...this.jsonConnections, ...this.textConnections];
    for (const conn of all) conn.close(CloseCode.GOING_AWAY, 'server shutting down');
    // Peers get a moment to answer the close; whoever has not by then is dropped.
    const graceEnd = Math.min(deadline, Date.now() + 2_000);
    while (this.connectionCount > 0 && Date.now() < graceEnd) await new Promise((r) => setTimeout(r, 25));
    for (const conn of [...this.jsonConnections, ...this.textConnections]) conn.socket.terminate();
    while (this.connectionCount > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  }

  /** The `users` reply body, rebuilt only when presence changed. */
  usersBody(): string {
    const online = this.presence.online;
    if (this.usersCache.version !== online.version) {
      const { users, truncated } = online.list(USERS_REPLY_LIMIT);
      this.usersCache = { version: online.version, body: encodeUsersBody(online.online, users, truncated) };
    }
    return this.usersCache.body;
  }

  private onFrame(conn: Connection, data: Buffer, isBinary: boolean): void {
    conn.alive = true;
    if (isBinary) {
      conn.close(CloseCode.UNSUPPORTED_DATA, 'binary frames are not supported');
      return;
    }
    this.metrics.messages.inc({ protocol: conn.protocol });
    const decision = conn.limiter.take(Date.now());
    if (decision !== 'allow') {
      this.metrics.rateLimited.inc();
      if (decision === 'abuse') {
        conn.close(CloseCode.POLICY_VIOLATION, 'rate limit exceeded persistently');
        return;
      }
      this.replyError(conn, null, 'RATE_LIMITED', `more than ${this.config.rateLimitPerSecond} messages per second`);
      return;
    }
    const text = data.toString('utf8');
    if (conn.protocol === 'text') {
      this.onTextFrame(conn, text);
      return;
    }
    const request = decodeJsonFrame(text, this.config.fibMaxN);
    switch (request.type) {
      case 'fibonacci':
        this.answerFibonacci(conn, request.n, (answer) => encodeFibonacci(request.id, answer), request.id);
        return;
      case 'users':
        // Built when sent: a snapshot older than a presence message already out would show ghosts.
        this.reply(conn, () => encodeUsers(request.id, this.usersBody()));
        return;
      case 'error':
        this.replyError(conn, request.id, request.code, request.message);
        return;
    }
  }

  private onTextFrame(conn: Connection, text: string): void {
    const parsed: ParseResult = decodeTextFrame(text, this.config.fibMaxN);
    if (!parsed.ok) {
      this.reply(conn, encodeTextError(parsed, this.config.fibMaxN));
      return;
    }
    this.answerFibonacci(conn, parsed.n, (answer) => TextProtocol.answer(answer.n, answer.value), null);
  }

  private answerFibonacci(conn: Connection, n: number, encode: (answer: FibonacciAnswer) => string, id: RequestId): void {
    if (conn.inFlight >= this.config.fibMaxInFlight) {
      this.replyError(conn, id, 'BUSY', `more than ${this.config.fibMaxInFlight} Fibonacci requests in flight`);
      return;
    }
    let answer: FibonacciAnswer | Promise<FibonacciAnswer>;
    try {
      answer = this.fibonacci.compute(n);
    } catch (err) {
      this.internalError(conn, id, err as Error);
      return;
    }
    if (!(answer instanceof Promise)) {
      this.reply(conn, encode(answer));
      return;
    }
    conn.inFlight++;
    this.reply(
      conn,
      answer.then(
        (value) => encode(value),
        (err: Error) => {
          this.log.error({ sessionId: conn.id, n, err: err.message }, 'fibonacci failed');
          return conn.protocol === 'text' ? TEXT_INTERNAL : encodeError(id, 'INTERNAL', 'internal error');
        },
      ).finally(() => conn.inFlight--),
    );
  }

  /**
   * Sends a reply in request order: a fast answer waits behind a slower one still computing.
   * A function is called only when its turn comes.
   */
  private reply(conn: Connection, frame: string | Promise<string> | (() => string)): void {
    const closeAbove = this.config.slowClientCloseBytes;
    if (conn.replyTail === undefined && !(frame instanceof Promise)) {
      conn.send(typeof frame === 'function' ? frame() : frame, closeAbove);
      return;
    }
    const tail: Promise<void> = (conn.replyTail ?? Promise.resolve()).then(() => frame).then((f) => {
      conn.send(typeof f === 'function' ? f() : f, closeAbove);
      if (conn.replyTail === tail) conn.replyTail = undefined;
    });
    conn.replyTail = tail;
  }

  private replyError(conn: Connection, id: RequestId, code: ErrorCode, message: string): void {
    this.metrics.errors.inc({ code });
    if (conn.protocol === 'text') {
      this.reply(conn, code === 'RATE_LIMITED' ? TEXT_RATE_LIMITED : code === 'BUSY' ? TEXT_BUSY : TEXT_INTERNAL);
      return;
    }
    this.reply(conn, encodeError(id, code, message));
  }

  private internalError(conn: Connection, id: RequestId, err: Error): void {
    this.log.error({ sessionId: conn.id, err: err.message }, 'request failed');
    this.replyError(conn, id, 'INTERNAL', 'internal error');
  }

  private broadcastPresence(closeAbove: number): void {
    const changes = this.presence.takeChanges();
    if (!changes) return;
    const frame = textFrameBytes(encodePresence(changes, PRESENCE_LIST_LIMIT));
    for (const conn of this.jsonConnections) if (conn.wantsPresence) conn.sendPrebuilt(frame, closeAbove);
  }

  private onClose(conn: Connection, peerCode: number, peerReason: string): void {
    const connections = conn.protocol === 'json' ? this.jsonConnections : this.textConnections;
    if (!connections.delete(conn)) return;
    if (conn.expiryTimer) clearTimeout(conn.expiryTimer);
    const left = (this.perAddress.get(conn.remoteAddr!) ?? 1) - 1;
    if (left > 0) this.perAddress.set(conn.remoteAddr!, left);
    else this.perAddress.delete(conn.remoteAddr!);

    const code = conn.closeCode ?? peerCode;
    // The peer's reason is any UTF-8, U+0000 included: made storable before it reaches the database.
    const reason = conn.closeReason ?? storableText(peerReason);
    this.metrics.connections.dec({ protocol: conn.protocol });
    this.metrics.closes.inc({ code: String(code) });
    if (code === CloseCode.TRY_AGAIN_LATER) this.metrics.slowClientCloses.inc();
    this.presence.close(conn, code, reason || null);
    this.log.info({ sessionId: conn.id, userId: conn.userId, code, reason }, 'session closed');

    if (conn.protocol === 'text' && !this.draining) {
      const line = TextProtocol.left(conn.userId);
      for (const other of this.textConnections) other.send(line, this.config.slowClientCloseBytes);
    }
  }

  private armExpiry(conn: Connection, expiresAt: number): void {
    // setTimeout holds at most ~24.8 days; re-arm for tokens that live longer.
    const delay = Math.min(Math.max(0, expiresAt - Date.now()), 2 ** 31 - 1);
    conn.expiryTimer = setTimeout(() => {
      if (Date.now() >= expiresAt) conn.close(CloseCode.POLICY_VIOLATION, 'token expired');
      else this.armExpiry(conn, expiresAt);
    }, delay);
    conn.expiryTimer.unref();
  }

  private pingSlice(): void {
    const roundMs = this.config.pingIntervalMs / this.pingSlices;
    // A round that runs late (the event loop stalled: GC, a starved CPU) judges nobody: the pongs
    // to the last ping may be sitting unread behind this very timer. It only pings again.
    const now = Date.now();
    const late = now - this.lastPingAt > roundMs * 1.5;
    this.lastPingAt = now;
    const slot = this.pingRound++ % this.pingSlices;
    // Judged in the check phase, after this loop turn has read its sockets: a pong that arrived
    // while the loop was busy is read in the poll phase, which runs between timers and setImmediate.
    setImmediate(() => this.judgeAndPing(slot, late));
  }

  private judgeAndPing(slot: number, late: boolean): void {
    if (this.draining) return; // every connection is being closed with 1001 already
    for (const connections of [this.jsonConnections, this.textConnections]) {
      for (const conn of connections) {
        if (conn.pingSlot !== slot) continue;
        if (!conn.alive && !late) {
          conn.terminate('no pong within the ping interval');
          continue;
        }
        conn.ping();
      }
    }
  }
}
