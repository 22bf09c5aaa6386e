// A request/answer WebSocket client for closed-loop scenarios: one request in flight, the next
// non-broadcast frame is its answer.
import { WebSocket } from 'ws';

/** Closes with 1000 and waits for the close; a peer that does not answer within `timeoutMs` is dropped. */
function closeOrTerminate(ws: WebSocket, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    if (ws.readyState === WebSocket.CLOSED) return resolve();
    const timer = setTimeout(() => {
      ws.terminate();
      resolve();
    }, timeoutMs);
    ws.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    ws.close(1000);
  });
}

export interface Answer {
  message: Record<string, unknown>;
  /** Round trip, ms (performance.now()). */
  ms: number;
}

const BROADCAST_TYPES = new Set(['time', 'presence']);

export class RequestClient {
  private waiter: { resolve: (a: Answer) => void; reject: (e: Error) => void; sentAt: number; timer: NodeJS.Timeout } | undefined;
  welcome: Record<string, unknown> | undefined;

  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (data: Buffer) => {
      const text = data.toString();
      if (text.startsWith('{"type":"time"')) return;
      let message: Record<string, unknown>;
      try {
        message = JSON.parse(text) as Record<string, unknown>;
      } catch {
        message = { type: 'unparsed', text: text.slice(0, 200) };
      }
      if (typeof message.type === 'string' && BROADCAST_TYPES.has(message.type)) return;
      const waiter = this.waiter;
      if (!waiter) return;
      this.waiter = undefined;
      clearTimeout(waiter.timer);
      waiter.resolve({ message, ms: performance.now() - waiter.sentAt });
    });
    ws.on('close', (code: number) => {
      const waiter = this.waiter;
      this.waiter = undefined;
      if (waiter) {
        clearTimeout(waiter.timer);
        waiter.reject(new Error(`socket closed (${code})`));
      }
    });
    ws.on('error', () => undefined);
  }

  /** Connects and waits for the welcome frame. */
  static open(url: string, timeoutMs = 15_000): Promise<RequestClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: timeoutMs, localAddress: '127.0.0.1' });
      const timer = setTimeout(() => {
        ws.terminate();
        reject(new Error('no welcome'));
      }, timeoutMs);
      ws.once('message', (data: Buffer) => {
        clearTimeout(timer);
        const client = new RequestClient(ws);
        try {
          client.welcome = JSON.parse(data.toString()) as Record<string, unknown>;
        } catch {
          client.welcome = undefined;
        }
        resolve(client);
      });
      ws.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
    });
  }

  request(payload: string, timeoutMs = 30_000): Promise<Answer> {
    if (this.waiter) return Promise.reject(new Error('a request is already in flight'));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        reject(new Error(`no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiter = { resolve, reject, sentAt: performance.now(), timer };
      this.ws.send(payload);
    });
  }

  close(): Promise<void> {
    return closeOrTerminate(this.ws, 3000);
  }
}
