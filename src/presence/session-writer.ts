// Batched writer: session opens and closes become one statement per batch, flushed a few ms
// after the first event or as soon as a batch is full. While the database is unreachable the
// events wait in memory, bounded in bytes; past the bound they are replaced by one rewrite of
// this instance's open sessions from memory (resync) once the database is back.

import { systemClock, type Clock, type ClockTimer } from '../clock/clock.js';
import type { Db } from '../db/driver.js';
import { MAX_NOTIFY_BYTES, resyncOwnSessions, writeBatch, type SessionCloseRow, type SessionOpenRow } from '../db/queries.js';
import type { LiveSession } from './live-sessions.js';
import type { Logger } from '../log.js';

/**
 * Why this instance's open sessions are rewritten from memory. `reconnected`: the presence channel
 * was re-established, and the server may have restarted after a crash, which loses the batches
 * committed in its last moments (they do not wait for the WAL flush: see writeBatch).
 */
export type ResyncReason = 'overflow' | 'swept' | 'requested' | 'reconnected';

export interface WriterMetrics {
  batchSize(size: number): void;
  batchSeconds(seconds: number): void;
  eventLagSeconds(seconds: number): void;
  queueDepth(events: number, bytes: number): void;
  written(events: number): void;
  failed(): void;
  resync(reason: ResyncReason, replacedEvents: number): void;
}

interface PendingSession {
  open?: SessionOpenRow;
  close?: SessionCloseRow;
  /** Clock.monotonic() of the oldest event, for the lag figure. */
  queuedAt: number;
  bytes: number;
  /** Bytes of this session's entry in the batch's notification, if written with its open only, or its close only. */
  announceOpen?: number;
  announceClose?: number;
}

/** The notification's bytes for one user: `["<id>","<name>",-1,<epoch ms>],` with room for the delta. */
function announceBytes(userId: string, name: string): number {
  return Buffer.byteLength(userId) + Buffer.byteLength(name) + 24;
}

/** What an entry adds to its batch's notification: an open and close in one batch add nothing. */
function announced(entry: PendingSession): number {
  if (entry.open && entry.close) return 0;
  return (entry.open ? entry.announceOpen : entry.announceClose) ?? 0;
}

export interface SessionWriterOptions {
  instance: { id: string; hostname: string; pid: number };
  liveSessions: () => Iterable<LiveSession>;
  metrics: WriterMetrics;
  log: Logger;
  maxQueueBytes: number;
  flushDelayMs?: number;
  maxBatch?: number;
  onHealthChange?: (healthy: boolean) => void;
  /** Timers and the lag figures' time; the system clock unless a test drives it. */
  clock?: Clock;
}

const BASE_EVENT_BYTES = 160;
// Room left for the envelope ({"i":"<instance>","s":<seq>,"d":[…]}, about 70 bytes) and for JSON
// escapes, which announceBytes leaves out.
const ANNOUNCE_BUDGET = MAX_NOTIFY_BYTES - 1_000;
const RETRY_MIN_MS = 100;
// Short cap: the database must be exact again within 2 s of its return.
const RETRY_MAX_MS = 1_000;

export class SessionWriter {
  private db: Db | undefined;
  private pending = new Map<string, PendingSession>();
  private queuedBytes = 0;
  private resyncReason: ResyncReason | undefined;
  private droppedSinceResync = 0;
  private timer: ClockTimer | undefined;
  private flushing: Promise<void> | undefined;
  private retryDelay = RETRY_MIN_MS;
  /** A failed flush's retry is armed: new events wait for it rather than cut the backoff short. */
  private backingOff = false;
  private healthy = true;
  /** The last batch left events behind to keep its notification whole: the next one goes at once. */
  private cutShort = false;
  private readonly flushDelayMs: number;
  private readonly maxBatch: number;
  private readonly clock: Clock;

  constructor(private readonly options: SessionWriterOptions) {
    // 10 ms: a storm's opens and closes share statements (and an open closed within the window is
    // one insert), at about 30 ms p99 of lag against the 100 ms docs/design.md §5 allows.
    this.flushDelayMs = options.flushDelayMs ?? 10;
    this.maxBatch = options.maxBatch ?? 2_000;
    this.clock = options.clock ?? systemClock;
  }

  get queuedEvents(): number {
    return this.pending.size;
  }

  /** Starts writing to `db` (after the instance row exists). Until then events only queue. */
  attach(db: Db): void {
    this.db = db;
    this.schedule(0);
  }

