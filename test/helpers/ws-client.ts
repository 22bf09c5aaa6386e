// A small promise-based WebSocket test client: connect, wait for a message of some type, collect
// messages, follow presence, close with a code and learn the code the peer closed with.

import WebSocket from 'ws';

/** A server frame: the parsed JSON object, or `{type:'text', text}` for a text-protocol line. */
export interface ServerMessage {
  type: string;
  [key: string]: unknown;
}

export interface Welcome extends ServerMessage {
  type: 'welcome';
  sessionId: string;
  user: { id: string; name: string };
  instanceId: string;
}

export interface UserEntry {
  id: string;
  name: string;
  sessions: number;
  since: string;
}

export interface PresenceMessage extends ServerMessage {
  type: 'presence';
  online: number;
  joined: { id: string; name: string }[];
  left: { id: string; name: string }[];
  truncated?: boolean;
}

export interface CloseInfo {
  code: number;
  reason: string;
}

export interface ConnectOptions {
  /** Connect timeout, including the welcome on the JSON protocol. */
  timeoutMs?: number;
  /** Wait for the welcome (JSON protocol) before resolving. Default true for /ws URLs. */
  waitWelcome?: boolean;
  /** Which messages to keep in `messages` (all by default); the welcome is always kept. */
  keep?: (message: ServerMessage) => boolean;
  headers?: Record<string, string>;
}

export class UpgradeRefused extends Error {
  constructor(readonly status: number, readonly body: string) {
    super(`upgrade refused with HTTP ${status}: ${body}`);
  }
}

type Waiter = { test: (m: ServerMessage) => boolean; resolve: (m: ServerMessage) => void; reject: (err: Error) => void };

export class TestClient {
  readonly messages: ServerMessage[] = [];
  welcome: Welcome | undefined;
  closeInfo: CloseInfo | undefined;
  /** Resolves with the code and reason of the close (1006 when the connection just dropped). */
  readonly closed: Promise<CloseInfo>;
  /**
   * Users online as this client knows them: set by trackPresence(), then kept up to date by presence
   * messages. A truncated message (over 100 changes) leaves it incomplete: `presenceTruncated` is then
   * set, and trackPresence() again asks `users` for the whole set, as a real client would.
   */
  presenceView: Map<string, string> | undefined;
  presenceTruncated = false;
  private waiters = new Set<Waiter>();
  private nextId = 1;

  constructor(readonly ws: WebSocket, private readonly keep: (m: ServerMessage) => boolean) {
    this.closed = new Promise((resolve) => {
      ws.once('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString() };
        resolve(this.closeInfo);
        // Nothing more will arrive: whoever still waits learns it now, not at its timeout.
        for (const waiter of [...this.waiters]) waiter.reject(new Error(`connection closed (${code}) while waiting (${this.describe()})`));
        this.waiters.clear();
      });
    });
    ws.on('error', () => undefined);
    ws.on('message', (data, isBinary) => {
      const text = data.toString();
      let message: ServerMessage;
      if (!isBinary && text.startsWith('{')) {
        try {
          message = JSON.parse(text) as ServerMessage;
        } catch {
          message = { type: 'text', text };
        }
      } else {
        message = { type: 'text', text };
      }
      if (message.type === 'welcome') this.welcome = message as Welcome;
      if (message.type === 'presence' && this.presenceView) {
        const presence = message as PresenceMessage;
        for (const user of presence.joined) this.presenceView.set(user.id, user.name);
        for (const user of presence.left) this.presenceView.delete(user.id);
        if (presence.truncated) this.presenceTruncated = true;
      }
      if (message.type === 'welcome' || this.keep(message)) this.messages.push(message);
      for (const waiter of [...this.waiters]) {
        if (waiter.test(message)) {
          this.waiters.delete(waiter);
          waiter.resolve(message);
        }
      }
    });
  }

  get isOpen(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  /** Index to pass as `since` to wait only for messages that arrive after this moment. */
  mark(): number {
    return this.messages.length;
  }

  /** The messages of one type kept so far. */
  ofType<T extends ServerMessage = ServerMessage>(type: string): T[] {
    return this.messages.filter((m) => m.type === type) as T[];
  }

  /** The first kept message (from index `since`) of `type` matching `test`, or the next one to arrive. */
  waitFor<T extends ServerMessage = ServerMessage>(
    type: string,
    test: (m: T) => boolean = () => true,
    options: { timeoutMs?: number; since?: number } = {},
  ): Promise<T> {
    const matches = (m: ServerMessage) => m.type === type && test(m as T);
    for (let i = options.since ?? 0; i < this.messages.length; i++) {
      const m = this.messages[i]!;
      if (matches(m)) return Promise.resolve(m as T);
    }
    if (this.closeInfo) return Promise.reject(new Error(`no "${type}" message matching and the connection is closed (${this.describe()})`));
    const timeoutMs = options.timeoutMs ?? 10_000;
    return new Promise<T>((resolve, reject) => {
      const waiter: Waiter = {
        test: matches,
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m as T);
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      };
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(new Error(`no "${type}" message matching within ${timeoutMs} ms (${this.describe()})`));
      }, timeoutMs);
      this.waiters.add(waiter);
    });
  }

  send(message: object | string): void {
    this.ws.send(typeof message === 'string' ? message : JSON.stringify(message));
  }

  /** Sends a request with a fresh id and waits for the answer of `replyType` (or an error) with that id. */
  async request<T extends ServerMessage = ServerMessage>(message: { type: string; [key: string]: unknown }, timeoutMs = 10_000): Promise<T> {
    const id = `r${this.nextId++}`;
    const reply = this.waitFor<T>(message.type, (m) => m.id === id, { timeoutMs, since: this.messages.length });
    const error = this.waitFor('error', (m) => m.id === id, { timeoutMs: timeoutMs + 1_000, since: this.messages.length });
    this.send({ ...message, id });
    const answer = await Promise.race([reply, error.then((e) => Promise.reject(new Error(`error reply: ${JSON.stringify(e)}`)))]);
    error.catch(() => undefined);
    return answer;
  }

  /** The `users` reply. */
  users(timeoutMs?: number): Promise<ServerMessage & { online: number; users: UserEntry[] }> {
    return this.request({ type: 'users' }, timeoutMs);
  }

  /** Starts following presence from a `users` reply; later presence messages keep `presenceView` current. */
  async trackPresence(): Promise<Map<string, string>> {
    const reply = await this.users();
    this.presenceView = new Map(reply.users.map((u) => [u.id, u.name]));
    this.presenceTruncated = false;
    return this.presenceView;
  }

  /** Closes with `code` and waits until the closing handshake is over (or the socket dropped). */
  async close(code = 1000, reason = ''): Promise<CloseInfo> {
    if (this.ws.readyState === WebSocket.CONNECTING || this.ws.readyState === WebSocket.OPEN) this.ws.close(code, reason);
    return this.closed;
  }

  /** Drops the TCP connection without a closing handshake. */
  terminate(): void {
    this.ws.terminate();
  }

  private describe(): string {
    const types = new Map<string, number>();
    for (const m of this.messages) types.set(m.type, (types.get(m.type) ?? 0) + 1);
    const state = this.closeInfo ? `closed ${this.closeInfo.code}` : `readyState ${this.ws.readyState}`;
    return `${state}; kept: ${[...types].map(([t, n]) => `${t}×${n}`).join(', ') || 'nothing'}`;
  }
}

