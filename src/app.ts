// Wires the parts together; nothing else.

import Fastify, { LogController, type FastifyInstance } from 'fastify';
import pino from 'pino';
import { TokenVerifier } from './auth/token-verifier.js';
import { startTicker, type Ticker } from './clock/ticker.js';
import type { Config } from './config.js';
import { createPgDb, createPgliteDb } from './db/driver.js';
import { FibonacciService } from './fibonacci/service.js';
import { Admission } from './gateway/admission.js';
import { Gateway } from './gateway/gateway.js';
import { handleUpgrades } from './gateway/upgrade.js';
import { clientErrorHandler, frameworkErrors } from './http/errors.js';
import { Metrics } from './http/metrics.js';
import { registerHttpRoutes } from './http/routes.js';
import { Presence } from './presence/presence.js';
import { SessionHistory } from './presence/session-history.js';

export interface Pulse {
  app: FastifyInstance;
  presence: Presence;
  gateway: Gateway;
  metrics: Metrics;
  /** Listens on config.port/host; resolves with the bound port. */
  listen(): Promise<number>;
  /** Graceful stop (docs/design.md §5): refuse upgrades and be not ready, close clients with 1001, close the sessions. */
  stop(): Promise<void>;
}

export async function buildPulse(config: Config): Promise<Pulse> {
  // At info level every connection logs two lines. They gather up to 4 KiB (about 25 lines) and
  // leave in one asynchronous write, at the latest 100 ms later; pino writes out the rest at exit,
  // so only a SIGKILL can lose those last 100 ms.
  const logStream = pino.destination({ dest: 1, sync: false, minLength: 4096 });
  const flushLogs = (): void => {
    try {
      logStream.flush();
    } catch {
      // The stream is already ended (pino ends it at exit): nothing is left to write.
    }
  };
  const logFlushTimer = setInterval(flushLogs, 100).unref();
  const app = Fastify({
    logger: { level: config.logLevel, stream: logStream },
    trustProxy: config.trustProxy,
    // One log line per HTTP request would drown the connection events at 100k clients.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 1024,
    // The one HTTP error body for what Fastify and Node refuse themselves (src/http/errors.ts).
    frameworkErrors,
    clientErrorHandler,
    // While stopping, routes keep answering (/readyz says draining) instead of Fastify's own 503 body.
    return503OnClosing: false,
  });
  const metrics = new Metrics();
  const presence = new Presence({
    openDb: () => (config.databaseUrl ? Promise.resolve(createPgDb(config.databaseUrl, app.log, { listenUrl: config.databaseListenUrl })) : createPgliteDb(config.dataDir)),
    heartbeatIntervalMs: config.heartbeatIntervalMs,
    instanceTtlMs: config.instanceTtlMs,
    sweepIntervalMs: config.sweepIntervalMs,
    maxQueueBytes: config.dbQueueMaxBytes,
    leaveGraceMs: config.presenceLeaveGraceMs,
    sessionsRetentionMs: config.sessionsRetentionMs,
    log: app.log,
    metrics,
  });
  const fibonacci = new FibonacciService({
    cacheBytes: config.fibCacheBytes,
    observe: (path, seconds) => metrics.fibonacciAnswered(path, seconds),
    onError: (err) => app.log.error({ err: err.message }, 'fibonacci worker failed'),
  });
  const tokens = config.auth === undefined ? undefined : new TokenVerifier(config.auth, app.log);
  tokens?.warmUp();
  const admission = new Admission(config, tokens);
  const gateway = new Gateway({ config, admission, presence, fibonacci, tokens, metrics, log: app.log });
  handleUpgrades({
    server: app.server,
    admission,
    gateway,
    metrics,
    maxMessageBytes: config.maxMessageBytes,
    trustProxy: config.trustProxy,
    serveHttp: (request, response) => app.routing(request, response),
  });
  await registerHttpRoutes(app, {
    admission,
    presence,
    sessions: new SessionHistory(presence),
    fibonacci,
    metrics,
    isDraining: () => gateway.isDraining,
    fibMaxN: config.fibMaxN,
  });

  let ticker: Ticker | undefined;
  let stopping: Promise<void> | undefined;

  return {
    app,
    presence,
    gateway,
    metrics,
    async listen() {
      void presence.start();
      await app.listen({ port: config.port, host: config.host });
      ticker = startTicker((epochMs) => gateway.tick(epochMs));
      const address = app.server.address();
      return typeof address === 'object' && address ? address.port : config.port;
    },
    stop() {
      stopping ??= (async () => {
        const deadline = Date.now() + config.shutdownTimeoutMs;
        app.log.info({ connections: gateway.connectionCount }, 'draining');
        await gateway.drain(deadline - 2_000);
        ticker?.stop();
        await presence.stop(deadline);
        await app.close();
        await fibonacci.close();
        metrics.close();
        app.log.info({}, 'stopped');
        clearInterval(logFlushTimer);
        flushLogs();
      })();
      return stopping;
    },
  };
}