  opened(session: LiveSession): void {
    const open: SessionOpenRow = {
      id: session.id,
      user_id: session.userId,
      name: session.name,
      protocol: session.protocol,
      addr: session.remoteAddr,
      ua: session.userAgent,
      at: new Date(session.connectedAt).toISOString(),
    };
    this.enqueue(
      session.id,
      (entry) => {
        entry.open = open;
        entry.announceOpen = announceBytes(session.userId, session.name);
      },
      BASE_EVENT_BYTES + 2 * (session.name.length + session.userId.length) + (session.userAgent?.length ?? 0),
    );
  }

  closed(session: LiveSession, at: number, code: number | null, reason: string | null): void {
    const close: SessionCloseRow = { id: session.id, at: new Date(at).toISOString(), code, reason: reason || null };
    this.enqueue(
      session.id,
      (entry) => {
        entry.close = close;
        // Without its open in the batch, the notification names the user by id only.
        entry.announceClose = announceBytes(session.userId, session.userId);
      },
      BASE_EVENT_BYTES / 2 + (reason?.length ?? 0),
    );
  }

  /** Rewrites this instance's open sessions from memory at the next flush. */
  requestResync(reason: ResyncReason): void {
    // A precautionary rewrite gives way to one with a known cause, which is what the metric should say.
    if (this.resyncReason === undefined || this.resyncReason === 'reconnected') this.resyncReason = reason;
    this.schedule(0);
  }

  /** Writes everything queued; resolves when the queue is empty or rejects if the database fails. */
  async drain(): Promise<void> {
    for (let rounds = 0; rounds < 1_000; rounds++) {
      if (this.flushing) {
        await this.flushing;
        continue;
      }
      if (this.pending.size === 0 && !this.resyncReason) return;
      if (!this.db) throw new Error('database not available');
      const ok = await this.flush();
      if (!ok) throw new Error('database write failed');
    }
  }

  stop(): void {
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  private enqueue(id: string, set: (entry: PendingSession) => void, bytes: number): void {
    if (this.resyncReason === 'overflow') {
      // Everything queued is already superseded by the coming rewrite from memory.
      this.droppedSinceResync++;
      return;
    }
    let entry = this.pending.get(id);
    if (!entry) this.pending.set(id, (entry = { queuedAt: this.clock.monotonic(), bytes: 0 }));
    set(entry);
    entry.bytes += bytes;
    this.queuedBytes += bytes;
    if (this.queuedBytes > this.options.maxQueueBytes) {
      this.options.log.error(
        { events: this.pending.size, bytes: this.queuedBytes, limit: this.options.maxQueueBytes },
        'presence queue overflowed while the database is unreachable; open sessions will be rewritten from memory when it returns',
      );
      this.droppedSinceResync = this.pending.size;
      this.pending.clear();
      this.queuedBytes = 0;
      this.resyncReason = 'overflow';
    }
    this.options.metrics.queueDepth(this.pending.size, this.queuedBytes);
    if (this.pending.size >= this.maxBatch) this.schedule(0);
    else this.schedule(this.flushDelayMs);
  }

  private schedule(delayMs: number): void {
    if (!this.db || this.flushing || this.backingOff) return;
    if (this.timer) {
      if (delayMs > 0) return;
      this.clock.clearTimeout(this.timer);
    }
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, delayMs);
  }

  /** One round trip: a resync if one is due, else one batch. Returns false on failure. */
  private flush(): Promise<boolean> {
    const db = this.db;
    if (!db || this.flushing) return Promise.resolve(true);
    const work = this.resyncReason ? this.resync(db) : this.writeOneBatch(db);
    const done = work.then(
      () => {
        this.retryDelay = RETRY_MIN_MS;
        this.setHealthy(true);
        return true;
      },
      (err: Error) => {
        this.options.metrics.failed();
        this.options.log.warn(
          { err: err.message, queued: this.pending.size, retryInMs: this.retryDelay },
          'presence write failed; will retry',
        );
        this.setHealthy(false);
        return false;
      },
    );
    this.flushing = done.then(() => undefined);
    return done.then((ok) => {
      this.flushing = undefined;
      if (!ok) {
        const delay = this.retryDelay;
        this.retryDelay = Math.min(this.retryDelay * 2, RETRY_MAX_MS);
        this.backingOff = true;
        this.timer = this.clock.setTimeout(() => {
          this.timer = undefined;
          this.backingOff = false;
          void this.flush();
        }, delay);
      } else if (this.pending.size > 0 || this.resyncReason) {
        this.schedule(this.pending.size >= this.maxBatch || this.resyncReason || this.cutShort ? 0 : this.flushDelayMs);
      }
      return ok;
    });
  }

