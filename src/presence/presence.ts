// Presence: live sessions in memory → batched writes → NOTIFY → the other instances' view.
// Serving never waits for the database: sessions open and close in memory at once, and the
// database follows (or catches up after an outage).

import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Db } from '../db/driver.js';
import { migrate } from '../db/migrate.js';
import {
  PRESENCE_CHANNEL,
  heartbeat,
  loadRemotePresence,
  ping,
  registerInstance,
  stopInstance,
  sweepLostInstances,
} from '../db/queries.js';
import type { LiveSession } from './live-sessions.js';
import { OnlineUsers, type PresenceChanges } from './online-users.js';
import { RemoteFeed, snapshotsOf, type FeedAction, type RemoteSnapshot } from './remote-feed.js';
import type { Logger } from '../log.js';
import { PRESENCE_LIST_MAX } from '../protocol/limits.js';
import { SessionRetention, type RetentionMetrics } from './retention.js';
import { SessionWriter, type WriterMetrics } from './session-writer.js';

export interface PresenceMetrics extends WriterMetrics, RetentionMetrics {
  sweptSessions(count: number): void;
  /** A remote instance's view reloaded from the database instead of applied from its notification. */
  remoteReload(reason: RemoteReloadReason): void;
}

/**
 * `hint`: the instance announced a reload instead of its changes (a batch too big for NOTIFY, or
 * its own resync); `gap`: one of its batch numbers was missed; `subscribed`: LISTEN was
 * established (once at start) or re-established, or a failed full reload was retried.
 */
export type RemoteReloadReason = 'hint' | 'gap' | 'subscribed';

export interface PresenceOptions {
  openDb: () => Promise<Db>;
  heartbeatIntervalMs: number;
  instanceTtlMs: number;
  sweepIntervalMs: number;
  maxQueueBytes: number;
  /** How long a user whose last session closed still counts as online (PRESENCE_LEAVE_GRACE_MS). */
  leaveGraceMs: number;
  /** Closed sessions older than this are removed (SESSIONS_RETENTION); 0 keeps everything. */
  sessionsRetentionMs: number;
  metrics: PresenceMetrics;
  log: Logger;
}

export class Presence {
  readonly instanceId = randomUUID();
  /** Who is online across all instances, kept in memory. */
  readonly onlineUsers: OnlineUsers;
  readonly writer: SessionWriter;
  private readonly retention: SessionRetention;
  private readonly live = new Map<string, LiveSession>();
  private db: Db | undefined;
  private bootstrapped = false;
  private stopped = false;
  private dbHealthy = false;
  /** The other instances' users: not loaded yet, loaded once (after the first LISTEN), and that load's changes taken. */
  private remoteLoad: 'pending' | 'loaded' | 'announced' = 'pending';
  private timers: NodeJS.Timeout[] = [];
  private bootstrapping: Promise<void> | undefined;
  /** Times LISTEN was established. */
  private subscriptions = 0;
  private readonly feed = new RemoteFeed(this.instanceId);

  constructor(private readonly options: PresenceOptions) {
    this.onlineUsers = new OnlineUsers(options.leaveGraceMs);
    this.writer = new SessionWriter({
      instance: { id: this.instanceId, hostname: hostname(), pid: process.pid },
      liveSessions: () => this.live.values(),
      metrics: options.metrics,
      log: options.log,
      maxQueueBytes: options.maxQueueBytes,
      onHealthChange: (healthy) => {
        this.dbHealthy = healthy;
        // Back from an outage: find out at once whether another instance swept us meanwhile.
        if (healthy) void this.beat();
      },
    });
    this.retention = new SessionRetention({ retentionMs: options.sessionsRetentionMs, metrics: options.metrics, log: options.log });
  }

  /** Open sessions on this instance. */
  get localSessions(): number {
    return this.live.size;
  }

  get database(): Db | undefined {
    return this.db;
  }

  /**
   * True once the instance is registered, knows who is online on the other instances and has
   * announced that first load (one presence message), and the last database round trip
   * succeeded. A client let in earlier would be told that everyone on the other instances joined.
   */
  get ready(): boolean {
    return this.bootstrapped && this.remoteLoad === 'announced' && this.dbHealthy;
  }

