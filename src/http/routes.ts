// REST, health, metrics, the AsyncAPI document and the static web client.

import { readFileSync } from 'node:fs';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';
import { userSessions } from '../db/queries.js';
import { parseIntegerText } from '../fibonacci/parse.js';
import type { FibonacciService } from '../fibonacci/service.js';
import type { Gateway } from '../gateway/gateway.js';
import { encodeUsersBody } from '../gateway/json-codec.js';
import { ASYNCAPI_FILE, WEB_DIR } from '../paths.js';
import type { Presence } from '../presence/presence.js';
import type { Metrics } from './metrics.js';

export interface HttpDeps {
  presence: Presence;
  gateway: Gateway;
  fibonacci: FibonacciService;
  metrics: Metrics;
  fibMaxN: number;
}

const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self' ws: wss:; " +
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
};

const MAX_USERS_PAGE = 1000;
const MAX_SESSIONS_PAGE = 500;

export async function registerHttpRoutes(app: FastifyInstance, deps: HttpDeps): Promise<void> {
  const { presence, gateway, fibonacci, metrics } = deps;

  app.addHook('onSend', async (_request, reply) => {
    for (const [name, value] of Object.entries(SECURITY_HEADERS)) reply.header(name, value);
  });

  // Errors never carry a stack trace or an internal message to the client.
  app.setErrorHandler((error: { statusCode?: number; validation?: unknown; message: string }, request, reply) => {
    const status = error.statusCode && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 500;
    if (status === 500) request.log.error({ err: error }, 'request failed');
    const code = error.validation ? 'INVALID_MESSAGE' : status === 500 ? 'INTERNAL' : 'INVALID_MESSAGE';
    return reply.code(status).send({ type: 'error', id: null, code, message: status === 500 ? 'internal error' : error.message });
  });
  app.setNotFoundHandler((_request, reply) => reply.code(404).send({ error: 'not found' }));

  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (_request, reply) => {
    if (gateway.isDraining) return reply.code(503).send({ status: 'draining' });
    const database = await presence.pingDatabase(1_500);
    if (!database) return reply.code(503).send({ status: 'database unavailable' });
    return { status: 'ready', instanceId: presence.instanceId };
  });

  app.get('/metrics', async (_request, reply) => {
    metrics.usersOnline.set(presence.online.online);
    metrics.dbQueueEvents.set(presence.writer.queuedEvents);
    reply.header('content-type', metrics.registry.contentType);
    return metrics.registry.metrics();
  });

  const asyncapi = readFileSync(ASYNCAPI_FILE, 'utf8');
  app.get('/asyncapi.yaml', async (_request, reply) => reply.type('application/yaml; charset=utf-8').send(asyncapi));

  app.get<{ Querystring: { limit?: number; after?: string } }>(
    '/api/users',
    {
      schema: {
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            limit: { type: 'integer', minimum: 1, maximum: MAX_USERS_PAGE },
            after: { type: 'string', minLength: 1, maxLength: 128 },
          },
        },
      },
    },
    async (request, reply) => {
      const limit = request.query.limit ?? MAX_USERS_PAGE;
      const { users, truncated } = presence.online.list(limit, request.query.after);
      const next = truncated ? users[users.length - 1]?.id : undefined;
      reply.type('application/json; charset=utf-8');
      return `{${encodeUsersBody(presence.online.online, users, truncated)}${next === undefined ? '' : `,"next":${JSON.stringify(next)}`}}`;
    },
  );

  app.get<{ Params: { id: string }; Querystring: { limit?: number } }>(
    '/api/users/:id/sessions',
    {
      schema: {
        // No U+0000: PostgreSQL text cannot hold it (the query would fail: a 500 for bad input), and no id has one.
        params: { type: 'object', properties: { id: { type: 'string', minLength: 1, maxLength: 128, pattern: '^[^\\u0000]+$' } }, required: ['id'] },
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { limit: { type: 'integer', minimum: 1, maximum: MAX_SESSIONS_PAGE } },
        },
      },
    },
    async (request, reply) => {
      const db = presence.database;
      if (!db || !presence.ready) {
        return reply.code(503).send({ type: 'error', id: null, code: 'INTERNAL', message: 'database unavailable, try again shortly' });
      }
      const rows = await userSessions(db, request.params.id, request.query.limit ?? 50);
      return {
        userId: request.params.id,
        sessions: rows.map((row) => ({
          id: row.id,
          instanceId: row.instance_id,
          protocol: row.protocol,
          connectedAt: new Date(row.connected_at).toISOString(),
          disconnectedAt: row.disconnected_at === null ? null : new Date(row.disconnected_at).toISOString(),
          closeCode: row.close_code,
          closeReason: row.close_reason,
        })),
      };
    },
  );

  app.get<{ Params: { n: string } }>('/api/fibonacci/:n', async (request, reply) => {
    const parsed = parseIntegerText(request.params.n, deps.fibMaxN);
    if (!parsed.ok) return reply.code(400).send({ type: 'error', id: null, code: parsed.code, message: parsed.message });
    const answer = await fibonacci.compute(parsed.n);
    reply.type('application/json; charset=utf-8');
    return `{"n":${answer.n},"value":"${answer.value}","digits":${answer.digits}}`;
  });

  await app.register(fastifyStatic, { root: WEB_DIR, index: 'index.html', wildcard: false });
}
