// The two upgrade routes. preValidation runs before the handshake completes, so a refusal is
// a plain HTTP answer and no WebSocket ever exists for it.

import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import type { Gateway } from './gateway.js';
import type { Identity, UpgradeGate } from './upgrade.js';

declare module 'fastify' {
  interface FastifyRequest {
    pulseIdentity?: Identity;
  }
}

export function registerGatewayRoutes(app: FastifyInstance, gateway: Gateway, gate: UpgradeGate, onRefused: (status: number) => void): void {
  app.decorateRequest('pulseIdentity', undefined);

  const check = (protocol: 'json' | 'text') => async (request: FastifyRequest, reply: FastifyReply) => {
    if (request.headers.upgrade?.toLowerCase() !== 'websocket') {
      return reply.code(426).header('upgrade', 'websocket').send({ error: 'Upgrade Required', message: 'connect with a WebSocket client' });
    }
    const admission = gateway.admit(request.ip);
    if (!admission.ok) {
      onRefused(admission.status!);
      return reply.code(admission.status!).send({ error: admission.message });
    }
    const url = new URL(request.url, 'http://pulse.invalid');
    const decision = await gate.check({
      protocol,
      clientId: protocol === 'text' ? (request.params as { clientId?: string }).clientId : undefined,
      query: url.searchParams,
      origin: request.headers.origin,
      host: request.headers.host,
      authorization: request.headers.authorization,
    });
    if (!decision.ok) {
      onRefused(decision.status);
      return reply.code(decision.status).send({ error: decision.message });
    }
    request.pulseIdentity = decision.identity;
  };

  const accept = (protocol: 'json' | 'text') => (socket: WebSocket, request: FastifyRequest) => {
    releaseUpgradeRequest(socket, request);
    gateway.accept(socket, protocol, request.pulseIdentity!, request.ip, request.headers['user-agent']);
  };
  app.get('/ws', { websocket: true, preValidation: check('json') }, accept('json'));
  app.get('/ws/:clientId', { websocket: true, preValidation: check('text') }, accept('text'));
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