/** Opens a WebSocket; on /ws waits for the welcome. Rejects with UpgradeRefused when the server answers HTTP. */
export function connectClient(url: string, options: ConnectOptions = {}): Promise<TestClient> {
  const timeoutMs = options.timeoutMs ?? 15_000;
  const waitWelcome = options.waitWelcome ?? /\/ws(\?|$)/.test(url);
  return new Promise<TestClient>((resolve, reject) => {
    const ws = new WebSocket(url, { headers: options.headers, handshakeTimeout: timeoutMs, perMessageDeflate: false });
    const client = new TestClient(ws, options.keep ?? (() => true));
    let settled = false;
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      ws.terminate();
      reject(err);
    };
    const timer = setTimeout(() => fail(new Error(`connect to ${url} timed out after ${timeoutMs} ms`)), timeoutMs);
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => fail(new UpgradeRefused(res.statusCode ?? 0, body)));
      res.on('error', () => fail(new UpgradeRefused(res.statusCode ?? 0, body)));
    });
    ws.once('error', (err) => fail(err));
    void client.closed.then((info) => fail(new Error(`closed ${info.code} ${info.reason} before it was ready`)));
    ws.once('open', () => {
      if (!waitWelcome) {
        settled = true;
        clearTimeout(timer);
        resolve(client);
        return;
      }
      client.waitFor('welcome', () => true, { timeoutMs }).then(
        () => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          resolve(client);
        },
        (err: Error) => fail(err),
      );
    });
  });
}

/** Runs `fn` over `items` with at most `limit` in flight; results in input order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await fn(items[index]!, index);
    }
  });
  await Promise.all(workers);
  return results;
}

/** Polls `fn` until it returns a value other than undefined/false, or throws the last reason at the deadline. */
export async function eventually<T>(
  what: string,
  fn: () => Promise<T | undefined | false> | T | undefined | false,
  options: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 10_000);
  const interval = options.intervalMs ?? 50;
  let last: unknown;
  for (;;) {
    try {
      const value = await fn();
      if (value !== undefined && value !== false) return value;
      last = undefined;
    } catch (err) {
      last = err;
    }
    if (Date.now() >= deadline) {
      const detail = last instanceof Error ? `: ${last.message}` : '';
      throw new Error(`timed out after ${options.timeoutMs ?? 10_000} ms waiting for ${what}${detail}`);
    }
    await new Promise((resolve) => setTimeout(resolve, interval));
  }
}
