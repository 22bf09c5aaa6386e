// An in-process stand-in for a Pulse server, for PulseClient's unit tests: the JSON protocol's
// frames over a real `ws` server on loopback, and the HTTP pre-check, with every behaviour the
// tests need under their control (refusals, drops, drains, silence, held answers).

import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { fibonacci } from '../../src/fibonacci/core.js';
import type { HttpErrorCode } from '../../src/protocol/codes.js';
import type { OnlineUser, PresenceFrame } from '../../src/protocol/frames.js';

export interface Refusal {
  status: number;
  code: HttpErrorCode;
  message: string;
}

export interface FakeConnection {
  socket: WebSocket;
  query: URLSearchParams;
  /** Frames the client sent, parsed, not answered yet (holdAnswers). */
  received: Record<string, unknown>[];
  /** Every frame the client sent, parsed. */
  sent: Record<string, unknown>[];
}

export class FakePulseServer {
  readonly connections: FakeConnection[] = [];
  /** Upgrade requests seen, refused ones included. */
  upgrades = 0;
  /** Pre-check requests seen. */
  prechecks = 0;
  /** Set to refuse every upgrade (and answer the pre-check with the same refusal). */
  refusal: Refusal | undefined;
  /** The `users` a users reply lists. */
  users: OnlineUser[] = [];
  /** While true, requests are recorded but not answered. */
  holdAnswers = false;
  /** Whether to send the welcome on connection. */
  sendWelcome = true;
  /** Tokens sent in `refresh` frames, in order. */
  readonly refreshes: string[] = [];
  /** Errors to answer the next requests with instead, as the server would (RATE_LIMITED carries id null). */
  readonly errorsNext: { code: string; idNull: boolean }[] = [];
  private readonly http: Server;
  private readonly wss = new WebSocketServer({ noServer: true });
  private readonly arrivals: ((conn: FakeConnection) => void)[] = [];

  private constructor() {
    this.http = createServer((request, response) => {
      if (!request.url?.startsWith('/api/admission')) {
        response.writeHead(404).end();
        return;
      }
      this.prechecks++;
      const refusal = this.refusal;
      response.writeHead(refusal?.status ?? 200, { 'content-type': 'application/json' });
      response.end(JSON.stringify(refusal ? { statusCode: refusal.status, code: refusal.code, error: 'Refused', message: refusal.message } : { ok: true }));
    });
    this.http.on('upgrade', (request: IncomingMessage, socket, head) => {
      this.upgrades++;
      if (this.refusal) {
        socket.end(`HTTP/1.1 ${this.refusal.status} Refused\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
        return;
      }
      this.wss.handleUpgrade(request, socket, head, (ws) => this.accept(ws, new URL(request.url ?? '/', 'http://x').searchParams));
    });
  }

  static async start(): Promise<FakePulseServer> {
    const server = new FakePulseServer();
    await new Promise<void>((resolve) => server.http.listen(0, '127.0.0.1', resolve));
    return server;
  }

  get url(): string {
    return `ws://127.0.0.1:${(this.http.address() as AddressInfo).port}/ws`;
  }

  /** The open connections. */
  get open(): FakeConnection[] {
    return this.connections.filter((c) => c.socket.readyState === 1);
  }

  /** Resolves with the next connection to arrive (or the `index`th, if it already has). */
  connection(index: number): Promise<FakeConnection> {
    const existing = this.connections[index];
    if (existing) return Promise.resolve(existing);
    return new Promise((resolve) => {
      const wait = () => {
        const conn = this.connections[index];
        if (conn) resolve(conn);
        else this.arrivals.push(wait);
      };
      this.arrivals.push(wait);
    });
  }

  /** One time frame to every open connection. */
  tick(epochMs = Math.floor(Date.now() / 1000) * 1000): void {
    this.broadcast({ type: 'time', now: new Date(epochMs).toISOString(), epochMs });
  }

  presence(frame: Omit<PresenceFrame, 'type'>): void {
    this.broadcast({ type: 'presence', ...frame });
  }

  broadcast(frame: object): void {
    for (const conn of this.open) conn.socket.send(JSON.stringify(frame));
  }

  /** Answers the requests of `conn` that are still waiting, in order. */
  answerHeld(conn: FakeConnection): void {
    for (const frame of conn.received.splice(0)) this.answer(conn, frame);
  }

  async stop(): Promise<void> {
    for (const conn of this.connections) conn.socket.terminate();
    await new Promise<void>((resolve) => this.http.close(() => resolve()));
  }

  private accept(socket: WebSocket, query: URLSearchParams): void {
    const conn: FakeConnection = { socket, query, received: [], sent: [] };
    this.connections.push(conn);
    socket.on('message', (data) => {
      const text = String(data);
      const frame = /^\s*-?\d+\s*$/.test(text) ? { type: 'fibonacci', n: Number(text), id: null } : (JSON.parse(text) as Record<string, unknown>);
      conn.sent.push(frame);
      if (this.holdAnswers) conn.received.push(frame);
      else this.answer(conn, frame);
    });
    if (this.sendWelcome) {
      const name = query.get('name') ?? query.get('token') ?? 'guest-abcdef';
      socket.send(
        JSON.stringify({
          type: 'welcome',
          protocol: 1,
          sessionId: `session-${this.connections.length}`,
          user: { id: name, name },
          instanceId: 'instance-1',
          now: new Date().toISOString(),
          limits: { maxN: 1000, maxMessageBytes: 4096, messagesPerSecond: 20 },
        }),
      );
    }
    for (const arrived of this.arrivals.splice(0)) arrived(conn);
  }

  private answer(conn: FakeConnection, frame: Record<string, unknown>): void {
    const id = frame.id ?? null;
    const error = this.errorsNext.shift();
    if (error) {
      conn.socket.send(JSON.stringify({ type: 'error', id: error.idNull ? null : id, code: error.code, message: `refused: ${error.code}` }));
      return;
    }
    if (frame.type === 'refresh') {
      const token = String(frame.token);
      this.refreshes.push(token);
      const exp = (JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString() || '{}') as { exp?: number }).exp ?? null;
      conn.socket.send(JSON.stringify({ type: 'refreshed', id, exp }));
      return;
    }
    if (frame.type === 'users') {
      conn.socket.send(JSON.stringify({ type: 'users', id, online: this.users.length, users: this.users }));
      return;
    }
    const n = frame.n;
    if (typeof n !== 'number' || !Number.isInteger(n)) {
      conn.socket.send(JSON.stringify({ type: 'error', id, code: 'INVALID_NUMBER', message: 'n must be an integer' }));
    } else if (Math.abs(n) > 1000) {
      conn.socket.send(JSON.stringify({ type: 'error', id, code: 'OUT_OF_RANGE', message: 'n must be between -1000 and 1000' }));
    } else {
      const value = fibonacci(n).toString();
      conn.socket.send(JSON.stringify({ type: 'fibonacci', id, n, value, digits: value.replace('-', '').length }));
    }
  }
}
