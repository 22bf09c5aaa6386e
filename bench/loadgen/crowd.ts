// The deploy scenario's crowd in one load-generator process: PulseClients (src/client), the
// library applications use, so a drain is measured as users live it: its reconnect policy
// (at once within a 0–250 ms jitter after 1001, backoff otherwise) is part of the figure. Each
// client records its sessions, every close it saw, and how long it took to get a welcome again.
import { PulseClient } from '../../src/client/index.js';
import type { Drain, HoldCommand, HoldReport, HoldResult, HoldStatus } from './protocol.js';
import { withTimeout } from '../lib/util.js';

interface Tracked {
  name: string;
  client: PulseClient;
  sessionId: string | undefined;
  instanceId: string | undefined;
  /** Date.now() of the last close, until the next welcome. */
  closedAt: number | undefined;
  /** The 1001 drain waiting for its welcome. */
  pendingDrain: Drain | undefined;
  maxAbsenceMs: number;
}

const crowd: Tracked[] = [];
const drains: Drain[] = [];
const otherCloses: Record<string, number> = {};
const otherClosedSessions: string[] = [];
let failedAttempts = 0;

function track(url: string, name: string): Tracked {
  const client = new PulseClient({ url, name, presence: false });
  const tracked: Tracked = { name, client, sessionId: undefined, instanceId: undefined, closedAt: undefined, pendingDrain: undefined, maxAbsenceMs: 0 };
  client.on('welcome', (welcome) => {
    const now = Date.now();
    if (tracked.closedAt !== undefined) tracked.maxAbsenceMs = Math.max(tracked.maxAbsenceMs, now - tracked.closedAt);
    if (tracked.pendingDrain) tracked.pendingDrain.reconnectMs = now - tracked.pendingDrain.closedAt;
    tracked.closedAt = undefined;
    tracked.pendingDrain = undefined;
    tracked.sessionId = welcome.sessionId;
    tracked.instanceId = welcome.instanceId;
  });
  // 'retry' comes right after the close event (or a failed attempt), before the next attempt.
  client.on('retry', (retry) => {
    if (!retry.close) {
      failedAttempts++;
      return;
    }
    const now = Date.now();
    tracked.closedAt = now;
    if (retry.close.code === 1001 && tracked.sessionId) {
      tracked.pendingDrain = { name, sessionId: tracked.sessionId, instanceId: tracked.instanceId ?? '', closedAt: now, reconnectMs: null };
      drains.push(tracked.pendingDrain);
    } else {
      const code = String(retry.close.code);
      otherCloses[code] = (otherCloses[code] ?? 0) + 1;
      if (tracked.sessionId) otherClosedSessions.push(tracked.sessionId);
    }
    tracked.sessionId = undefined;
  });
  // A client's errors are reported through 'retry' and its state; without a listener they would only be noise.
  client.on('error', () => undefined);
  return tracked;
}

export async function hold(command: HoldCommand): Promise<HoldResult> {
  const started = Date.now();
  const deadline = started + command.timeoutMs;
  const waits: Promise<boolean>[] = [];
  // Started at the asked rate, bounded by count and by the deadline.
  for (let i = 0; i < command.count && Date.now() < deadline; i++) {
    const due = started + (i * 1000) / command.ratePerSecond;
    if (due > Date.now()) await new Promise((resolve) => setTimeout(resolve, due - Date.now()));
    const tracked = track(command.url, `bench-${command.firstIndex + i}`);
    crowd.push(tracked);
    waits.push(tracked.client.connect().then(() => true, () => false));
  }
  await withTimeout(Promise.all(waits), Math.max(0, deadline - Date.now()));
  const ok = crowd.filter((t) => t.client.state === 'open').length;
  return { type: 'holding', ok, failed: command.count - ok, durationMs: Date.now() - started };
}

export function holdStatus(): HoldStatus {
  return { type: 'holdStatus', clients: crowd.length, open: crowd.filter((t) => t.client.state === 'open').length };
}

export function holdReport(): HoldReport {
  const open = crowd.filter((t) => t.client.state === 'open');
  const cpu = process.cpuUsage();
  return {
    type: 'holdReport',
    clients: crowd.length,
    open: open.length,
    notBack: crowd.filter((t) => t.client.state !== 'open').map((t) => t.name),
    drains,
    otherCloses,
    otherClosedSessions,
    failedAttempts,
    maxAbsenceMs: Object.fromEntries(crowd.map((t) => [t.name, t.closedAt === undefined ? t.maxAbsenceMs : Math.max(t.maxAbsenceMs, Date.now() - t.closedAt)])),
    openSessions: open.map((t) => t.sessionId).filter((id): id is string => id !== undefined),
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
  };
}

/** Closes every client (1000); returns how many there were. */
export function closeCrowd(): number {
  for (const t of crowd) t.client.close();
  const closed = crowd.length;
  crowd.length = 0;
  return closed;
}
