// The bare-`ws` reference: the least a server can do for the same clock and Fibonacci protocol.
// Pulse is measured against it (same clients, same machine, same runtime) to price its features.
//
//   node --import tsx bench/reference-server.ts --port 9000 [--host 127.0.0.1] [--workers N]
//
// - GET /readyz and /healthz answer 200; upgrades on /ws (any query) are accepted, so the
//   admission pre-check GET /api/admission answers 200 too (PulseClient asks it after a failed attempt).
// - On open: a small `welcome` with a random sessionId, the `user`, `instanceId` and `limits`
//   fields Pulse's welcome has (so clients, PulseClient included, wait for the same first frame).
// - Every wall-clock second: `{"type":"time","now":ISO,"epochMs":ms}` serialised once, one Buffer to all.
// - A text frame `n` (bare integer) or `{"type":"fibonacci","n":..,"id":..}` → the fibonacci answer,
//   computed inline on the event loop by plain BigInt fast doubling (no cache, no worker pool).
// - `--workers N` > 1: node:cluster forks N processes sharing the port.
import cluster from 'node:cluster';
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import { WebSocketServer, WebSocket } from 'ws';
import { fibAnswer } from './lib/fib.js';
import { intOption, parseArgs, stringOption } from './lib/util.js';

const MAX_N = 1_000_000;
const SLOW_CLIENT_BYTES = 1 << 20;
const BARE_INTEGER = /^\s*[+-]?\d+\s*$/;

function answer(n: number, id: unknown): string {
  if (!Number.isSafeInteger(n)) return JSON.stringify({ type: 'error', id, code: 'INVALID_NUMBER', message: 'n must be an integer' });
  if (Math.abs(n) > MAX_N) return JSON.stringify({ type: 'error', id, code: 'OUT_OF_RANGE', message: `|n| must be at most ${MAX_N}` });
  const { value, digits } = fibAnswer(n);
  return JSON.stringify({ type: 'fibonacci', id, n, value, digits });
}

function handle(text: string): string {
  if (BARE_INTEGER.test(text)) return answer(Number(text.trim()), null);
  let message: unknown;
  try {
    message = JSON.parse(text);
  } catch {
    return JSON.stringify({ type: 'error', id: null, code: 'INVALID_JSON', message: 'not JSON' });
  }
  if (typeof message === 'object' && message !== null && (message as { type?: unknown }).type === 'fibonacci') {
    const { n, id } = message as { n?: unknown; id?: unknown };
    return answer(typeof n === 'number' ? n : Number.NaN, id ?? null);
  }
  return JSON.stringify({ type: 'error', id: null, code: 'INVALID_MESSAGE', message: 'unknown message' });
}

function serve(host: string, port: number): void {
  const instanceId = randomUUID();
  const clients = new Set<WebSocket>();
  const wss = new WebSocketServer({ noServer: true, maxPayload: 4096, perMessageDeflate: false, clientTracking: false });
  const server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    const ok = path === '/readyz' || path === '/healthz' || path === '/api/admission';
    res.writeHead(ok ? 200 : 404, { 'content-type': 'text/plain' }).end(ok ? 'ok\n' : 'not found\n');
  });
  server.on('upgrade', (req, socket, head) => {
    if (!(req.url ?? '').startsWith('/ws')) {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      clients.add(ws);
      ws.on('close', () => clients.delete(ws));
      ws.on('error', () => ws.terminate());
      ws.on('message', (data, isBinary) => {
        if (isBinary) {
          ws.close(1003, 'binary');
          return;
        }
        ws.send(handle(String(data)));
      });
      const name = new URL(req.url ?? '/', 'http://reference').searchParams.get('name') ?? 'guest';
      ws.send(JSON.stringify({ type: 'welcome', protocol: 1, sessionId: randomUUID(), user: { id: name, name }, instanceId, now: new Date().toISOString(), limits: {} }));
    });
  });

  // Second-aligned tick: each timer aims at the next wall-clock boundary, recomputed from Date.now().
  let timer: NodeJS.Timeout | undefined;
  const schedule = (): void => {
    const next = Math.floor(Date.now() / 1000) * 1000 + 1000;
    timer = setTimeout(() => {
      const frame = Buffer.from(JSON.stringify({ type: 'time', now: new Date(next).toISOString(), epochMs: next }));
      for (const ws of clients) {
        if (ws.readyState === WebSocket.OPEN && ws.bufferedAmount < SLOW_CLIENT_BYTES) ws.send(frame, { binary: false });
      }
      schedule();
    }, next - Date.now());
  };
  schedule();

  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    clearTimeout(timer);
    for (const ws of clients) ws.close(1001, 'shutting down');
    server.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.on('disconnect', stop); // cluster worker whose primary went away
  watchParent(stop);
  server.listen(port, host);
}

/** Stop when the process that started us is gone (a killed bench must not leave servers behind). */
function watchParent(stop: () => void): void {
  const parent = process.ppid;
  setInterval(() => {
    let alive = process.ppid === parent;
    try {
      process.kill(parent, 0);
    } catch {
      alive = false;
    }
    if (!alive) stop();
  }, 1000).unref();
}

const args = parseArgs(process.argv.slice(2));
const port = intOption(args, 'port', 9000, 0, 65_535);
const host = stringOption(args, 'host', '127.0.0.1');
const workers = intOption(args, 'workers', 1, 1, 64);

if (workers > 1 && cluster.isPrimary) {
  const forked = Array.from({ length: workers }, () => cluster.fork());
  let stopping = false;
  const stopAll = (): void => {
    if (stopping) return;
    stopping = true;
    for (const worker of forked) worker.process.kill('SIGTERM');
    setTimeout(() => process.exit(0), 3000).unref();
  };
  cluster.on('exit', () => {
    stopAll();
    if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(0);
  });
  process.on('SIGTERM', stopAll);
  process.on('SIGINT', stopAll);
  watchParent(stopAll);
} else {
  serve(host, port);
}