  private async writeOneBatch(db: Db): Promise<void> {
    if (this.pending.size === 0) return;
    const batch = new Map<string, PendingSession>();
    // While the database keeps up, a batch stays small enough for its notification: one too big
    // becomes a reload hint, which costs every other instance a reload of this one's users from
    // the database, just when the database is behind (measured: hints feed on the lag they cause).
    // A backlog after a failed write still goes out whole, up to maxBatch, with one hint per batch.
    const budget = this.healthy ? ANNOUNCE_BUDGET : Number.POSITIVE_INFINITY;
    let announcing = 0;
    this.cutShort = false;
    for (const [id, entry] of this.pending) {
      const bytes = announced(entry);
      if (batch.size > 0 && announcing + bytes > budget) {
        this.cutShort = true;
        break;
      }
      announcing += bytes;
      batch.set(id, entry);
      this.pending.delete(id);
      if (batch.size >= this.maxBatch) break;
    }
    const opens: SessionOpenRow[] = [];
    const closes: SessionCloseRow[] = [];
    let bytes = 0;
    for (const entry of batch.values()) {
      bytes += entry.bytes;
      if (entry.open && entry.close) {
        opens.push({ ...entry.open, closed_at: entry.close.at, code: entry.close.code, reason: entry.close.reason });
      } else if (entry.open) opens.push(entry.open);
      else if (entry.close) closes.push(entry.close);
    }
    const started = this.clock.monotonic();
    try {
      await writeBatch(db, this.options.instance.id, opens, closes);
    } catch (err) {
      this.restore(batch);
      throw err;
    }
    const finished = this.clock.monotonic();
    // An overflow during the write already zeroed the count.
    this.queuedBytes = Math.max(0, this.queuedBytes - bytes);
    const metrics = this.options.metrics;
    metrics.batchSize(batch.size);
    metrics.batchSeconds((finished - started) / 1000);
    for (const entry of batch.values()) metrics.eventLagSeconds((finished - entry.queuedAt) / 1000);
    metrics.written(batch.size);
    metrics.queueDepth(this.pending.size, this.queuedBytes);
  }

  /** Puts a failed batch back in front of what arrived meanwhile (a close may have followed an open). */
  private restore(batch: Map<string, PendingSession>): void {
    if (this.resyncReason === 'overflow') return;
    // Map.set keeps a key where it was: rebuilt so that the failed events come out first next time.
    for (const [id, newer] of this.pending) {
      const entry = batch.get(id);
      if (entry) {
        entry.close = newer.close ?? entry.close;
        entry.bytes += newer.bytes;
      } else {
        batch.set(id, newer);
      }
    }
    this.pending = batch;
    this.options.metrics.queueDepth(this.pending.size, this.queuedBytes);
  }

  private async resync(db: Db): Promise<void> {
    const reason = this.resyncReason!;
    const live = [...this.options.liveSessions()].map((s) => ({
      id: s.id,
      user_id: s.userId,
      name: s.name,
      protocol: s.protocol,
      addr: s.remoteAddr,
      ua: s.userAgent,
      at: new Date(s.connectedAt).toISOString(),
    }));
    // After a reconnection what is queued is exact and stays queued, to be written after the snapshot:
    // closes keep their codes. Their sessions are left open by the snapshot for those closes to apply.
    const keepQueued = reason === 'reconnected';
    const closing = keepQueued ? [...this.pending].filter(([, entry]) => entry.close && !entry.open).map(([id]) => id) : [];
    // Otherwise the snapshot supersedes whatever was queued before it. Counted afresh from here: an
    // overflow while it is in flight supersedes the events that arrive meanwhile, for the next snapshot.
    const superseded = (keepQueued ? 0 : this.pending.size) + this.droppedSinceResync;
    if (!keepQueued) {
      this.pending.clear();
      this.queuedBytes = 0;
      this.options.metrics.queueDepth(0, 0);
    }
    this.droppedSinceResync = 0;
    this.resyncReason = undefined;
    try {
      const { gone, swept } = await resyncOwnSessions(db, this.options.instance, live, closing);
      // A rewrite after a reconnection also repairs a sweep that happened meanwhile: say so.
      const cause = swept && reason === 'reconnected' ? 'swept' : reason;
      this.options.metrics.resync(cause, superseded);
      this.options.log.info({ reason: cause, live: live.length, closedByResync: gone, supersededEvents: superseded }, 'presence resync written');
    } catch (err) {
      // Try again later; events that arrived meanwhile stay queued and are covered by the next snapshot,
      // which also supersedes the ones cleared above: they are counted then.
      this.resyncReason ??= reason;
      this.droppedSinceResync += superseded;
      throw err;
    }
  }

  private setHealthy(healthy: boolean): void {
    if (healthy === this.healthy) return;
    this.healthy = healthy;
    this.options.onHealthChange?.(healthy);
  }
}
