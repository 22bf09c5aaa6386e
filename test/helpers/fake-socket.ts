// A stand-in for a server-side ws WebSocket, for unit tests of the gateway without any network:
// it records the frames written to its TCP socket (the gateway writes prebuilt frames there)
// and the close or terminate the gateway asked for, and can emit what ws would.

import { EventEmitter } from 'node:events';
import type { WebSocket } from 'ws';
import { Connection } from '../../src/gateway/connection.js';
import { RateLimiter } from '../../src/gateway/rate-limiter.js';

export interface WrittenFrame {
  opcode: number;
  payload: Buffer;
  /** The very Buffer handed to write(): broadcasts must hand every socket the same one. */
  raw: Buffer;
}

/** Splits bytes written by the server into frames (unmasked, as a server sends them). */
function parseFrames(raw: Buffer): WrittenFrame[] {
  const frames: WrittenFrame[] = [];
  let at = 0;
  while (at < raw.length) {
    const opcode = raw[at]! & 0x0f;
    let length = raw[at + 1]! & 0x7f;
    let header = 2;
    if (length === 126) {
      length = raw.readUInt16BE(at + 2);
      header = 4;
    } else if (length === 127) {
      length = Number(raw.readBigUInt64BE(at + 2));
      header = 10;
    }
    frames.push({ opcode, payload: raw.subarray(at + header, at + header + length), raw });
    at += header + length;
  }
  return frames;
}

export class FakeSocket extends EventEmitter {
  readyState = 1;
  bufferedAmount = 0;
  readonly writes: Buffer[] = [];
  closedWith: { code: number; reason: string } | undefined;
  terminated = false;
  readonly _socket = {
    write: (chunk: Buffer) => {
      this.writes.push(chunk);
      return true;
    },
  };

  /** When set, a close() is answered at once, as a well-behaved peer would: 'close' is emitted. */
  echoCloses = false;

  close(code: number, reason: string): void {
    this.closedWith ??= { code, reason };
    this.readyState = 2;
    if (this.echoCloses) setImmediate(() => this.peerClosed(code, reason));
  }

  terminate(): void {
    this.terminated = true;
    this.readyState = 3;
    setImmediate(() => this.peerClosed(1006, ''));
  }

  /** What ws emits when the connection is over. */
  peerClosed(code: number, reason: string): void {
    this.readyState = 3;
    this.emit('close', code, Buffer.from(reason));
  }

  get frames(): WrittenFrame[] {
    return this.writes.flatMap(parseFrames);
  }

  /** Text frames written so far, as strings. */
  get texts(): string[] {
    return this.frames.filter((f) => f.opcode === 1).map((f) => f.payload.toString('utf8'));
  }

  /** JSON frames written so far, parsed. */
  get messages(): Record<string, unknown>[] {
    return this.texts.map((t) => JSON.parse(t) as Record<string, unknown>);
  }

  get pings(): number {
    return this.frames.filter((f) => f.opcode === 9).length;
  }

  asWebSocket(): WebSocket {
    return this as unknown as WebSocket;
  }
}

let nextId = 0;

/** A Connection on a FakeSocket, as the gateway would have accepted it. */
export function fakeConnection(
  options: { protocol?: 'json' | 'text'; userId?: string; wantsPresence?: boolean; perSecond?: number; burst?: number } = {},
): { conn: Connection; socket: FakeSocket } {
  const socket = new FakeSocket();
  const protocol = options.protocol ?? 'json';
  const userId = options.userId ?? `user${++nextId}`;
  const conn = new Connection(
    socket.asWebSocket(),
    `session-${++nextId}`,
    userId,
    userId,
    protocol,
    '127.0.0.1',
    null,
    Date.now(),
    new RateLimiter(options.perSecond ?? 0, options.burst ?? 1, Date.now()),
    protocol === 'json' && (options.wantsPresence ?? true),
  );
  return { conn, socket };
}
