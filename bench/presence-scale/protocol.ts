// Messages between the presence-scale bench (parent) and its simulated Pulse instances, over
// fork() IPC (structured clone, so typed arrays travel as they are).

export interface StartCommand {
  cmd: 'start';
  databaseUrl: string;
  /** This instance's number, 0…K−1: its users are `i<index>-u<n>`, disjoint from the others'. */
  index: number;
  /** Sessions held open at all times. */
  sessions: number;
}

export interface StepCommand {
  cmd: 'step';
  /** Session events per second on this instance: a close of the oldest session, then an open. */
  rate: number;
  /** Epoch ms: the churn starts here; the measured window is [windowStart, windowEnd). */
  startAt: number;
  windowStart: number;
  windowEnd: number;
}

export type ParentMessage = StartCommand | StepCommand | { cmd: 'state' } | { cmd: 'stop' };

export interface StartedReply {
  type: 'started';
  instanceId: string;
}

export interface StepResult {
  type: 'step';
  /** Events this instance made in the window (opens + closes). */
  events: number;
  /** Events the writer committed in the window (an open and close merged into one row count 2). */
  written: number;
  /** Event → committed, ms, for every event committed in the window. */
  lagMs: Float64Array;
  batches: number;
  batchSizes: Float64Array;
  batchMs: Float64Array;
  failedBatches: number;
  /** Events still queued at the end of the window. */
  queuedAtEnd: number;
  /** Joins of this instance's probe users in the window: [user number, epoch ms], flattened. */
  probeJoins: Float64Array;
  /** Probe users of other instances seen joining here: [instance index, user number, epoch ms], flattened. */
  probeSeen: Float64Array;
  /** Reloads of other instances asked by the feed, by reason. */
  reloads: Record<string, number>;
  resyncs: number;
  /** utime + stime of this process over the window. */
  cpuSeconds: number;
}

export interface StateReply {
  type: 'state';
  /** Users online across all instances, as this instance sees them. */
  online: number;
  local: number;
  queued: number;
}

export type ChildMessage =
  | StartedReply
  | StepResult
  | StateReply
  | { type: 'stopped' }
  | { type: 'error'; message: string };

/** One user in this many is a probe: its joins are timed on the other instances. */
export const PROBE_EVERY = 8;

/** `i3-u17` → [3, 17]; undefined for any other id. */
export function parseUserId(id: string): [instance: number, user: number] | undefined {
  const match = /^i(\d+)-u(\d+)$/.exec(id);
  return match ? [Number(match[1]), Number(match[2])] : undefined;
}
