// Broadcast: what clients get without asking. One tick, in the order the code follows it:
//   time frame: serialised and framed once per protocol, the same bytes written to every socket
//     that keeps up (over SLOW_CLIENT_SKIP_BYTES buffered: skipped; over SLOW_CLIENT_CLOSE_BYTES: 1013)
//   → presence message: who joined and left since the last tick, framed once for every JSON client
//     that wants it
//   → the next ping round, armed half a second later so that pings never land on a boundary.
// Pings are spread: each connection belongs to one of PING_INTERVAL_MS / 1 s slices, and one slice
// is pinged per round, so 100k pings never go out at once. A connection that has not answered the
// previous ping (nor sent anything) by its next round is dropped (1006).

import { jsonTimeFrame, textTimeFrame } from '../clock/frames.js';
import type { Config } from '../config.js';
import type { PresenceChanges } from '../presence/online-users.js';
import { textFrameBytes, type Connection, type Connections } from './connection.js';
import { encodePresence } from './json-codec.js';
import type { GatewayMetrics } from './metrics.js';

export type BroadcastLimits = Pick<Config, 'slowClientSkipBytes' | 'slowClientCloseBytes' | 'pingIntervalMs'>;

/** Where presence changes and the online count come from (Presence). */
export interface PresenceFeed {
  takeChanges(): PresenceChanges | undefined;
  readonly onlineUsers: { readonly count: number };
}

/** Intervals under this ping everyone each interval instead of in slices (tests use short ones). */
const SLICED_FROM_MS = 2_000;
/** A ping round runs this long after the tick, half-way to the next one. */
const PING_OFFSET_MS = 500;

export class Broadcaster {
  private readonly pingSlices: number;
  private pingTimer: NodeJS.Timeout | undefined;
  private pingRound = 0;
  private nextPingSlot = 0;
  private lastPingAt = Date.now();
  private stopped = false;

  constructor(
    private readonly connections: Connections,
    private readonly limits: BroadcastLimits,
    private readonly presence: PresenceFeed,
    private readonly metrics: GatewayMetrics,
  ) {
    this.pingSlices = limits.pingIntervalMs < SLICED_FROM_MS ? 1 : Math.floor(limits.pingIntervalMs / 1_000);
    if (this.pingSlices === 1) {
      this.pingTimer = setInterval(() => this.pingSlice(), limits.pingIntervalMs);
      this.pingTimer.unref();
    }
  }

  /** Puts a new connection in the next ping slice, round-robin. */
  track(conn: Connection): void {
    conn.pingSlot = this.nextPingSlot++ % this.pingSlices;
  }

  /** Called by the clock at every second boundary. */
  tick(epochMs: number): void {
    const skipAbove = this.limits.slowClientSkipBytes;
    const closeAbove = this.limits.slowClientCloseBytes;
    let sent = 0;
    let skipped = 0;
    for (const [connections, timePayload] of [
      [this.connections.json, jsonTimeFrame],
      [this.connections.text, textTimeFrame],
    ] as const) {
      if (connections.size === 0) continue; // no frame is built for a protocol nobody speaks
      const frame = textFrameBytes(timePayload(epochMs));
      for (const conn of connections) {
        // bufferedAmount is read once here; the write below repeats none of these checks.
        const buffered = conn.socket.bufferedAmount;
        if (buffered > skipAbove) {
          skipped++;
          if (buffered > closeAbove) conn.closeSlow();
        } else if (conn.writeFrame(frame)) {
          sent++;
        }
      }
    }
    this.metrics.ticksWritten(sent, skipped);
    this.broadcastPresence(closeAbove);
    this.metrics.tickFanout(Math.max(0, Date.now() - epochMs) / 1000);
    this.metrics.usersOnline(this.presence.onlineUsers.count);
    if (this.pingSlices > 1 && !this.stopped) {
      clearTimeout(this.pingTimer);
      this.pingTimer = setTimeout(() => this.pingSlice(), PING_OFFSET_MS);
      this.pingTimer.unref();
    }
  }

  /** No more pings (the gateway is draining: every connection is being closed with 1001). */
  stop(): void {
    this.stopped = true;
    clearInterval(this.pingTimer);
    clearTimeout(this.pingTimer);
  }

  private broadcastPresence(closeAbove: number): void {
    const changes = this.presence.takeChanges();
    if (!changes) return;
    const frame = textFrameBytes(encodePresence(changes));
    for (const conn of this.connections.json) if (conn.wantsPresence) conn.sendPrebuilt(frame, closeAbove);
  }

  private pingSlice(): void {
    const roundMs = this.limits.pingIntervalMs / this.pingSlices;
    // A round that runs late (the event loop stalled: GC, a starved CPU) judges nobody: the pongs
    // to the last ping may be sitting unread behind this very timer. It only pings again.
    const now = Date.now();
    const late = now - this.lastPingAt > roundMs * 1.5;
    this.lastPingAt = now;
    const slot = this.pingRound++ % this.pingSlices;
    // Judged in the check phase, after this loop turn has read its sockets: a pong that arrived
    // while the loop was busy is read in the poll phase, which runs between timers and setImmediate.
    setImmediate(() => this.judgeAndPing(slot, late));
  }

  private judgeAndPing(slot: number, late: boolean): void {
    if (this.stopped) return;
    for (const connections of [this.connections.json, this.connections.text]) {
      for (const conn of connections) {
        if (conn.pingSlot !== slot) continue;
        if (!conn.alive && !late) {
          conn.terminate('no pong within the ping interval');
          continue;
        }
        conn.ping();
      }
    }
  }
}
