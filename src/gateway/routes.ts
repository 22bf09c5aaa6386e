// The two upgrade routes. preValidation runs before the handshake completes, so a refusal is
// a plain HTTP answer and no WebSocket ever exists for it.

import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import type { Gateway } from './gateway.js';
import type { Identity, UpgradeDecision, UpgradeGate } from './upgrade.js';

declare module 'fastify' {
  interface FastifyRequest {
    pulseIdentity?: Identity;
  }
}

export function registerGatewayRoutes(app: FastifyInstance, gateway: Gateway, gate: UpgradeGate, onRefused: (status: number) => void): void {
  app.decorateRequest('pulseIdentity', undefined);

  // Callback style: in open mode the checks are synchronous and the upgrade goes on without a
  // promise or a microtask; only a token check waits. A refusal replies and does not call done():
  // a callback-style hook that replies must not (the reply finishes asynchronously, through the
  // onSend hook, and done() would run the route meanwhile).
  const check = (protocol: 'json' | 'text') => (request: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void) => {
    if (request.headers.upgrade?.toLowerCase() !== 'websocket') {
      reply.code(426).header('upgrade', 'websocket').send({ error: 'Upgrade Required', message: 'connect with a WebSocket client' });
      return;
    }
    const admission = gateway.admit(request.ip);
    if (!admission.ok) {
      onRefused(admission.status!);
      reply.code(admission.status!).send({ error: admission.message });
      return;
    }
    // Fastify has parsed the query string already; a repeated parameter counts by its first value.
    const query = request.query as Record<string, string | string[] | undefined>;
    const decision = gate.check({
      protocol,
      clientId: protocol === 'text' ? (request.params as { clientId?: string }).clientId : undefined,
      query: { get: (name) => firstValue(query[name]) },
      origin: request.headers.origin,
      host: request.headers.host,
      authorization: request.headers.authorization,
    });
    if (decision instanceof Promise) decision.then((d) => conclude(d, request, reply, done), done);
    else conclude(decision, request, reply, done);
  };

  const conclude = (decision: UpgradeDecision, request: FastifyRequest, reply: FastifyReply, done: () => void): void => {
    if (!decision.ok) {
      onRefused(decision.status);
      reply.code(decision.status).send({ error: decision.message });
      return;
    }
    request.pulseIdentity = decision.identity;
    // Held until accept() has written the welcome: the 101 answer and the welcome leave in one
    // TCP segment. A refused handshake is answered with end(), which flushes the cork; only a
    // socket already gone is destroyed with its corked bytes.
    request.raw.socket.cork();
    done();
  };

  const accept = (protocol: 'json' | 'text') => (socket: WebSocket, request: FastifyRequest) => {
    releaseUpgradeRequest(socket, request);
    gateway.accept(socket, protocol, request.pulseIdentity!, request.ip, request.headers['user-agent']);
    request.raw.socket.uncork();
  };
  // Every connection event is logged with its sessionId (gateway.ts): the per-request child
  // logger Fastify would build, and drop, for each upgrade is not needed.
  const childLoggerFactory = (logger: FastifyBaseLogger): FastifyBaseLogger => logger;
  app.get('/ws', { websocket: true, preValidation: check('json'), childLoggerFactory }, accept('json'));
  app.get('/ws/:clientId', { websocket: true, preValidation: check('text'), childLoggerFactory }, accept('text'));
}

function firstValue(value: string | string[] | undefined): string | null {
  return (Array.isArray(value) ? value[0] : value) ?? null;
}

/**
 * Lets the upgrade's HTTP objects go once the WebSocket exists, about 2.7 KiB per connection:
 * @fastify/websocket's 'error' listener closes over the request and reply (the gateway adds its
 * own), and the never-finished ServerResponse stays attached to the TCP socket.
 */
function releaseUpgradeRequest(socket: WebSocket, request: FastifyRequest): void {
  socket.removeAllListeners('error');
  const tcp = request.raw.socket as Socket & { _httpMessage?: ServerResponse | null };
  tcp._httpMessage?.detachSocket(tcp);
}
