// Sessions retention (SESSIONS_RETENTION): closed sessions older than the retention are deleted in
// small batches, each its own short transaction, so that the writer never waits long for a lock
// (bench/retention.ts measured this against dropping partitions: README.md, Retention). The users
// whose last session a batch removes go with it. Instance rows stay: see docs/design.md §5.

import type { Queryable } from '../db/driver.js';
import { removeExpiredSessions } from '../db/queries.js';
import type { Logger } from '../log.js';

export interface RetentionMetrics {
  sessionsRemoved(count: number): void;
  usersRemoved(count: number): void;
}

/** Rows per delete statement: a few milliseconds of locks each (bench/retention.ts). */
const RETENTION_BATCH = 2_000;
/** A failure that persists is logged at most this often, not at every pass. */
const WARN_EVERY_MS = 60_000;
// PostgreSQL errors that mean "a user gained a session meanwhile" (the foreign key) or a deadlock: try next pass.
const RETRY_LATER_CODES = new Set(['23503', '40P01']);

/**
 * How often to look for expired sessions: half the retention, so a session goes within 1.5 × the
 * retention at worst, but never less often than every 30 s (within a minute of crossing it at any
 * retention) nor more often than every second (a retention of seconds is for tests).
 */
export function retentionPassIntervalMs(retentionMs: number): number {
  return Math.min(30_000, Math.max(1_000, Math.floor(retentionMs / 2)));
}

export interface SessionRetentionOptions {
  /** 0 keeps everything: no pass runs. */
  retentionMs: number;
  metrics: RetentionMetrics;
  log: Logger;
  batchSize?: number;
}

export interface PassResult {
  sessions: number;
  users: number;
  /** False when another instance was removing (this pass did nothing more), or the pass was stopped before its first batch. */
  held: boolean;
}

export class SessionRetention {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private lastWarnAt = Number.NEGATIVE_INFINITY;
  private readonly batchSize: number;

  constructor(private readonly options: SessionRetentionOptions) {
    this.batchSize = options.batchSize ?? RETENTION_BATCH;
  }

  /** Starts the passes on `db`; does nothing when the retention is 0. */
  start(db: Queryable): void {
    if (this.options.retentionMs === 0 || this.stopped) return;
    const interval = retentionPassIntervalMs(this.options.retentionMs);
    const next = () => {
      this.timer = setTimeout(() => {
        void this.pass(db)
          .then(
            () => undefined,
            (err: unknown) => this.failed(err),
          )
          .then(() => {
            if (!this.stopped) next();
          });
      }, interval);
      this.timer.unref();
    };
    next();
  }

  /** No further pass, nor batch: a batch in flight ends on its own (its failure, once the database closes, is not logged). */
  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  /** One pass: batches until the expired sessions are gone (or another instance holds the work). */
  async pass(db: Queryable): Promise<PassResult> {
    const { retentionMs, metrics } = this.options;
    const result: PassResult = { sessions: 0, users: 0, held: false };
    while (!this.stopped) {
      const started = performance.now();
      const batch = await removeExpiredSessions(db, retentionMs, this.batchSize);
      result.held = batch.held;
      if (!batch.held) break;
      if (batch.sessions > 0) metrics.sessionsRemoved(batch.sessions);
      if (batch.users > 0) metrics.usersRemoved(batch.users);
      result.sessions += batch.sessions;
      result.users += batch.users;
      if (batch.sessions < this.batchSize) break;
      // A backlog (the first pass after an upgrade, a lowered retention) is removed at half speed:
      // back to back, the deletes took enough of a 2-core PostgreSQL to raise the writer's p99 1.5 to
      // 4 times (bench/retention.ts); paced, the writer barely notices, and 40,000 rows a second still go.
      await new Promise((resolve) => setTimeout(resolve, performance.now() - started));
    }
    if (result.sessions > 0 || result.users > 0) this.options.log.info(result, 'expired sessions removed');
    return result;
  }

  private failed(err: unknown): void {
    if (this.stopped) return;
    const message = err instanceof Error ? err.message : String(err);
    if (retryLater(err)) {
      this.options.log.debug({ err: message }, 'retention pass deferred');
      return;
    }
    const now = Date.now();
    if (now - this.lastWarnAt < WARN_EVERY_MS) return;
    this.lastWarnAt = now;
    this.options.log.warn({ err: message }, 'retention pass failed; retrying at the next pass');
  }
}

function retryLater(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && RETRY_LATER_CODES.has(code);
}
