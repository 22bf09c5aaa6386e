// The WebSocket upgrade, in the order it runs:
//   HTTP upgrade request → route (/ws: JSON protocol, /ws/{clientId}: text protocol)
//   → a well-formed WebSocket handshake? → admission.ts (capacity, address, origin,
//   clientId/name, token) → ws's handshake (101) → gateway.accept (session, welcome)
// It listens to the HTTP server's 'upgrade' event itself instead of routing upgrades through
// Fastify: its router, hooks, request and reply objects add work to every connect and nothing an
// upgrade needs, since every check is admission's. Any other upgrade request (another path,
// another protocol such as h2c) is handed to Fastify like a plain request. A refusal is plain HTTP
// with the one error body (src/protocol/codes.ts), before any WebSocket exists, and the
// connection is closed after it.

import { ServerResponse, STATUS_CODES, type IncomingMessage, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import { WebSocketServer } from 'ws';
import { httpErrorResponse, type HttpErrorCode } from '../protocol/codes.js';
import type { Admission, AdmissionDecision, UpgradeRequest } from './admission.js';
import type { Gateway } from './gateway.js';
import type { GatewayMetrics } from './metrics.js';

export interface UpgradeOptions {
  server: Server;
  admission: Admission;
  gateway: Gateway;
  metrics: GatewayMetrics;
  maxMessageBytes: number;
  /** Take the client address from X-Forwarded-For (behind a proxy that sets it). */
  trustProxy: boolean;
  /** Serves a request that is not a WebSocket upgrade to /ws as plain HTTP (Fastify's router). */
  serveHttp: (request: IncomingMessage, response: ServerResponse) => void;
}

interface Route {
  protocol: 'json' | 'text';
  clientId: string | undefined;
  query: URLSearchParams;
}

/** RFC 6455 §4.1: 16 random bytes, base64. */
const HANDSHAKE_KEY = /^[+/0-9A-Za-z]{22}==$/;

/** /ws or /ws/{clientId}, with its query; undefined for any other path. */
function route(url: string): Route | undefined {
  const queryAt = url.indexOf('?');
  const path = queryAt < 0 ? url : url.slice(0, queryAt);
  // A `#` sent raw (browsers never send one) is part of the query, not a fragment to drop.
  const query = new URLSearchParams(queryAt < 0 ? '' : url.slice(queryAt + 1));
  if (path === '/ws') return { protocol: 'json', clientId: undefined, query };
  if (!path.startsWith('/ws/') || path.indexOf('/', 4) >= 0) return undefined;
  let clientId: string;
  try {
    clientId = decodeURIComponent(path.slice(4));
  } catch {
    clientId = path.slice(4); // a bad escape: admission refuses it as it is
  }
  return { protocol: 'text', clientId, query };
}

/**
 * What ws would refuse in the handshake, checked before admission so that a malformed request
 * costs no token check and gets no misleading 401 or 429.
 */
function handshakeProblem(request: IncomingMessage): { status: 400 | 405; message: string } | undefined {
  if (request.method !== 'GET') return { status: 405, message: 'a WebSocket handshake is a GET' };
  const key = request.headers['sec-websocket-key'];
  if (key === undefined || !HANDSHAKE_KEY.test(key)) return { status: 400, message: 'missing or invalid Sec-WebSocket-Key' };
  const version = request.headers['sec-websocket-version'];
  if (version !== '13' && version !== '8') return { status: 400, message: 'unsupported Sec-WebSocket-Version: 13 is spoken' };
  return undefined;
}

function clientAddress(request: IncomingMessage, trustProxy: boolean): string {
  if (trustProxy) {
    const forwarded = request.headers['x-forwarded-for'];
    const first = (Array.isArray(forwarded) ? forwarded[0] : forwarded)?.split(',')[0]?.trim();
    if (first) return first;
  }
  return request.socket.remoteAddress ?? 'unknown';
}

/** Answers an upgrade request with an HTTP error, then closes the connection (also when the peer keeps its side open). */
function refuse(socket: Duplex, status: number, code: HttpErrorCode, message: string, extraHeaders = ''): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  socket.once('finish', () => socket.destroy());
  socket.end(httpErrorResponse(status, STATUS_CODES[status], code, message, extraHeaders));
}

