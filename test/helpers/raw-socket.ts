// WebSocket clients for the protection tests.
// - rawUpgrade(): a hand-written handshake over node:net, so a test sees the plain HTTP answer
//   of a refused upgrade, and can then misbehave at will (never read, never pong, send any bytes).
// - Probe: a small `ws` client that records every frame and the close code it saw.

import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import WebSocket from 'ws';

export const Opcode = { CONTINUATION: 0x0, TEXT: 0x1, BINARY: 0x2, CLOSE: 0x8, PING: 0x9, PONG: 0xa } as const;

export interface HttpAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export interface ServerFrame {
  opcode: number;
  fin: boolean;
  payload: Buffer;
}

/** One client frame, masked as RFC 6455 requires. */
export function encodeClientFrame(opcode: number, payload: Buffer | string, fin = true): Buffer {
  const data = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  const mask = randomBytes(4);
  let header: Buffer;
  if (data.length < 126) {
    header = Buffer.alloc(2);
    header[1] = 0x80 | data.length;
  } else if (data.length < 65_536) {
    header = Buffer.alloc(4);
    header[1] = 0x80 | 126;
    header.writeUInt16BE(data.length, 2);
  } else {
    header = Buffer.alloc(10);
    header[1] = 0x80 | 127;
    header.writeBigUInt64BE(BigInt(data.length), 2);
  }
  header[0] = (fin ? 0x80 : 0) | opcode;
  const masked = Buffer.alloc(data.length);
  for (let i = 0; i < data.length; i++) masked[i] = data[i]! ^ mask[i % 4]!;
  return Buffer.concat([header, mask, masked]);
}

/** Parses as many complete (unmasked) server frames as `buffer` holds; returns them and the rest. */
export function decodeServerFrames(buffer: Buffer): { frames: ServerFrame[]; rest: Buffer } {
  const frames: ServerFrame[] = [];
  let offset = 0;
  for (;;) {
    if (buffer.length - offset < 2) break;
    const b0 = buffer[offset]!;
    const b1 = buffer[offset + 1]!;
    let length = b1 & 0x7f;
    let headerLength = 2;
    if (length === 126) {
      if (buffer.length - offset < 4) break;
      length = buffer.readUInt16BE(offset + 2);
      headerLength = 4;
    } else if (length === 127) {
      if (buffer.length - offset < 10) break;
      length = Number(buffer.readBigUInt64BE(offset + 2));
      headerLength = 10;
    }
    if (b1 & 0x80) throw new Error('server frames must not be masked');
    if (buffer.length - offset < headerLength + length) break;
    frames.push({
      opcode: b0 & 0x0f,
      fin: (b0 & 0x80) !== 0,
      payload: buffer.subarray(offset + headerLength, offset + headerLength + length),
    });
    offset += headerLength + length;
  }
  return { frames, rest: buffer.subarray(offset) };
}

/** A WebSocket spoken by hand over a TCP socket. Frames are recorded; pings are answered only if asked to. */
export class RawWebSocket {
  readonly frames: ServerFrame[] = [];
  ended = false;
  answerPings = false;
  private pending: Buffer;
  private waiters: (() => void)[] = [];

  constructor(
    readonly socket: Socket,
    leftover: Buffer,
  ) {
    this.pending = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('close', () => {
      this.ended = true;
      this.wake();
    });
    socket.on('error', () => undefined);
    if (leftover.length > 0) this.onData(leftover);
  }

  /** Text frames received so far, decoded. */
  get texts(): string[] {
    return this.frames.filter((f) => f.opcode === Opcode.TEXT).map((f) => f.payload.toString('utf8'));
  }

  /** The close code of the server's close frame, if one arrived. */
  get closeCode(): number | undefined {
    const close = this.frames.find((f) => f.opcode === Opcode.CLOSE);
    return close && close.payload.length >= 2 ? close.payload.readUInt16BE(0) : undefined;
  }

