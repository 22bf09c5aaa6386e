// REST, health, metrics, the AsyncAPI document and the static web client. Every error, whatever
// produced it (a route, validation, Fastify itself), answers the one body of src/protocol/codes.ts:
// {"statusCode":400,"code":"INVALID_NUMBER","error":"Bad Request","message":"n must be an integer"}.

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { parseIntegerText } from '../fibonacci/parse.js';
import type { FibonacciService } from '../fibonacci/service.js';
import type { Admission } from '../gateway/admission.js';
import { ASYNCAPI_FILE, WEB_BUNDLE_DIR, WEB_DIR } from '../paths.js';
import { toOnlineUser } from '../presence/online-users.js';
import type { Presence } from '../presence/presence.js';
import type { SessionHistory } from '../presence/session-history.js';
import { SESSIONS_PAGE_DEFAULT, SESSIONS_PAGE_MAX, USERS_PAGE_MAX, USER_ID_MAX_LENGTH } from '../protocol/limits.js';
import { sendError } from './errors.js';
import type { Metrics } from './metrics.js';

export interface HttpDeps {
  admission: Admission;
  presence: Presence;
  sessions: SessionHistory;
  fibonacci: FibonacciService;
  metrics: Metrics;
  isDraining: () => boolean;
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

function firstValue(value: string | string[] | undefined): string | null {
  return (Array.isArray(value) ? value[0] : value) ?? null;
}

export async function registerHttpRoutes(app: FastifyInstance, deps: HttpDeps): Promise<void> {
  const { presence, sessions, fibonacci, metrics } = deps;

  app.addHook('onSend', async (_request, reply) => {
    for (const [name, value] of Object.entries(SECURITY_HEADERS)) reply.header(name, value);
  });

  // Errors never carry a stack trace or an internal message to the client.
  app.setErrorHandler((error: { statusCode?: number; message: string }, request, reply) => {
    const status = error.statusCode && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 500;
    if (status === 500) {
      request.log.error({ err: error }, 'request failed');
      return sendError(reply, 500, 'INTERNAL', 'internal error');
    }
    return sendError(reply, status, 'INVALID_REQUEST', error.message);
  });
  app.setNotFoundHandler((request, reply) => sendError(reply, 404, 'NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]}`));

  // Upgrades to these paths never reach Fastify (src/gateway/upgrade.ts): only plain requests do.
  const upgradeRequired = async (_request: unknown, reply: FastifyReply) =>
    sendError(reply.header('upgrade', 'websocket'), 426, 'UPGRADE_REQUIRED', 'connect with a WebSocket client');
  app.get('/ws', upgradeRequired);
  app.get('/ws/:clientId', upgradeRequired);

  // The pre-check of a WebSocket connection: the decision an upgrade to /ws with these parameters
  // would get now, as JSON, because a browser cannot read the status of a refused upgrade.
  // Readable from any origin: a page whose origin is refused must still learn that it is.
  app.get<{ Querystring: Record<string, string | string[] | undefined> }>('/api/admission', async (request, reply) => {
    reply.header('access-control-allow-origin', '*');
    const query = request.query;
    const decision = await deps.admission.preview({
      protocol: 'json',
      clientId: undefined,
      query: { get: (name) => firstValue(query[name]) },
      origin: request.headers.origin,
      host: request.headers.host,
      authorization: request.headers.authorization,
      remoteAddr: request.ip,
    });
    if (!decision.ok) return sendError(reply, decision.status, decision.code, decision.message);
    const named = query.name !== undefined || query.token !== undefined || request.headers.authorization !== undefined;
    return named ? { ok: true, user: { id: decision.identity.userId, name: decision.identity.name } } : { ok: true };
  });

  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (_request, reply) => {
    if (deps.isDraining()) return sendError(reply, 503, 'DRAINING', 'server draining');
    const database = await presence.pingDatabase(1_500);
    if (!database) return sendError(reply, 503, 'DATABASE_UNAVAILABLE', 'database unavailable');
    return { status: 'ready', instanceId: presence.instanceId };
  });

  app.get('/metrics', async (_request, reply) => {
    metrics.usersOnline(presence.onlineUsers.count);
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
            limit: { type: 'integer', minimum: 1, maximum: USERS_PAGE_MAX },
            after: { type: 'string', minLength: 1, maxLength: USER_ID_MAX_LENGTH },
          },
        },
      },
    },
    async (request, reply) => {
      const { users, truncated } = presence.onlineUsers.list(request.query.limit ?? USERS_PAGE_MAX, request.query.after);
      const next = truncated ? users[users.length - 1]?.id : undefined;
      reply.type('application/json; charset=utf-8');
      const page = `"online":${presence.onlineUsers.count},"users":${JSON.stringify(users.map(toOnlineUser))}`;
      return `{${page}${next === undefined ? '' : `,"truncated":true,"next":${JSON.stringify(next)}`}}`;
    },
  );

  app.get<{ Params: { id: string }; Querystring: { limit?: number } }>(
    '/api/users/:id/sessions',
    {
      schema: {
        // No U+0000: PostgreSQL text cannot hold it (the query would fail: a 500 for bad input), and no id has one.
        params: {
          type: 'object',
          properties: { id: { type: 'string', minLength: 1, maxLength: USER_ID_MAX_LENGTH, pattern: '^[^\\u0000]+$' } },
          required: ['id'],
        },
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { limit: { type: 'integer', minimum: 1, maximum: SESSIONS_PAGE_MAX } },
        },
      },
    },
    async (request, reply) => {
      const records = await sessions.list(request.params.id, request.query.limit ?? SESSIONS_PAGE_DEFAULT);
      if (!records) return sendError(reply, 503, 'DATABASE_UNAVAILABLE', 'database unavailable, try again shortly');
      return {
        userId: request.params.id,
        sessions: records.map((record) => ({
          id: record.id,
          instanceId: record.instanceId,
          protocol: record.protocol,
          connectedAt: record.connectedAt.toISOString(),
          disconnectedAt: record.disconnectedAt?.toISOString() ?? null,
          closeCode: record.closeCode,
          closeReason: record.closeReason,
        })),
      };
    },
  );

  app.get<{ Params: { n: string } }>('/api/fibonacci/:n', async (request, reply) => {
    const parsed = parseIntegerText(request.params.n, deps.fibMaxN);
    if (!parsed.ok) return sendError(reply, 400, parsed.code, parsed.message);
    const answer = await fibonacci.compute(parsed.n);
    reply.type('application/json; charset=utf-8');
    return `{"n":${answer.n},"value":"${answer.value}","digits":${answer.digits}}`;
  });

  // The page: web/'s files as they are, and its script as scripts/build-web.ts bundled it from
  // web/app.ts (whose source is not served). Routes are made from the files there at start.
  const bundled = existsSync(join(WEB_BUNDLE_DIR, 'app.js'));
  if (!bundled) app.log.warn(`the web page's script ${join(WEB_BUNDLE_DIR, 'app.js')} is missing: run npm run build`);
  await app.register(fastifyStatic, {
    root: bundled ? [WEB_BUNDLE_DIR, WEB_DIR] : WEB_DIR,
    index: 'index.html',
    wildcard: false,
    globIgnore: ['**/*.ts'],
  });
}