  /** Starts connecting in the background; serving does not wait for the database. */
  start(): Promise<void> {
    this.bootstrapping ??= this.bootstrap();
    return this.bootstrapping;
  }

  open(session: LiveSession): void {
    this.live.set(session.id, session);
    this.onlineUsers.apply(session.userId, session.name, 1, session.connectedAt);
    this.writer.opened(session);
  }

  close(session: LiveSession, code: number | null, reason: string | null): void {
    if (!this.live.delete(session.id)) return;
    const now = Date.now();
    this.onlineUsers.apply(session.userId, session.name, -1, now);
    this.writer.closed(session, now, code, reason);
  }

  /** Who joined and left since the last call; undefined when nobody did. */
  takeChanges(): PresenceChanges | undefined {
    const changes = this.onlineUsers.takeChanges(PRESENCE_LIST_MAX);
    if (this.remoteLoad === 'loaded') this.remoteLoad = 'announced';
    return changes;
  }

  /** Asks the database directly (for /readyz); false before the instance is ready to take clients. */
  async pingDatabase(timeoutMs: number): Promise<boolean> {
    const db = this.db;
    if (!db || !this.bootstrapped || this.remoteLoad !== 'announced') return false;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
    try {
      return await Promise.race([ping(db).then(() => true), timeout]);
    } catch {
      return false;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Graceful stop, after the gateway closed its sockets: writes what is queued, closes what is still
   * open for this instance with 1001 and marks it stopped. Bounded by `deadline` (epoch ms).
   */
  async stop(deadline: number): Promise<void> {
    this.stopped = true;
    for (const timer of this.timers) clearInterval(timer);
    this.retention.stop();
    // Still connecting (PGlite boots for seconds): let that finish, within the deadline, so the
    // database it opened is closed below rather than left running.
    if (!this.bootstrapped && this.bootstrapping) {
      await Promise.race([this.bootstrapping, new Promise((resolve) => setTimeout(resolve, Math.max(0, deadline - Date.now())).unref())]);
    }
    const db = this.db;
    if (db && this.bootstrapped) {
      const budget = Math.max(0, deadline - Date.now());
      const final = (async () => {
        await this.writer.drain().catch((err: Error) => this.options.log.warn({ err: err.message }, 'could not write the last presence events'));
        const closed = await stopInstance(db, this.instanceId);
        this.options.log.info({ instanceId: this.instanceId, closedByStop: closed }, 'instance stopped in the database');
      })();
      const finished = await Promise.race([
        final.then(() => true, (err: Error) => (this.options.log.warn({ err: err.message }, 'could not mark the instance stopped'), false)),
        new Promise<false>((resolve) => setTimeout(() => resolve(false), budget).unref()),
      ]);
      if (!finished) this.options.log.warn({ instanceId: this.instanceId }, 'database did not answer before the shutdown deadline; other instances will sweep this one');
    }
    this.writer.stop();
    // A database that is gone must not hold the process past its deadline.
    await Promise.race([
      db?.close().catch(() => undefined),
      new Promise((resolve) => setTimeout(resolve, Math.max(100, deadline - Date.now())).unref()),
    ]);
  }

  private async bootstrap(): Promise<void> {
    let delay = 250;
    while (!this.stopped) {
      try {
        this.db ??= await this.options.openDb();
        if (this.stopped) return;
        const applied = await migrate(this.db);
        if (applied.length > 0) this.options.log.info({ applied }, 'database migrations applied');
        await registerInstance(this.db, this.instanceId, hostname(), process.pid);
        await this.db.listen(PRESENCE_CHANNEL, (payload) => this.onNotification(payload), () => this.onSubscribed());
        this.bootstrapped = true;
        this.dbHealthy = true;
        this.writer.attach(this.db);
        this.timers.push(
          setInterval(() => void this.beat(), this.options.heartbeatIntervalMs),
          setInterval(() => void this.sweep(), this.options.sweepIntervalMs),
        );
        for (const timer of this.timers) timer.unref();
        this.retention.start(this.db);
        this.options.log.info({ instanceId: this.instanceId, driver: this.db.kind }, 'presence connected to the database');
        return;
      } catch (err) {
        this.options.log.warn({ err: (err as Error).message, retryInMs: delay }, 'database unavailable at start-up; serving without it and retrying');
        await new Promise((resolve) => setTimeout(resolve, delay).unref());
        delay = Math.min(delay * 2, 1_000);
      }
    }
  }

  private async beat(): Promise<void> {
    const db = this.db;
    if (!db || !this.bootstrapped || this.stopped) return;
    try {
      const alive = await heartbeat(db, this.instanceId);
      this.dbHealthy = true;
      if (!alive) {
        this.options.log.warn({ instanceId: this.instanceId }, 'another instance declared this one lost; rewriting its open sessions');
        this.writer.requestResync('swept');
      }
    } catch (err) {
      this.dbHealthy = false;
      this.options.log.warn({ err: (err as Error).message }, 'heartbeat failed');
    }
  }

  private async sweep(): Promise<void> {
    const db = this.db;
    if (!db || this.stopped) return;
    try {
      const swept = await sweepLostInstances(db, this.instanceId, this.options.instanceTtlMs);
      if (swept.instances > 0) {
        this.options.metrics.sweptSessions(swept.sessions);
        this.options.log.warn(swept, 'closed the sessions of lost instances');
      }
    } catch (err) {
      this.options.log.warn({ err: (err as Error).message }, 'sweep failed');
    }
  }

  /** LISTEN (re)established: notifications may have been missed, and after a reconnection rows may have been lost. */
  private onSubscribed(): void {
    // The connection may have dropped because PostgreSQL crashed, which loses the batches committed
    // in its last moments (they do not wait for the WAL flush): rewrite this instance's rows from memory.
    if (this.subscriptions++ > 0) this.writer.requestResync('reconnected');
    void this.reloadAllRemote();
  }

  private onNotification(payload: string): void {
    this.run(this.feed.receive(payload));
  }

  /** Carries out what the feed decided, in order. */
  private run(actions: FeedAction[]): void {
    for (const action of actions) {
      switch (action.type) {
        case 'apply':
          this.onlineUsers.applyRemote(action.instance, action.deltas);
          break;
        case 'replace':
          this.onlineUsers.replaceRemote(action.instance, action.users);
          break;
        case 'forget':
          this.onlineUsers.dropRemote(action.instance);
          break;
        case 'reload':
          this.options.metrics.remoteReload(action.reason);
          void this.reloadRemote(action.instance);
          break;
        case 'resync-self':
          this.writer.requestResync('swept');
          break;
        case 'malformed':
          this.options.log.warn({ payload: action.payload.slice(0, 200) }, 'ignored a malformed presence notification');
          break;
      }
    }
  }

  private async reloadRemote(instanceId: string): Promise<void> {
    let outcome: RemoteSnapshot | 'gone' | 'failed';
    try {
      if (!this.db) throw new Error('database not available');
      const rows = await loadRemotePresence(this.db, this.instanceId, instanceId);
      outcome = snapshotsOf(rows, Date.now()).get(instanceId) ?? 'gone';
    } catch (err) {
      this.options.log.warn({ err: (err as Error).message, instanceId }, 'could not reload a remote instance; will retry on the next notification');
      outcome = 'failed';
    }
    this.run(this.feed.reloaded(instanceId, outcome));
  }

  /** After (re)subscribing, notifications may have been missed: reload every other instance. */
  private async reloadAllRemote(): Promise<void> {
    const db = this.db;
    if (!db || !this.feed.subscribed()) return;
    this.options.metrics.remoteReload('subscribed');
    let outcome: Map<string, RemoteSnapshot> | 'failed';
    try {
      outcome = snapshotsOf(await loadRemotePresence(db, this.instanceId), Date.now());
      if (this.remoteLoad === 'pending') this.remoteLoad = 'loaded';
    } catch (err) {
      this.options.log.warn({ err: (err as Error).message }, 'could not load the other instances; retrying');
      setTimeout(() => void this.reloadAllRemote(), 1_000).unref();
      outcome = 'failed';
    }
    this.run(this.feed.reloadedAll(outcome));
  }
}
