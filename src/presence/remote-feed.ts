// What the other instances' notifications mean for this one: pure bookkeeping of their batch
// numbers, of the reloads in flight and of the notifications waiting for them. No SQL, no timers:
// Presence runs the actions returned here and reports back when a reload it asked for is done.

import type { RemoteUserRow } from '../db/queries.js';
import type { RemoteSnapshotRow } from './online-users.js';

/** One user's change on another instance: [userId, name, sessions delta, epoch ms]. */
export type RemoteDelta = [userId: string, name: string, delta: number, at: number];

/** A payload of the presence channel, checked (see the statements in src/db/queries.ts). */
export type Notification =
  | { kind: 'swept'; instances: string[] }
  | { kind: 'stopped'; instance: string }
  /** Batch `seq` of an instance: its deltas, or none when it asks for a reload instead. */
  | { kind: 'batch'; instance: string; seq: number; deltas: RemoteDelta[] | undefined; reload: boolean };

/** One instance as loaded from the database: its users and the batch number they include. */
export interface RemoteSnapshot {
  seq: number;
  users: RemoteSnapshotRow[];
}

export type ReloadReason = 'hint' | 'gap';

export type FeedAction =
  | { type: 'apply'; instance: string; deltas: RemoteDelta[] }
  | { type: 'replace'; instance: string; users: RemoteSnapshotRow[] }
  | { type: 'forget'; instance: string }
  /** Load this instance from the database, then call RemoteFeed.reloaded(). */
  | { type: 'reload'; instance: string; reason: ReloadReason }
  /** Another instance declared this one lost: rewrite its sessions from memory. */
  | { type: 'resync-self' }
  | { type: 'malformed'; payload: string };

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

function isDelta(value: unknown): value is RemoteDelta {
  return (
    Array.isArray(value) &&
    value.length === 4 &&
    typeof value[0] === 'string' &&
    typeof value[1] === 'string' &&
    Number.isSafeInteger(value[2]) &&
    typeof value[3] === 'number' &&
    Number.isFinite(value[3])
  );
}

/** Parses a payload of the presence channel; undefined for anything Pulse does not send. */
export function parseNotification(payload: string): Notification | undefined {
  let message: unknown;
  try {
    message = JSON.parse(payload);
  } catch {
    return undefined;
  }
  if (!isObject(message)) return undefined;
  if ('swept' in message) {
    const ids = message.swept;
    return Array.isArray(ids) && ids.every((id) => typeof id === 'string') ? { kind: 'swept', instances: ids } : undefined;
  }
  if ('stopped' in message) return typeof message.stopped === 'string' ? { kind: 'stopped', instance: message.stopped } : undefined;
  const { i, s, d, r } = message;
  if (typeof i !== 'string' || !Number.isSafeInteger(s) || (s as number) < 0) return undefined;
  if (d !== undefined && d !== null && !(Array.isArray(d) && d.every(isDelta))) return undefined;
  return { kind: 'batch', instance: i, seq: s as number, deltas: (d ?? undefined) as RemoteDelta[] | undefined, reload: Boolean(r) };
}

/** The rows of loadRemotePresence() per instance; `now` stands in for a missing `since`. */
export function snapshotsOf(rows: RemoteUserRow[], now: number): Map<string, RemoteSnapshot> {
  const snapshots = new Map<string, RemoteSnapshot>();
  for (const row of rows) {
    let snapshot = snapshots.get(row.instance_id);
    if (!snapshot) snapshots.set(row.instance_id, (snapshot = { seq: Number(row.seq), users: [] }));
    if (row.user_id === null) continue; // an instance with no open session
    snapshot.users.push({ userId: row.user_id, name: row.name ?? row.user_id, sessions: row.sessions, sinceMs: row.since?.getTime() ?? now });
  }
  return snapshots;
}

export class RemoteFeed {
  /**
   * The remote instances whose users are held, with the last batch number applied; undefined
   * when that is unknown (a reload failed): the next notification of that instance reloads it.
   */
  private readonly applied = new Map<string, number | undefined>();
  /** Instances being reloaded, with the notifications about them that arrived meanwhile. */
  private readonly reloading = new Map<string, Notification[]>();
  /** Set while every remote instance is being reloaded: all notifications wait here. */
  private reloadingAll: Notification[] | undefined;