function onUpgradeSocketError(this: Duplex): void {
  this.destroy();
}

export function handleUpgrades(options: UpgradeOptions): void {
  const { admission, gateway, metrics } = options;
  const wss = new WebSocketServer({ noServer: true, maxPayload: options.maxMessageBytes, perMessageDeflate: false, clientTracking: false });
  // Whatever ws still finds wrong (a malformed Sec-WebSocket-Protocol, say) gets the one error body too.
  wss.on('wsClientError', (err: Error, socket: Duplex) => {
    metrics.upgradeRefused(400);
    refuse(socket, 400, 'INVALID_HANDSHAKE', err.message);
  });

  const handshake = (request: IncomingMessage, socket: Duplex, head: Buffer, target: Route, remoteAddr: string, decision: AdmissionDecision): void => {
    if (!decision.ok) {
      metrics.upgradeRefused(decision.status);
      refuse(socket, decision.status, decision.code, decision.message);
      return;
    }
    // The 101 answer and the welcome leave in one TCP segment: held until accept() has written both.
    const tcp = socket as Socket;
    tcp.cork();
    socket.removeListener('error', onUpgradeSocketError); // ws guards the socket from here on
    // With no verifyClient, ws either accepts at once (calling back before handleUpgrade returns) or
    // refuses (a malformed handshake, a socket the peer already left): then the place admission holds
    // is given back here; once accepted, the gateway gives it back when the connection closes.
    let accepted = false;
    wss.handleUpgrade(request, socket, head, (ws) => {
      accepted = true;
      gateway.accept(ws, target.protocol, decision.identity, remoteAddr, request.headers['user-agent']);
    });
    tcp.uncork();
    if (!accepted) admission.release(remoteAddr);
  };

  options.server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    // Node removed its own error listener before emitting 'upgrade'.
    socket.on('error', onUpgradeSocketError);
    const target = request.headers.upgrade?.toLowerCase() === 'websocket' ? route(request.url ?? '/') : undefined;
    if (!target) {
      serveAsHttp(request, socket, head, options.serveHttp);
      return;
    }
    const problem = handshakeProblem(request);
    if (problem) {
      metrics.upgradeRefused(problem.status);
      refuse(socket, problem.status, 'INVALID_HANDSHAKE', problem.message, problem.status === 405 ? 'Allow: GET\r\n' : 'Sec-WebSocket-Version: 13, 8\r\n');
      return;
    }
    const remoteAddr = clientAddress(request, options.trustProxy);
    const upgrade: UpgradeRequest = {
      protocol: target.protocol,
      clientId: target.clientId,
      query: target.query,
      origin: request.headers.origin,
      host: request.headers.host,
      authorization: request.headers.authorization,
      remoteAddr,
    };
    const decision = admission.check(upgrade);
    if (decision instanceof Promise) {
      void decision.then((d) => {
        if (socket.destroyed) {
          if (d.ok) admission.release(remoteAddr);
          return;
        }
        handshake(request, socket, head, target, remoteAddr, d);
      });
    } else {
      handshake(request, socket, head, target, remoteAddr, decision);
    }
  });
}

/** An upgrade request that is not Pulse's: answered by the HTTP routes, then the connection closes. */
function serveAsHttp(request: IncomingMessage, socket: Duplex, head: Buffer, serveHttp: UpgradeOptions['serveHttp']): void {
  if (head.length > 0) socket.unshift(head);
  const response = new ServerResponse(request);
  response.shouldKeepAlive = false;
  response.assignSocket(socket as Socket);
  response.once('finish', () => {
    socket.once('finish', () => socket.destroy());
    socket.end();
  });
  serveHttp(request, response);
}
