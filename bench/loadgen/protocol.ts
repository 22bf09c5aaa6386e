// Messages between the bench (parent) and its load-generator processes, over fork() IPC.

export interface ConnectCommand {
  cmd: 'connect';
  url: string;
  count: number;
  /** Index of this process's first client, for names and source-address spreading. */
  firstIndex: number;
  localAddresses: string[];
  /** Connections started per second by this process. */
  ratePerSecond: number;
  maxInFlight: number;
  timeoutMs: number;
}

export interface TicksCommand {
  cmd: 'ticks';
  /** First and last second boundary (epochMs) counted; every client expects each of them once. */
  windowStart: number;
  windowEnd: number;
}

export interface ChurnCommand {
  cmd: 'churn';
  url: string;
  loops: number;
  firstIndex: number;
  seconds: number;
  localAddresses: string[];
  /** Every sampleEvery-th cycle of each loop is reported at once for database-lag probing. */
  sampleEvery: number;
}

/** Opens `count` PulseClients that reconnect by themselves (the deploy scenario). */
export interface HoldCommand {
  cmd: 'hold';
  url: string;
  count: number;
  /** Index of this process's first client: its user is `bench-<index>`. */
  firstIndex: number;
  ratePerSecond: number;
  /** The phase ends after this; clients not welcomed by then count as failed (they keep trying). */
  timeoutMs: number;
}

export type ParentMessage =
  | ConnectCommand
  | TicksCommand
  | ChurnCommand
  | HoldCommand
  | { cmd: 'holdStatus' }
  | { cmd: 'holdReport' }
  | { cmd: 'close' }
  | { cmd: 'exit' };

export interface ConnectResult {
  type: 'connected';
  ok: number;
  failed: number;
  errors: Record<string, number>;
  durationMs: number;
  /** Start of each successful connection to its welcome, ms. */
  handshakeMs: Float64Array;
}

export interface TicksResult {
  type: 'ticks';
  clients: number;
  /** Clients still open at the time of the report. */
  open: number;
  expected: number;
  received: number;
  duplicates: number;
  /** Arrival − epochMs of every counted tick, ms. */
  latencies: Float64Array;
  /** Per counted second: [epochMs, earliest latency, latest latency] over this process's clients. */
  perEpoch: Array<[number, number, number]>;
  /** Ticks seen outside the window (before it started or after it ended). */
  outside: number;
  otherMessages: Record<string, number>;
  closes: Record<string, number>;
  cpuSeconds: number;
}

export interface ChurnSample {
  type: 'churnSample';
  sessionId: string;
  /** 'open': welcome received at `at`; 'close': client began closing at `at`. */
  event: 'open' | 'close';
  at: number;
}

export interface ChurnResult {
  type: 'churn';
  cycles: number;
  failures: number;
  errors: Record<string, number>;
  sessionIds: string[];
  instanceIds: string[];
  durationMs: number;
  cycleMs: Float64Array;
  /** Per cycle: socket creation to welcome, and close() to the close event, ms. */
  welcomeMs: Float64Array;
  closeMs: Float64Array;
  cpuSeconds: number;
}

export interface HoldResult {
  type: 'holding';
  ok: number;
  failed: number;
  durationMs: number;
}

export interface HoldStatus {
  type: 'holdStatus';
  clients: number;
  open: number;
}

/** A connection the server closed with 1001, as its client saw it. */
export interface Drain {
  name: string;
  sessionId: string;
  instanceId: string;
  /** Date.now() at the close event. */
  closedAt: number;
  /** Close event → the next welcome, ms; null when none came (yet). */
  reconnectMs: number | null;
}

export interface HoldReport {
  type: 'holdReport';
  clients: number;
  open: number;
  /** Users of the clients not open at the time of the report. */
  notBack: string[];
  drains: Drain[];
  /** Closes with any other code: code → count, and the sessions they ended. */
  otherCloses: Record<string, number>;
  otherClosedSessions: string[];
  /** Attempts that failed before a welcome (refused, 503, timeout). */
  failedAttempts: number;
  /** Per client, by user: the longest time between a close and the next welcome, ms (0: never closed). */
  maxAbsenceMs: Record<string, number>;
  /** The session each open client holds now. */
  openSessions: string[];
  cpuSeconds: number;
}

export type ChildMessage =
  | ConnectResult
  | TicksResult
  | ChurnSample
  | ChurnResult
  | HoldResult
  | HoldStatus
  | HoldReport
  | { type: 'closed'; closed: number }
  | { type: 'error'; message: string };
