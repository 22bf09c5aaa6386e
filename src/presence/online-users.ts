// Who is online across all instances, kept in memory: pure bookkeeping, no sockets, no SQL.
// Sessions of this instance and of every other instance are counted per user; a user is
// online while the sum is above zero, and for a leave grace after it drops to zero
// (PRESENCE_LEAVE_GRACE_MS): a user who comes back within it, as every client of a drained
// instance does during a rolling deploy, never left. Changes are remembered until the next
// presence message.

import type { OnlineUser, UserRef } from '../protocol/frames.js';

/** A user online, as kept in memory; toOnlineUser() gives the protocol's form. */
export interface OnlineUserRecord extends UserRef {
  /** Open sessions on every instance; 0 during the leave grace. */
  sessions: number;
  /** Epoch ms of the moment the user came online. */
  sinceMs: number;
  /** Epoch ms at which the last session closed, while the leave grace runs. */
  leavingSinceMs?: number;
}

/** The protocol's form of a user online (users replies, GET /api/users). */
export function toOnlineUser(record: OnlineUserRecord): OnlineUser {
  return { id: record.id, name: record.name, sessions: record.sessions, since: new Date(record.sinceMs).toISOString() };
}

export interface PresenceChanges {
  online: number;
  joined: UserRef[];
  left: UserRef[];
  joinedCount: number;
  leftCount: number;
}

/** One remote instance's open sessions per user, as loaded from the database. */
export interface RemoteSnapshotRow {
  userId: string;
  name: string;
  sessions: number;
  sinceMs: number;
}

export class OnlineUsers {
  private readonly users = new Map<string, OnlineUserRecord>();
  /** Users whose last session closed, in the order they did: the oldest grace ends first. */
  private readonly leaving = new Map<string, OnlineUserRecord>();
  /** Per remote instance: user id → open sessions there. */
  private readonly remote = new Map<string, Map<string, number>>();
  /**
   * User id → whether the user was online at the last `takeChanges()` and whether that changed at
   * any moment since (even if it changed back); only users touched since.
   */
  private readonly touched = new Map<string, { wasOnline: boolean; name: string; flipped: boolean }>();
  /** Whether list() handed out a snapshot since the last `takeChanges()`. */
  private listedSinceTake = false;
  private sorted: OnlineUserRecord[] | undefined;
  /** Bumped on every change of the set or of a session count; lets callers cache replies. */
  version = 0;

  /** `leaveGraceMs`: how long a user whose last session closed still counts as online; 0 for none. */
  constructor(private readonly leaveGraceMs = 0) {}

  /** Users online across all instances. */
  get count(): number {
    return this.users.size;
  }

  get(userId: string): OnlineUserRecord | undefined {
    return this.users.get(userId);
  }

  /** Adds (delta > 0) or removes (delta < 0) sessions of a user. */
  apply(userId: string, name: string, delta: number, at: number): void {
    if (delta === 0) return;
    const user = this.users.get(userId);
    const before = user !== undefined;
    if (!this.touched.has(userId)) this.touched.set(userId, { wasOnline: before, name: user?.name ?? name, flipped: false });
    this.version++;
    if (user) {
      user.sessions = Math.max(0, user.sessions + delta);
      if (delta > 0) {
        user.name = name;
        if (user.leavingSinceMs !== undefined) {
          user.leavingSinceMs = undefined; // back within the grace: they never left
          this.leaving.delete(userId);
        }
      } else if (user.sessions === 0 && user.leavingSinceMs === undefined) {
        if (this.leaveGraceMs > 0) {
          user.leavingSinceMs = at;
          this.leaving.set(userId, user);
        } else {
          this.users.delete(userId);
          this.sorted = undefined;
        }
      }
    } else if (delta > 0) {
      this.users.set(userId, { id: userId, name, sessions: delta, sinceMs: at });
      this.sorted = undefined;
    }
    const entry = this.touched.get(userId)!;
    entry.name = this.users.get(userId)?.name ?? entry.name;
    if (this.users.has(userId) !== before) entry.flipped = true;
  }

