// The two upgrade routes. preValidation runs before the handshake completes, so a refusal is
// a plain HTTP answer and no WebSocket ever exists for it.

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
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

  app.get('/ws', { websocket: true, preValidation: check('json') }, (socket, request) => {
    gateway.accept(socket, 'json', request.pulseIdentity!, request.ip, request.headers['user-agent']);
  });
  app.get('/ws/:clientId', { websocket: true, preValidation: check('text') }, (socket, request) => {
    gateway.accept(socket, 'text', request.pulseIdentity!, request.ip, request.headers['user-agent']);
  });
}
