// Who is online, as a client sees it: a `users` snapshot, then every later presence message
// applied to it (docs/design.md §3 guarantees the result is exact). Pure bookkeeping.

import type { OnlineUser, PresenceFrame, UserRef, UsersFrame } from '../protocol/frames.js';

/** A user known to be online; `sessions` and `since` are known when they came from a snapshot. */
export interface OnlineEntry extends UserRef {
  sessions?: number;
  since?: string;
}

export class OnlineList {
  private readonly users = new Map<string, OnlineEntry>();
  private sorted: readonly OnlineEntry[] | undefined;
  /** Users online across all instances, as the server last said (may exceed the list when truncated). */
  count = 0;
  /** False until a snapshot arrived, and again when a truncated message left the list partial. */
  complete = false;
  /** True while presence messages must wait: a snapshot was asked for and has not arrived. */
  private awaitingSnapshot = true;

  /** The users, ordered by name then id; the same array until something changes. */
  get list(): readonly OnlineEntry[] {
    this.sorted ??= [...this.users.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    return this.sorted;
  }

  /** A snapshot has been asked for: presence messages before it are older than it and are ignored. */
  expectSnapshot(): void {
    this.awaitingSnapshot = true;
  }

  /** Replaces everything with a `users` reply. */
  applySnapshot(frame: Pick<UsersFrame, 'online' | 'users' | 'truncated'>): void {
    this.users.clear();
    for (const user of frame.users) this.users.set(user.id, { ...user } satisfies OnlineUser);
    this.count = frame.online;
    this.complete = frame.truncated !== true;
    this.awaitingSnapshot = false;
    this.sorted = undefined;
  }

  /**
   * Applies a presence message. Returns true when the list is now partial (a truncated message):
   * the caller asks for a new snapshot.
   */
  applyPresence(frame: PresenceFrame): boolean {
    if (this.awaitingSnapshot) return false;
    for (const user of frame.left) this.users.delete(user.id);
    for (const user of frame.joined) if (!this.users.has(user.id)) this.users.set(user.id, { id: user.id, name: user.name });
    this.count = frame.online;
    this.sorted = undefined;
    if (frame.truncated) {
      this.complete = false;
      return true;
    }
    return false;
  }

  /**
   * The connection is gone: the list is kept for display but can no longer be kept exact, and
   * presence messages wait for the next connection's snapshot.
   */
  markStale(): void {
    this.complete = false;
    this.awaitingSnapshot = true;
  }
}
