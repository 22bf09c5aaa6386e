// One simulated Pulse instance for the presence-scale bench: the real Presence and SessionWriter
// (src/presence/) on the real pg driver, with synthetic sessions instead of sockets. It holds a
// steady population, churns it at the rate the parent asks (close the oldest session, open one
// for the user offline longest, so every open is a join and every close a leave), times its
// writer's batches, and watches the other instances' probe users join. Obeys the parent over IPC.
import { randomUUID } from 'node:crypto';
import { createPgDb } from '../../src/db/driver.js';
import type { LiveSession } from '../../src/presence/live-sessions.js';
import { Presence, type PresenceMetrics } from '../../src/presence/presence.js';
import type { Logger } from '../../src/log.js';
import { PROBE_EVERY, parseUserId, type ChildMessage, type ParentMessage, type StartCommand, type StepCommand } from './protocol.js';
import { sleep, withTimeout } from '../lib/util.js';

let index = -1;
let presence: Presence | undefined;

function send(message: ChildMessage): void {
  process.send?.(message);
}

/** First-in first-out without shifting the array on every take. */
class Fifo<T> {
  private items: T[] = [];
  private head = 0;
  get size(): number {
    return this.items.length - this.head;
  }
  push(item: T): void {
    this.items.push(item);
  }
  take(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head++];
    if (this.head > 4096 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }
}

const online = new Fifo<LiveSession>();
const offlineUsers = new Fifo<number>();

// ---- what one step records; undefined between steps ----
interface Recorder {
  windowStart: number;
  windowEnd: number;
  events: number;
  written: number;
  lagMs: number[];
  batchSizes: number[];
  batchMs: number[];
  failed: number;
  probeJoins: number[];
  probeSeen: number[];
  reloads: Record<string, number>;
  resyncs: number;
}
let recorder: Recorder | undefined;
const inWindow = (r: Recorder, at: number): boolean => at >= r.windowStart && at < r.windowEnd;

// Warnings are what an operator would see; a few of each kind are enough to tell what happened.
const warned = new Map<string, number>();
function warn(fields: object, msg: string): void {
  const seen = (warned.get(msg) ?? 0) + 1;
  warned.set(msg, seen);
  if (seen <= 3) console.error(`presence-scale instance ${index}: ${msg} ${JSON.stringify(fields)}`);
}
const log: Logger = { debug: () => undefined, info: () => undefined, warn, error: warn };

const metrics: PresenceMetrics = {
  batchSize(size) {
    if (recorder && inWindow(recorder, Date.now())) recorder.batchSizes.push(size);
  },
  batchSeconds(seconds) {
    if (recorder && inWindow(recorder, Date.now())) recorder.batchMs.push(seconds * 1000);
  },
  eventLagSeconds(seconds) {
    if (recorder && inWindow(recorder, Date.now())) recorder.lagMs.push(seconds * 1000);
  },
  queueDepth: () => undefined,
  written(events) {
    if (recorder && inWindow(recorder, Date.now())) recorder.written += events;
  },
  failed() {
    if (recorder && inWindow(recorder, Date.now())) recorder.failed++;
  },
  resync() {
    if (recorder) recorder.resyncs++;
  },
  sweptSessions: () => undefined,
  sessionsRemoved: () => undefined,
  usersRemoved: () => undefined,
  remoteReload(reason) {
    if (recorder) recorder.reloads[reason] = (recorder.reloads[reason] ?? 0) + 1;
  },
};

function openSession(user: number, at: number): void {
  const userId = `i${index}-u${user}`;
  const session: LiveSession = {
    id: randomUUID(),
    userId,
    name: userId,
    protocol: 'json',
    remoteAddr: '127.0.0.1',
    userAgent: 'pulse-bench presence-scale',
    connectedAt: at,
  };
  presence!.open(session);
  online.push(session);
  if (recorder && user % PROBE_EVERY === 0 && inWindow(recorder, at)) recorder.probeJoins.push(user, at);
}

function closeOldest(): void {
  const session = online.take();
  if (!session) return;
  presence!.close(session, 1000, null);
  offlineUsers.push(parseUserId(session.userId)![1]);
}

// ---- watching the other instances: what a presence message would carry, polled every 5 ms ----
const observer = setInterval(() => {
  if (!presence || !recorder) return;
  const changes = presence.onlineUsers.takeChanges(Number.MAX_SAFE_INTEGER);
  if (!changes) return;
  const now = Date.now();
  for (const user of changes.joined) {
    const parsed = parseUserId(user.id);
    if (parsed && parsed[0] !== index && parsed[1] % PROBE_EVERY === 0) recorder.probeSeen.push(parsed[0], parsed[1], now);
  }
}, 5);
observer.unref();


/** Waits (bounded) until the writer has committed everything queued. */
async function settle(deadline: number): Promise<void> {
  while (presence && presence.writer.queuedEvents > 0 && Date.now() < deadline) await sleep(20);
}

