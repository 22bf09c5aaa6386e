// Prometheus metrics (prom-client). One registry per app, so tests can run several apps in
// one process. Hot paths only increment counters; gauges that cost a scan are collected on scrape.
// Each part reports through an interface it owns (GatewayMetrics, PresenceMetrics, the Fibonacci
// service's observer); this class implements them, so no part imports prom-client or http/.

import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { FibonacciPath } from '../fibonacci/service.js';
import type { GatewayMetrics } from '../gateway/metrics.js';
import type { SessionProtocol } from '../presence/live-sessions.js';
import type { PresenceMetrics, RemoteReloadReason } from '../presence/presence.js';
import type { ResyncReason } from '../presence/session-writer.js';
import { CloseCode, type ErrorCode } from '../protocol/codes.js';

export class Metrics implements GatewayMetrics, PresenceMetrics {
  readonly registry = new Registry();

  private readonly connections = new Gauge({ name: 'pulse_connections', help: 'Open WebSocket connections by protocol', labelNames: ['protocol'] as const, registers: [this.registry] });
  private readonly connectionsTotal = new Counter({ name: 'pulse_connections_total', help: 'Accepted WebSocket connections by protocol', labelNames: ['protocol'] as const, registers: [this.registry] });
  private readonly upgradesRejected = new Counter({ name: 'pulse_upgrades_rejected_total', help: 'Refused upgrades by HTTP status', labelNames: ['status'] as const, registers: [this.registry] });
  private readonly closes = new Counter({ name: 'pulse_closes_total', help: 'Closed connections by recorded close code', labelNames: ['code'] as const, registers: [this.registry] });
  private readonly usersOnlineGauge = new Gauge({ name: 'pulse_users_online', help: 'Users online across all instances', registers: [this.registry] });
  private readonly ticksSent = new Counter({ name: 'pulse_ticks_sent_total', help: 'Tick frames written to sockets', registers: [this.registry] });
  private readonly ticksSkipped = new Counter({ name: 'pulse_ticks_skipped_total', help: 'Tick frames skipped for slow clients (over SLOW_CLIENT_SKIP_BYTES buffered)', registers: [this.registry] });
  private readonly slowClientCloses = new Counter({ name: 'pulse_slow_client_closes_total', help: 'Connections closed with 1013 for buffering over SLOW_CLIENT_CLOSE_BYTES', registers: [this.registry] });
  private readonly tickFanoutSeconds = new Histogram({
    name: 'pulse_tick_fanout_seconds',
    help: 'Time from the second boundary until the tick was handed to every socket',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
    registers: [this.registry],
  });
  private readonly messages = new Counter({ name: 'pulse_messages_total', help: 'Client frames received by protocol', labelNames: ['protocol'] as const, registers: [this.registry] });
  private readonly errors = new Counter({ name: 'pulse_errors_total', help: 'Error replies by code', labelNames: ['code'] as const, registers: [this.registry] });
  private readonly rateLimitedFrames = new Counter({ name: 'pulse_rate_limited_total', help: 'Frames answered RATE_LIMITED', registers: [this.registry] });
  private readonly fibDuration = new Histogram({
    name: 'pulse_fibonacci_seconds',
    help: 'Fibonacci answer time by path (table, inline, worker, cache)',
    labelNames: ['path'] as const,
    buckets: [0.00001, 0.0001, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [this.registry],
  });
  private readonly fibCacheHits = new Counter({ name: 'pulse_fibonacci_cache_hits_total', help: 'Fibonacci answers served from the result cache', registers: [this.registry] });
  private readonly dbBatchSize = new Histogram({ name: 'pulse_db_batch_size', help: 'Session events per database batch', buckets: [1, 2, 5, 10, 50, 100, 500, 1000, 2000], registers: [this.registry] });
  private readonly dbBatchSeconds = new Histogram({ name: 'pulse_db_batch_seconds', help: 'Database batch round trip', buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5], registers: [this.registry] });
  private readonly dbLag = new Histogram({ name: 'pulse_db_lag_seconds', help: 'Time from a session event to its commit', buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5, 30], registers: [this.registry] });
  private readonly dbQueueEvents = new Gauge({ name: 'pulse_db_queue_events', help: 'Session events waiting for the database', registers: [this.registry] });
  private readonly dbQueueBytes = new Gauge({ name: 'pulse_db_queue_bytes', help: 'Estimated bytes of session events waiting for the database', registers: [this.registry] });
  private readonly dbEventsWritten = new Counter({ name: 'pulse_db_events_written_total', help: 'Session events written to the database', registers: [this.registry] });
  private readonly dbWriteFailures = new Counter({ name: 'pulse_db_write_failures_total', help: 'Failed database batches (retried)', registers: [this.registry] });
  private readonly dbResyncs = new Counter({ name: 'pulse_db_resyncs_total', help: 'Rewrites of this instance\'s open sessions from memory', labelNames: ['reason'] as const, registers: [this.registry] });
  private readonly dbEventsReplaced = new Counter({ name: 'pulse_db_events_replaced_total', help: 'Queued session events superseded by a resync', registers: [this.registry] });
  private readonly presenceReloads = new Counter({
    name: 'pulse_presence_reloads_total',
    help: 'Another instance\'s presence reloaded from the database instead of applied from its notification (hint: it announced a reload, after a batch too big for NOTIFY or its own resync; gap: a notification was missed; subscribed: LISTEN (re)established)',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  private readonly sweptSessionsTotal = new Counter({ name: 'pulse_swept_sessions_total', help: 'Sessions of lost instances closed by this instance\'s sweeper', registers: [this.registry] });
  private readonly sessionsRemovedTotal = new Counter({ name: 'pulse_sessions_removed_total', help: 'Closed sessions older than SESSIONS_RETENTION removed by this instance', registers: [this.registry] });
  private readonly usersRemovedTotal = new Counter({ name: 'pulse_users_removed_total', help: 'Users left without any session by the retention, removed by this instance', registers: [this.registry] });
  private readonly eventLoopLag: Gauge<'quantile'>;
  private readonly loopDelay: IntervalHistogram;

  constructor() {
    collectDefaultMetrics({ register: this.registry });
    this.loopDelay = monitorEventLoopDelay({ resolution: 10 });
    this.loopDelay.enable();
    const loopDelay = this.loopDelay;
    this.eventLoopLag = new Gauge({
      name: 'pulse_event_loop_lag_seconds',
      help: 'Event-loop delay since the previous scrape, by quantile',
      labelNames: ['quantile'] as const,
      registers: [this.registry],
      collect() {
        this.set({ quantile: '0.5' }, loopDelay.percentile(50) / 1e9);
        this.set({ quantile: '0.99' }, loopDelay.percentile(99) / 1e9);
        this.set({ quantile: '1' }, loopDelay.max / 1e9);
        loopDelay.reset();
      },
    });
  }

  // Labelled children are looked up once: prom-client would otherwise hash the labels on every
  // frame, connect and close.
  private readonly byProtocol = {
    json: { open: this.connections.labels('json'), total: this.connectionsTotal.labels('json'), frames: this.messages.labels('json') },
    text: { open: this.connections.labels('text'), total: this.connectionsTotal.labels('text'), frames: this.messages.labels('text') },
  };
  private readonly closesByCode = new Map<number, ReturnType<Counter<'code'>['labels']>>();
  private readonly errorsByCode = new Map<ErrorCode, ReturnType<Counter<'code'>['labels']>>();

  upgradeRefused(status: number): void {
    this.upgradesRejected.inc({ status: String(status) });
  }

  connectionOpened(protocol: SessionProtocol): void {
    this.byProtocol[protocol].open.inc();
    this.byProtocol[protocol].total.inc();
  }

  connectionClosed(protocol: SessionProtocol, code: number): void {
    this.byProtocol[protocol].open.dec();
    let closes = this.closesByCode.get(code);
    if (!closes) this.closesByCode.set(code, (closes = this.closes.labels(String(code))));
    closes.inc();
    if (code === CloseCode.TRY_AGAIN_LATER) this.slowClientCloses.inc();
  }

  frameReceived(protocol: SessionProtocol): void {
    this.byProtocol[protocol].frames.inc();
  }

  rateLimited(): void {
    this.rateLimitedFrames.inc();
  }

  errorReplied(code: ErrorCode): void {
    let errors = this.errorsByCode.get(code);
    if (!errors) this.errorsByCode.set(code, (errors = this.errors.labels(code)));
    errors.inc();
  }

  ticksWritten(sent: number, skipped: number): void {
    this.ticksSent.inc(sent);
    if (skipped > 0) this.ticksSkipped.inc(skipped);
  }

  tickFanout(seconds: number): void {
    this.tickFanoutSeconds.observe(seconds);
  }

  usersOnline(count: number): void {
    this.usersOnlineGauge.set(count);
  }

  // --- Fibonacci

  fibonacciAnswered(path: FibonacciPath, seconds: number): void {
    this.fibDuration.observe({ path }, seconds);
    if (path === 'cache') this.fibCacheHits.inc();
  }

  // --- presence and its session writer

  batchSize(size: number): void {
    this.dbBatchSize.observe(size);
  }

  batchSeconds(seconds: number): void {
    this.dbBatchSeconds.observe(seconds);
  }

  eventLagSeconds(seconds: number): void {
    this.dbLag.observe(seconds);
  }

  queueDepth(events: number, bytes: number): void {
    this.dbQueueEvents.set(events);
    this.dbQueueBytes.set(bytes);
  }

  written(events: number): void {
    this.dbEventsWritten.inc(events);
  }

  failed(): void {
    this.dbWriteFailures.inc();
  }

  resync(reason: ResyncReason, replacedEvents: number): void {
    this.dbResyncs.inc({ reason });
    this.dbEventsReplaced.inc(replacedEvents);
  }

  sweptSessions(count: number): void {
    this.sweptSessionsTotal.inc(count);
  }

  sessionsRemoved(count: number): void {
    this.sessionsRemovedTotal.inc(count);
  }

  usersRemoved(count: number): void {
    this.usersRemovedTotal.inc(count);
  }

  remoteReload(reason: RemoteReloadReason): void {
    this.presenceReloads.inc({ reason });
  }

  close(): void {
    this.loopDelay.disable();
  }
}