  write(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  send(opcode: number, payload: Buffer | string): void {
    this.write(encodeClientFrame(opcode, payload));
  }

  sendText(text: string): void {
    this.send(Opcode.TEXT, text);
  }

  /** Stops reading: the kernel buffers fill up and the server's writes start to queue. */
  pause(): void {
    this.socket.pause();
  }

  destroy(): void {
    this.socket.destroy();
  }

  /** Waits until `done()` holds (checked after every frame and on close). */
  async until(done: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!done()) {
      if (Date.now() > deadline) throw new Error(`raw socket: timed out waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 100);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  private onData(chunk: Buffer): void {
    const { frames, rest } = decodeServerFrames(Buffer.concat([this.pending, chunk]));
    this.pending = Buffer.from(rest);
    for (const frame of frames) {
      this.frames.push(frame);
      if (frame.opcode === Opcode.PING && this.answerPings && !this.socket.destroyed) this.send(Opcode.PONG, frame.payload);
    }
    if (frames.length > 0) this.wake();
  }

  private wake(): void {
    for (const wake of this.waiters.splice(0)) wake();
  }
}

export type UpgradeResult = { status: 101; headers: Record<string, string>; ws: RawWebSocket } | ({ ws?: undefined } & HttpAnswer);

/**
 * Sends a WebSocket upgrade request by hand. A refusal is read as a plain HTTP answer (status,
 * headers, body) and the socket closed; a 101 returns the open RawWebSocket.
 */
export function rawUpgrade(
  port: number,
  path: string,
  headers: Record<string, string> = {},
  options: { timeoutMs?: number; localAddress?: string } = {},
): Promise<UpgradeResult> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1', ...(options.localAddress ? { localAddress: options.localAddress } : {}) });
    let buffer = Buffer.alloc(0);
    let head: { status: number; headers: Record<string, string>; bodyStart: number } | undefined;
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`raw upgrade of ${path}: no complete answer in ${timeoutMs} ms; got ${JSON.stringify(buffer.toString('latin1').slice(0, 200))}`));
    }, timeoutMs);
    const finish = (result: UpgradeResult) => {
      clearTimeout(timer);
      socket.removeListener('data', onData);
      resolve(result);
    };
    const httpAnswer = (): HttpAnswer => ({ status: head!.status, headers: head!.headers, body: buffer.subarray(head!.bodyStart).toString('utf8') });
    const onData = (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      if (!head) {
        const end = buffer.indexOf('\r\n\r\n');
        if (end < 0) return;
        const lines = buffer.subarray(0, end).toString('latin1').split('\r\n');
        const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(lines[0] ?? '')?.[1]);
        const parsed: Record<string, string> = {};
        for (const line of lines.slice(1)) {
          const colon = line.indexOf(':');
          if (colon > 0) parsed[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
        }
        head = { status, headers: parsed, bodyStart: end + 4 };
      }
      if (head.status === 101) {
        const leftover = Buffer.from(buffer.subarray(head.bodyStart));
        finish({ status: 101, headers: head.headers, ws: new RawWebSocket(socket, leftover) });
        return;
      }
      const length = Number(head.headers['content-length'] ?? NaN);
      if (Number.isFinite(length) && buffer.length - head.bodyStart >= length) {
        finish(httpAnswer());
        socket.destroy();
      }
    };
    socket.on('data', onData);
    socket.on('end', () => {
      if (head && head.status !== 101) finish(httpAnswer());
    });
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.on('connect', () => {
      const lines = [
        `GET ${path} HTTP/1.1`,
        ...(Object.keys(headers).some((name) => name.toLowerCase() === 'host') ? [] : [`Host: 127.0.0.1:${port}`]),
        'Upgrade: websocket',
        'Connection: Upgrade',
        `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`,
        'Sec-WebSocket-Version: 13',
        ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
      ];
      socket.write(`${lines.join('\r\n')}\r\n\r\n`);
    });
  });
}

/** rawUpgrade that must succeed. */
export async function rawOpen(port: number, path: string, headers: Record<string, string> = {}, localAddress?: string): Promise<RawWebSocket> {
  const result = await rawUpgrade(port, path, headers, localAddress ? { localAddress } : {});
  if (result.status !== 101 || !result.ws) throw new Error(`expected 101, got ${result.status} ${'body' in result ? result.body : ''}`);
  return result.ws;
}

export interface ProbeFrame {
  type: string;
  [key: string]: unknown;
}

/** A `ws` client that records every text frame and the close it saw. */
export class Probe {
  readonly texts: string[] = [];
  closed: { code: number; reason: string } | undefined;
  private waiters: (() => void)[] = [];

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (!isBinary) this.texts.push(data.toString('utf8'));
      this.wake();
    });
    ws.on('close', (code: number, reason: Buffer) => {
      this.closed = { code, reason: reason.toString() };
      this.wake();
    });
    ws.on('error', () => undefined);
  }

  /** Opens a connection; resolves after the welcome (JSON protocol) or on open (text protocol). */
  static open(url: string, options: WebSocket.ClientOptions = {}): Promise<Probe> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, options);
      const probe = new Probe(ws);
      const fail = (err: Error) => reject(err);
      ws.once('error', fail);
      ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused with HTTP ${res.statusCode}`)));
      ws.once('open', () => {
        ws.removeListener('error', fail);
        if (new URL(url).pathname !== '/ws') {
          resolve(probe);
          return;
        }
        probe.until(() => probe.texts.some((t) => t.startsWith('{"type":"welcome"')), 'welcome').then(() => resolve(probe), reject);
      });
    });
  }

  /** Every JSON frame received, parsed. */
  get frames(): ProbeFrame[] {
    return this.texts.map((t) => JSON.parse(t) as ProbeFrame);
  }

  /** Replies only: everything but welcome, time and presence. */
  get replies(): ProbeFrame[] {
    return this.frames.filter((f) => f.type !== 'welcome' && f.type !== 'time' && f.type !== 'presence');
  }

  get welcome(): ProbeFrame | undefined {
    return this.frames.find((f) => f.type === 'welcome');
  }

  send(data: string | Buffer, options: { binary?: boolean } = {}): void {
    this.ws.send(data, { binary: options.binary ?? false });
  }

  async until(done: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!done()) {
      if (Date.now() > deadline) {
        const tail = this.texts.slice(-5).map((t) => t.slice(0, 120));
        throw new Error(`probe: timed out waiting for ${what} (closed: ${JSON.stringify(this.closed)}, last frames: ${tail.join(' | ')})`);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 100);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Waits for `count` more replies than `from` and returns them. */
  async nextReplies(count: number, from: number, timeoutMs = 10_000): Promise<ProbeFrame[]> {
    await this.until(() => this.replies.length >= from + count, `${count} replies after ${from}`, timeoutMs);
    return this.replies.slice(from, from + count);
  }

  /** Sends one frame and resolves with the single reply it gets. */
  async request(data: string | Buffer, timeoutMs = 10_000): Promise<ProbeFrame> {
    const from = this.replies.length;
    this.send(data);
    const [reply] = await this.nextReplies(1, from, timeoutMs);
    return reply!;
  }

  async waitClosed(timeoutMs = 10_000): Promise<{ code: number; reason: string }> {
    await this.until(() => this.closed !== undefined, 'close', timeoutMs);
    return this.closed!;
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.ws.close(1000, 'test done');
    return this.waitClosed().then(
      () => undefined,
      () => void this.ws.terminate(),
    );
  }

  private wake(): void {
    for (const wake of this.waiters.splice(0)) wake();
  }
}

/** The value of one Prometheus sample from GET /metrics (0 when absent). */
export async function metricValue(baseUrl: string, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const match = /^([a-zA-Z_:][\w:]*)(\{([^}]*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const have = (match[3] ?? '').split(',').filter(Boolean);
    if (wanted.every((w) => have.includes(w)) && have.length === wanted.length) return Number(match[4]);
  }
  return 0;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * The close code and reason recorded in the database for a user's newest session, once written
 * (GET /api/users/:id/sessions; the writer batches, so this polls).
 */
export async function recordedClose(baseUrl: string, userId: string, timeoutMs = 10_000): Promise<{ closeCode: number; closeReason: string | null }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await fetch(`${baseUrl}/api/users/${encodeURIComponent(userId)}/sessions?limit=1`);
    if (res.ok) {
      const body = (await res.json()) as { sessions: { closeCode: number | null; closeReason: string | null }[] };
      const newest = body.sessions[0];
      if (newest && newest.closeCode !== null) return { closeCode: newest.closeCode, closeReason: newest.closeReason };
    } else {
      await res.arrayBuffer();
    }
    if (Date.now() > deadline) throw new Error(`no closed session recorded for ${userId}`);
    await sleep(100);
  }
}
