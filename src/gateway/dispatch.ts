// Dispatch: one client frame, in the order the code follows it:
//   frame → binary? close 1003 → rate limiter (RATE_LIMITED; persistent abuse: close 1008)
//         → codec (json-codec.ts / text-codec.ts) → service (Fibonacci, users, token refresh)
//         → codec → reply
// Replies leave in request order: a fast answer waits behind a slower one still computing.

import type { TokenVerifier } from '../auth/token-verifier.js';
import type { Config } from '../config.js';
import type { FibonacciAnswer, FibonacciService } from '../fibonacci/service.js';
import type { Logger } from '../log.js';
import type { OnlineUsers } from '../presence/online-users.js';
import { CloseCode, type ErrorCode } from '../protocol/codes.js';
import { USERS_PAGE_MAX } from '../protocol/limits.js';
import { TextProtocol, type RequestId } from '../protocol/messages.js';
import type { Connection } from './connection.js';
import { decodeJsonFrame, encodeError, encodeFibonacci, encodeRefreshed, encodeUsers, encodeUsersBody } from './json-codec.js';
import type { GatewayMetrics } from './metrics.js';
import { decodeTextFrame, encodeTextError } from './text-codec.js';

export type DispatchLimits = Pick<Config, 'fibMaxN' | 'fibMaxInFlight' | 'rateLimitPerSecond' | 'slowClientCloseBytes'>;

export class Dispatcher {
  private usersCache = { version: -1, body: '' };

  constructor(
    private readonly limits: DispatchLimits,
    private readonly fibonacci: Pick<FibonacciService, 'compute'>,
    private readonly onlineUsers: OnlineUsers,
    private readonly metrics: GatewayMetrics,
    private readonly log: Logger,
    /** Undefined in open mode: there is no token to refresh. */
    private readonly tokens: TokenVerifier | undefined,
  ) {}

  onFrame(conn: Connection, data: Buffer, isBinary: boolean): void {
    conn.alive = true;
    if (isBinary) {
      conn.close(CloseCode.UNSUPPORTED_DATA, 'binary frames are not supported');
      return;
    }
    this.metrics.frameReceived(conn.protocol);
    const decision = conn.limiter.take(Date.now());
    if (decision !== 'allow') {
      this.metrics.rateLimited();
      if (decision === 'abuse') {
        conn.close(CloseCode.POLICY_VIOLATION, 'rate limit exceeded persistently');
        return;
      }
      this.replyError(conn, null, 'RATE_LIMITED', `more than ${this.limits.rateLimitPerSecond} messages per second`);
      return;
    }
    const text = data.toString('utf8');
    if (conn.protocol === 'text') {
      const parsed = decodeTextFrame(text, this.limits.fibMaxN);
      if (parsed.ok) this.answerFibonacci(conn, parsed.n, (answer) => TextProtocol.answer(answer.n, answer.value), null);
      else this.replyError(conn, null, parsed.code, parsed.message);
      return;
    }
    const request = decodeJsonFrame(text, this.limits.fibMaxN);
    switch (request.type) {
      case 'fibonacci':
        this.answerFibonacci(conn, request.n, (answer) => encodeFibonacci(request.id, answer), request.id);
        return;
      case 'users':
        // Built when sent: a snapshot older than a presence message already out would show ghosts.
        this.reply(conn, () => encodeUsers(request.id, this.usersBody()));
        return;
      case 'refresh':
        this.refresh(conn, request.id, request.token);
        return;
      case 'error':
        this.replyError(conn, request.id, request.code, request.message);
        return;
    }
  }

  /**
   * A new token for the open session: the expiry close moves to its exp. A token that does not
   * verify is refused and the session keeps its old expiry; a token for another user is refused
   * and ends the session (1008): one connection is one user.
   */
  private refresh(conn: Connection, id: RequestId, token: string): void {
    if (!this.tokens) {
      this.replyError(conn, id, 'INVALID_MESSAGE', 'this server does not use tokens');
      return;
    }
    let otherUser = false;
    const frame = this.tokens.verify(token).then((checked) => {
      if (!checked.ok) return this.errorFrame(conn, id, 'UNAUTHORIZED', checked.message);
      if (checked.token.userId !== conn.userId) {
        otherUser = true;
        return this.errorFrame(conn, id, 'UNAUTHORIZED', 'the token is for another user');
      }
      conn.expireAt(checked.token.expiresAt);
      return encodeRefreshed(id, checked.token.exp);
    });
    this.reply(conn, frame, () => {
      if (otherUser) conn.close(CloseCode.POLICY_VIOLATION, 'token for another user');
    });
  }

  /** The part of a `users` reply every request shares, rebuilt only when presence changed. */
  private usersBody(): string {
    const online = this.onlineUsers;
    if (this.usersCache.version !== online.version) {
      const { users, truncated } = online.list(USERS_PAGE_MAX);
      this.usersCache = { version: online.version, body: encodeUsersBody(online.count, users, truncated) };
    }
    return this.usersCache.body;
  }

  private answerFibonacci(conn: Connection, n: number, encode: (answer: FibonacciAnswer) => string, id: RequestId): void {
    if (conn.inFlight >= this.limits.fibMaxInFlight) {
      this.replyError(conn, id, 'BUSY', `more than ${this.limits.fibMaxInFlight} Fibonacci requests in flight`);
      return;
    }
    let answer: FibonacciAnswer | Promise<FibonacciAnswer>;
    try {
      answer = this.fibonacci.compute(n);
    } catch (err) {
      this.log.error({ sessionId: conn.id, n, err: (err as Error).message }, 'fibonacci failed');
      this.replyError(conn, id, 'INTERNAL', 'internal error');
      return;
    }
    if (!(answer instanceof Promise)) {
      this.reply(conn, encode(answer));
      return;
    }
    conn.inFlight++;
    const frame = answer
      .then(encode, (err: Error) => {
        this.log.error({ sessionId: conn.id, n, err: err.message }, 'fibonacci failed');
        return this.errorFrame(conn, id, 'INTERNAL', 'internal error');
      })
      .finally(() => conn.inFlight--);
    this.reply(conn, frame);
  }

  /**
   * Sends a frame in request order. A function is called only when its turn comes; `sent` runs
   * right after the frame is written.
   */
  private reply(conn: Connection, frame: string | Promise<string> | (() => string), sent?: () => void): void {
    const closeAbove = this.limits.slowClientCloseBytes;
    if (conn.replyTail === undefined && !(frame instanceof Promise)) {
      conn.send(typeof frame === 'function' ? frame() : frame, closeAbove);
      sent?.();
      return;
    }
    const tail: Promise<void> = (conn.replyTail ?? Promise.resolve())
      .then(() => frame)
      .then((f) => {
        conn.send(typeof f === 'function' ? f() : f, closeAbove);
        sent?.();
        if (conn.replyTail === tail) conn.replyTail = undefined;
      });
    conn.replyTail = tail;
  }

  private replyError(conn: Connection, id: RequestId, code: ErrorCode, message: string): void {
    this.reply(conn, this.errorFrame(conn, id, code, message));
  }

  /** An error frame in the connection's protocol, counted in pulse_errors_total. */
  private errorFrame(conn: Connection, id: RequestId, code: ErrorCode, message: string): string {
    this.metrics.errorReplied(code);
    return conn.protocol === 'text' ? encodeTextError(code, this.limits.fibMaxN) : encodeError(id, code, message);
  }
}