  constructor(private readonly selfId: string) {}

  /** What a payload of the presence channel asks for now. */
  receive(payload: string): FeedAction[] {
    const message = parseNotification(payload);
    if (!message) return [{ type: 'malformed', payload }];
    const actions: FeedAction[] = [];
    this.handle(message, actions);
    return actions;
  }

  /**
   * LISTEN was (re)established, so notifications may have been missed: true when every remote
   * instance must now be loaded (then call reloadedAll()), false when that is already under way.
   */
  subscribed(): boolean {
    if (this.reloadingAll) return false;
    this.reloadingAll = [];
    return true;
  }

  /** The reload of one instance finished: its snapshot, 'gone' (not live any more) or 'failed'. */
  reloaded(instance: string, outcome: RemoteSnapshot | 'gone' | 'failed'): FeedAction[] {
    const buffered = this.reloading.get(instance) ?? [];
    this.reloading.delete(instance);
    const actions: FeedAction[] = [];
    if (outcome === 'gone') this.forget(instance, actions);
    else if (outcome === 'failed') {
      if (this.applied.has(instance)) this.applied.set(instance, undefined);
    } else {
      const held = this.applied.get(instance);
      // A full reload that finished meanwhile may have brought a newer snapshot than this one.
      if (held === undefined || outcome.seq >= held) this.replace(instance, outcome, actions);
    }
    for (const message of buffered) this.handle(message, actions);
    return actions;
  }

  /** The reload of every remote instance finished: the live ones' snapshots, or 'failed'. */
  reloadedAll(outcome: Map<string, RemoteSnapshot> | 'failed'): FeedAction[] {
    const buffered = this.reloadingAll ?? [];
    this.reloadingAll = undefined;
    const actions: FeedAction[] = [];
    if (outcome !== 'failed') {
      for (const instance of [...this.applied.keys()]) if (!outcome.has(instance)) this.forget(instance, actions);
      for (const [instance, snapshot] of outcome) this.replace(instance, snapshot, actions);
    }
    for (const message of buffered) this.handle(message, actions);
    return actions;
  }

  private handle(message: Notification, actions: FeedAction[]): void {
    if (this.reloadingAll) {
      this.reloadingAll.push(message);
      return;
    }
    if (message.kind === 'swept') {
      for (const instance of message.instances) {
        if (instance === this.selfId) actions.push({ type: 'resync-self' });
        else this.gone(instance, actions);
      }
      return;
    }
    if (message.kind === 'stopped') {
      if (message.instance !== this.selfId) this.gone(message.instance, actions);
      return;
    }
    const { instance, seq, deltas } = message;
    if (instance === this.selfId) return;
    const buffered = this.reloading.get(instance);
    if (buffered) {
      buffered.push(message);
      return;
    }
    const last = this.applied.get(instance);
    if (last !== undefined && seq <= last) return; // already part of the state held
    const inOrder = last === undefined ? seq === 1 : seq === last + 1;
    if (message.reload || !deltas || !inOrder) {
      this.reloading.set(instance, []);
      actions.push({ type: 'reload', instance, reason: message.reload || !deltas ? 'hint' : 'gap' });
      return;
    }
    this.applied.set(instance, seq);
    actions.push({ type: 'apply', instance, deltas });
  }

  private replace(instance: string, snapshot: RemoteSnapshot, actions: FeedAction[]): void {
    this.applied.set(instance, snapshot.seq);
    actions.push({ type: 'replace', instance, users: snapshot.users });
  }

  /** A stopped or swept instance. Its reload may have read it still live: the forget waits for that. */
  private gone(instance: string, actions: FeedAction[]): void {
    const buffered = this.reloading.get(instance);
    if (buffered) buffered.push({ kind: 'stopped', instance });
    else this.forget(instance, actions);
  }

  private forget(instance: string, actions: FeedAction[]): void {
    if (!this.applied.delete(instance)) return;
    actions.push({ type: 'forget', instance });
  }
}