async function start(command: StartCommand): Promise<void> {
  index = command.index;
  presence = new Presence({
    openDb: async () => createPgDb(command.databaseUrl, log),
    // Pulse's defaults (src/config.ts).
    heartbeatIntervalMs: 5_000,
    instanceTtlMs: 15_000,
    sweepIntervalMs: 2_000,
    maxQueueBytes: 16 * 1024 * 1024,
    // The bench times joins across instances; a leave grace would only hold back the leaves.
    leaveGraceMs: 0,
    // Nothing in a sweep's few minutes is old enough to remove; the retention is measured by bench/retention.ts.
    sessionsRetentionMs: 0,
    metrics,
    log,
  });
  const deadline = Date.now() + 60_000;
  await withTimeout(presence.start(), 60_000);
  // Ready only once the first load of the other instances' users has gone out in a presence
  // message (Pulse's broadcaster takes the changes every second): take them as it would.
  for (let i = 0; i < 3_000 && !presence.ready && Date.now() < deadline; i++) {
    presence.takeChanges();
    await sleep(20);
  }
  if (!presence.ready) throw new Error('presence not ready (database, or the first load of the other instances) within 60 s');
  const now = Date.now();
  for (let user = 0; user < command.sessions; user++) openSession(user, now);
  for (let user = command.sessions; user < 2 * command.sessions; user++) offlineUsers.push(user);
  await settle(Date.now() + 60_000);
  send({ type: 'started', instanceId: presence.instanceId });
}

async function step(command: StepCommand): Promise<void> {
  const r: Recorder = {
    windowStart: command.windowStart,
    windowEnd: command.windowEnd,
    events: 0,
    written: 0,
    lagMs: [],
    batchSizes: [],
    batchMs: [],
    failed: 0,
    probeJoins: [],
    probeSeen: [],
    reloads: {},
    resyncs: 0,
  };
  recorder = r;
  await sleep(Math.max(0, command.startAt - Date.now()));
  let cpuAtStart: NodeJS.CpuUsage | undefined;
  let queuedAtEnd = 0;
  let made = 0;
  // Events are due at a steady rate from startAt; each pass makes the ones due (bounded, so a
  // stalled loop catches up in a few passes rather than one burst).
  for (let passes = 0; passes < 1_000_000; passes++) {
    const now = Date.now();
    if (!cpuAtStart && now >= r.windowStart) cpuAtStart = process.cpuUsage();
    if (now >= r.windowEnd) break;
    const due = Math.floor(((now - command.startAt) / 1000) * command.rate);
    for (let k = 0; made < due && k < 20_000; k++) {
      made++;
      if (made % 2 === 1) closeOldest();
      else openSession(offlineUsers.take()!, now);
      if (inWindow(r, now)) r.events++;
    }
    // Every 10 ms: bursts like a gateway's, and few wake-ups, so the instances leave the cores to PostgreSQL.
    await sleep(10);
  }
  queuedAtEnd = presence!.writer.queuedEvents;
  const cpu = process.cpuUsage(cpuAtStart);
  // Let the queue drain and the other instances' last probes arrive before reporting.
  const grace = Date.now() + 3_000;
  await settle(Date.now() + 20_000);
  await sleep(Math.max(0, grace - Date.now()));
  recorder = undefined;
  send({
    type: 'step',
    events: r.events,
    written: r.written,
    lagMs: Float64Array.from(r.lagMs),
    batches: r.batchSizes.length,
    batchSizes: Float64Array.from(r.batchSizes),
    batchMs: Float64Array.from(r.batchMs),
    failedBatches: r.failed,
    queuedAtEnd,
    probeJoins: Float64Array.from(r.probeJoins),
    probeSeen: Float64Array.from(r.probeSeen),
    reloads: r.reloads,
    resyncs: r.resyncs,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
  });
}

async function stop(): Promise<void> {
  clearInterval(observer);
  await presence?.stop(Date.now() + 8_000);
  send({ type: 'stopped' });
  // The IPC channel would keep both processes alive: let go of it once the reply is out.
  process.disconnect?.();
}

process.on('message', (message: ParentMessage) => {
  const run = async (): Promise<void> => {
    switch (message.cmd) {
      case 'start':
        return start(message);
      case 'step':
        return step(message);
      case 'state':
        send({
          type: 'state',
          online: presence?.onlineUsers.count ?? 0,
          local: presence?.localSessions ?? 0,
          queued: presence?.writer.queuedEvents ?? 0,
        });
        return;
      case 'stop':
        return stop();
    }
  };
  run().catch((error: unknown) => send({ type: 'error', message: error instanceof Error ? error.message : String(error) }));
});
// The parent gone (killed, Ctrl-C): nothing to report to; the bench drops the database.
process.on('disconnect', () => process.exit(0));
