// One open WebSocket: its session (the same object presence keeps), its limiter, and the few
// flags the gateway needs. Kept small on purpose: there may be 100,000 of these.

import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';
import { CloseCode } from '../protocol/codes.js';
import type { LiveSession, SessionProtocol } from '../presence/live-sessions.js';
import type { RateLimiter } from './rate-limiter.js';

/** The open connections by protocol: the gateway adds and removes, dispatch and broadcast read. */
export interface Connections {
  readonly json: Set<Connection>;
  readonly text: Set<Connection>;
}

/** A slow client cannot read its close frame either: give it this long, then drop the TCP connection. */
const SLOW_CLOSE_GRACE_MS = 1_000;

/**
 * A complete unmasked WebSocket text frame (RFC 6455 §5.2) around `payload`, built once per
 * tick so that each socket only gets a write of the same bytes, with no per-socket framing.
 */
export function textFrameBytes(payload: Buffer | string): Buffer {
  const length = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length;
  const headerLength = length < 126 ? 2 : length < 65_536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(headerLength + length);
  frame[0] = 0x81; // FIN + text opcode
  if (length < 126) {
    frame[1] = length;
  } else if (length < 65_536) {
    frame[1] = 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 127;
    frame.writeBigUInt64BE(BigInt(length), 2);
  }
  if (typeof payload === 'string') frame.write(payload, headerLength, 'utf8');
  else payload.copy(frame, headerLength);
  return frame;
}

/** An empty ping (RFC 6455 §5.5.2): the same two bytes for every socket, no framing per ping. */
const PING_FRAME = Buffer.from([0x89, 0x00]);

export class Connection implements LiveSession {
  /** Cleared by each ping, set by each pong or frame: a peer still false at the next ping is gone. */
  alive = true;
  /** Which slice of the ping rounds this connection belongs to (see broadcast.ts). */
  pingSlot = 0;
  /** Answers waiting for a worker; more than FIB_MAX_IN_FLIGHT → BUSY. */
  inFlight = 0;
  /** Set when answers must wait for an earlier, slower one, to keep replies in request order. */
  replyTail: Promise<void> | undefined;
  /** The close code and reason the server sent, recorded on the session instead of the peer's echo. */
  closeCode: number | undefined;
  closeReason: string | undefined;
  private expiryTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly socket: WebSocket,
    readonly id: string,
    readonly userId: string,
    readonly name: string,
    readonly protocol: SessionProtocol,
    readonly remoteAddr: string,
    readonly userAgent: string | null,
    readonly connectedAt: number,
    readonly limiter: RateLimiter,
    readonly wantsPresence: boolean,
  ) {}

  /** Writes a text frame; see sendPrebuilt. */
  send(text: string, closeAboveBytes: number): boolean {
    return this.sendPrebuilt(textFrameBytes(text), closeAboveBytes);
  }

  /**
   * Writes a frame built by textFrameBytes() (once per tick for a broadcast) straight to the TCP
   * socket, unless the client has fallen too far behind: then it is closed with 1013 instead of
   * letting its buffer grow. One buffer, one write (ws would cork a header and a payload into a
   * writev). Safe because permessage-deflate is off: ws's sender never holds frames back, so
   * order is kept. Returns whether the frame was written.
   */
  sendPrebuilt(frame: Buffer, closeAboveBytes: number): boolean {
    if (this.socket.readyState === 1 && this.socket.bufferedAmount > closeAboveBytes) {
      this.closeSlow();
      return false;
    }
    return this.writeFrame(frame);
  }

  /** Writes a complete frame to the TCP socket of an open WebSocket, with no checks of its backlog. */
  writeFrame(frame: Buffer): boolean {
    if (this.socket.readyState !== 1) return false;
    (this.socket as unknown as { _socket: Socket })._socket.write(frame);
    return true;
  }

  /** Clears `alive` and pings; the pong (or any frame) sets it again. */
  ping(): void {
    this.alive = false;
    this.writeFrame(PING_FRAME);
  }

  close(code: number, reason: string): void {
    if (this.closeCode === undefined) {
      this.closeCode = code;
      this.closeReason = reason;
    }
    this.socket.close(code, reason);
  }

  /** Closes with 1013 and, since the peer is not reading, does not wait for its close frame for long. */
  closeSlow(): void {
    if (this.closeCode !== undefined) return;
    this.close(CloseCode.TRY_AGAIN_LATER, 'client too slow to keep up');
    setTimeout(() => this.socket.terminate(), SLOW_CLOSE_GRACE_MS).unref();
  }

  /**
   * Closes with 1008 once `expiresAt` (epoch ms: the token's exp) has passed; a refresh moves it,
   * undefined cancels it. Set when the session opens and by each refresh.
   */
  expireAt(expiresAt: number | undefined): void {
    clearTimeout(this.expiryTimer);
    this.expiryTimer = undefined;
    // A refresh whose token check ends after the close must not arm a timer for a connection that is gone.
    if (expiresAt === undefined || this.socket.readyState !== 1) return;
    // setTimeout holds at most ~24.8 days; re-armed for tokens that live longer.
    this.expiryTimer = setTimeout(() => {
      if (Date.now() >= expiresAt) this.close(CloseCode.POLICY_VIOLATION, 'token expired');
      else this.expireAt(expiresAt);
    }, Math.min(Math.max(0, expiresAt - Date.now()), 2 ** 31 - 1));
    this.expiryTimer.unref();
  }

  /** Drops a silent peer without a closing handshake; its session records 1006. */
  terminate(reason: string): void {
    if (this.closeCode === undefined) {
      this.closeCode = CloseCode.ABNORMAL;
      this.closeReason = reason;
    }
    this.socket.terminate();
  }
}
