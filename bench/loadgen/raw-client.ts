// A lean WebSocket client for holding tens of thousands of sockets in one process: a raw TCP
// socket, a hand-written handshake, and frames parsed straight out of one shared read buffer
// (net's `onread`), so a tick costs one read and a few byte comparisons, no stream, no string
// and no allocation. Both servers under test get exactly this client, so it favours neither;
// the lighter it is, the less it steals from the server on a two-core machine.
//
// Server frames are never masked (RFC 6455 §5.1); client frames (pong, close) always are. Only
// what the two servers under test send is understood: unfragmented text, ping and close frames.
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';

const enum Phase {
  HANDSHAKE,
  OPEN,
  CLOSED,
}

const OPCODE_TEXT = 0x1;
const OPCODE_CLOSE = 0x8;
const OPCODE_PING = 0x9;
/** How much one read takes; a frame split over reads is reassembled in `partial`. */
const READ_BUFFER_BYTES = 256 * 1024;
const HEADER_END = Buffer.from('\r\n\r\n');
const TIME_PREFIX = Buffer.from('{"type":"time"');
const EPOCH_KEY = Buffer.from('"epochMs":');

/** One buffer for every socket of the process: each read is handled before the next one lands. */
const sharedReadBuffer = Buffer.allocUnsafe(READ_BUFFER_BYTES);

export interface RawClientEvents {
  /** The first frame after the handshake (both servers send a welcome first). */
  onFirstFrame(client: RawClient, arrival: number): void;
  onTick(client: RawClient, epochMs: number, arrival: number): void;
  /** Any other text frame after the first. `payload` is a view of the shared read buffer: valid during the call only. */
  onOtherFrame(client: RawClient, payload: Buffer): void;
  /** Closed before or after the handshake; `code` is the server's close code, or 1006. */
  onClose(client: RawClient, code: number, reason: string): void;
}

export class RawClient {
  /** epochMs of every tick received, in arrival order, and its latency (arrival − epochMs). */
  readonly epochs: number[] = [];
  readonly latencies: number[] = [];
  private readonly socket: Socket;
  private phase = Phase.HANDSHAKE;
  private welcomed = false;
  /** Bytes of an incomplete handshake or frame, kept until the rest arrives (rare). */
  private partial: Buffer | undefined;
  private reportedClose = false;
  /** We sent a close frame (close()): the server's answer needs no echo. */
  private closeSent = false;
  /** The socket error that ended the connection, reported as the close reason. */
  private errorReason = '';