  /**
   * Applies the per-user deltas that another instance announced. A join keeps the other host's
   * time (online since); a leave's grace runs from `now`, its arrival here, so that a late batch or
   * a skewed clock on the other host cannot cut the grace short or disorder the leaving queue.
   */
  applyRemote(instanceId: string, deltas: Iterable<[userId: string, name: string, delta: number, at: number]>, now = Date.now()): void {
    let counts = this.remote.get(instanceId);
    if (!counts) this.remote.set(instanceId, (counts = new Map()));
    for (const [userId, name, delta, at] of deltas) {
      const next = (counts.get(userId) ?? 0) + delta;
      // Never let a late or duplicated notification drive a count below zero.
      const applied = next < 0 ? -(counts.get(userId) ?? 0) : delta;
      if (next <= 0) counts.delete(userId);
      else counts.set(userId, next);
      this.apply(userId, name, applied, applied < 0 ? now : at);
    }
  }

  /** Replaces what is known of one remote instance with a fresh snapshot from the database. */
  replaceRemote(instanceId: string, rows: RemoteSnapshotRow[]): void {
    const old = this.remote.get(instanceId) ?? new Map<string, number>();
    const fresh = new Map<string, number>();
    for (const row of rows) {
      fresh.set(row.userId, (fresh.get(row.userId) ?? 0) + row.sessions);
      const delta = row.sessions - (old.get(row.userId) ?? 0);
      old.delete(row.userId);
      this.apply(row.userId, row.name, delta, row.sinceMs);
    }
    for (const [userId, count] of old) {
      const name = this.users.get(userId)?.name ?? userId;
      this.apply(userId, name, -count, Date.now());
    }
    this.remote.set(instanceId, fresh);
  }

  /** Forgets a remote instance that stopped or was swept: its users' sessions there are gone. */
  dropRemote(instanceId: string): void {
    const counts = this.remote.get(instanceId);
    if (!counts) return;
    this.remote.delete(instanceId);
    for (const [userId, count] of counts) {
      const name = this.users.get(userId)?.name ?? userId;
      this.apply(userId, name, -count, Date.now());
    }
  }

  /**
   * Who joined and who left since the last call, at most `limit` of each; undefined when the set of
   * online users did not change. A user who came and went in between is in neither, unless list()
   * handed out a snapshot meanwhile: that snapshot may hold them (or miss a user who went and came
   * back), and a client that applies these changes to it must end up exact, so they are reported
   * as left (or joined) then.
   */
  takeChanges(limit: number, now = Date.now()): PresenceChanges | undefined {
    this.endGraces(now);
    if (this.touched.size === 0) {
      this.listedSinceTake = false;
      return undefined;
    }
    const joined: UserRef[] = [];
    const left: UserRef[] = [];
    let joinedCount = 0;
    let leftCount = 0;
    const listed = this.listedSinceTake;
    this.listedSinceTake = false;
    for (const [id, { wasOnline, name, flipped }] of this.touched) {
      const isOnline = this.users.has(id);
      if (isOnline === wasOnline && !(flipped && listed)) continue;
      if (isOnline) {
        if (joinedCount++ < limit) joined.push({ id, name });
      } else if (leftCount++ < limit) {
        left.push({ id, name });
      }
    }
    this.touched.clear();
    if (joinedCount === 0 && leftCount === 0) return undefined;
    return { online: this.users.size, joined, left, joinedCount, leftCount };
  }

  /** Users whose leave grace is over are gone now. */
  private endGraces(now: number): void {
    for (const [userId, user] of this.leaving) {
      if (now - user.leavingSinceMs! < this.leaveGraceMs) break; // the rest left later
      this.leaving.delete(userId);
      if (!this.touched.has(userId)) this.touched.set(userId, { wasOnline: true, name: user.name, flipped: false });
      this.touched.get(userId)!.flipped = true;
      this.users.delete(userId);
      this.sorted = undefined;
      this.version++;
    }
  }

  /** Online users ordered by name (then id), starting after the user id `after`, at most `limit`. */
  list(limit: number, after?: string): { users: OnlineUserRecord[]; truncated: boolean } {
    this.listedSinceTake = true;
    this.sorted ??= [...this.users.values()].sort((a, b) =>
      a.name < b.name ? -1 : a.name > b.name ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0,
    );
    let start = 0;
    if (after !== undefined) {
      const anchor = this.users.get(after);
      // A cursor whose user left meanwhile still sorts by its name: in open mode id and name are the same text.
      start = anchor ? this.sorted.indexOf(anchor) + 1 : this.sorted.findIndex((u) => u.name > after || (u.name === after && u.id > after));
      if (start < 0) start = this.sorted.length;
    }
    const users = this.sorted.slice(start, start + limit);
    return { users, truncated: start + limit < this.sorted.length };
  }
}