  constructor(
    url: URL,
    localAddress: string | undefined,
    private readonly events: RawClientEvents,
  ) {
    this.socket = connect({
      host: url.hostname,
      port: Number(url.port),
      localAddress,
      noDelay: true,
      onread: { buffer: sharedReadBuffer, callback: (bytes: number, buffer: Uint8Array) => this.onRead(bytes, buffer as Buffer) },
    });
    const key = randomBytes(16).toString('base64');
    this.socket.write(
      `GET ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
    this.socket.on('error', (error: Error & { code?: string }) => (this.errorReason = error.code ?? error.message)); // 'close' follows
    this.socket.on('close', () => this.closed(1006, this.errorReason));
  }

  get isOpen(): boolean {
    return this.phase === Phase.OPEN;
  }

  /** Sends close(1000) and half-closes; resolves when the socket is gone or after `timeoutMs`. */
  close(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      if (this.socket.destroyed) return resolve();
      const timer = setTimeout(() => {
        this.socket.destroy();
        resolve();
      }, timeoutMs);
      this.socket.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      if (this.phase === Phase.OPEN) {
        this.closeSent = true;
        this.socket.write(maskedFrame(OPCODE_CLOSE, Buffer.from([0x03, 0xe8])));
      }
      this.socket.end();
    });
  }

  destroy(): void {
    this.socket.destroy();
  }

  private onRead(bytes: number, buffer: Buffer): boolean {
    const arrival = Date.now();
    let data = buffer.subarray(0, bytes);
    if (this.partial) {
      data = Buffer.concat([this.partial, data]);
      this.partial = undefined;
    }
    let offset = 0;
    if (this.phase === Phase.HANDSHAKE) {
      const end = data.indexOf(HEADER_END);
      if (end < 0) {
        this.partial = Buffer.from(data);
        return true;
      }
      // "HTTP/1.1 101": anything else is a refused upgrade.
      if (data[9] !== 0x31 || data[10] !== 0x30 || data[11] !== 0x31) {
        this.closed(1006, data.subarray(0, data.indexOf(0x0d)).toString('latin1'));
        this.socket.destroy();
        return false;
      }
      this.phase = Phase.OPEN;
      offset = end + 4;
    }
    while (offset < data.length && this.phase === Phase.OPEN) {
      const consumed = this.onFrame(data, offset, arrival);
      if (consumed === 0) {
        this.partial = Buffer.from(data.subarray(offset));
        break;
      }
      offset += consumed;
    }
    return true;
  }

  /** Reports the first close only: a close frame, then the TCP close, is one close. */
  private closed(code: number, reason: string): void {
    this.phase = Phase.CLOSED;
    if (this.reportedClose) return;
    this.reportedClose = true;
    this.events.onClose(this, code, reason);
  }

  /** Handles the frame at `offset`; returns its length, or 0 when it is not all there yet. */
  private onFrame(data: Buffer, offset: number, arrival: number): number {
    if (data.length - offset < 2) return 0;
    const opcode = data[offset]! & 0x0f;
    let length = data[offset + 1]! & 0x7f;
    let header = 2;
    if (length === 126) {
      if (data.length - offset < 4) return 0;
      length = data.readUInt16BE(offset + 2);
      header = 4;
    } else if (length === 127) {
      if (data.length - offset < 10) return 0;
      length = Number(data.readBigUInt64BE(offset + 2));
      header = 10;
    }
    const start = offset + header;
    const end = start + length;
    if (end > data.length) return 0;
    if (opcode === OPCODE_TEXT) {
      if (!this.welcomed) {
        this.welcomed = true;
        this.events.onFirstFrame(this, arrival);
      } else if (startsWith(data, start, end, TIME_PREFIX)) {
        const key = data.indexOf(EPOCH_KEY, start);
        if (key >= 0 && key < end) {
          const epochMs = readInteger(data, key + EPOCH_KEY.length, end);
          this.events.onTick(this, epochMs, arrival);
        }
      } else {
        this.events.onOtherFrame(this, data.subarray(start, end));
      }
    } else if (opcode === OPCODE_PING) {
      if (!this.socket.writableEnded) this.socket.write(maskedFrame(0xa, data.subarray(start, end)));
    } else if (opcode === OPCODE_CLOSE) {
      // The server started the close: echo its code. Our own close() already sent one and ended.
      if (!this.closeSent && !this.socket.writableEnded) {
        this.socket.write(maskedFrame(OPCODE_CLOSE, data.subarray(start, Math.min(end, start + 2))));
        this.socket.end();
      }
      this.closed(length >= 2 ? data.readUInt16BE(start) : 1005, data.subarray(start + 2, end).toString('utf8'));
    }
    return end - offset;
  }
}

function startsWith(data: Buffer, start: number, end: number, prefix: Buffer): boolean {
  if (end - start < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (data[start + i] !== prefix[i]) return false;
  return true;
}

function readInteger(data: Buffer, from: number, end: number): number {
  let value = 0;
  for (let i = from; i < end; i++) {
    const digit = data[i]! - 0x30;
    if (digit < 0 || digit > 9) break;
    value = value * 10 + digit;
  }
  return value;
}

/** A client frame (FIN set) with a random mask, as RFC 6455 requires of clients. Payloads < 126 bytes. */
function maskedFrame(opcode: number, payload: Buffer): Buffer {
  const frame = Buffer.allocUnsafe(6 + payload.length);
  frame[0] = 0x80 | opcode;
  frame[1] = 0x80 | payload.length;
  const mask = randomBytes(4);
  mask.copy(frame, 2);
  for (let i = 0; i < payload.length; i++) frame[6 + i] = payload[i]! ^ mask[i & 3]!;
  return frame;
}
