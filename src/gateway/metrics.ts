// What the gateway reports, as an interface the gateway owns: the Prometheus registry
// (src/http/metrics.ts) implements it, tests may pass a silent one. Every call is a counter bump
// or one observation; none allocates on the hot paths (per frame, per tick).

import type { ErrorCode } from '../protocol/codes.js';
import type { SessionProtocol } from '../presence/live-sessions.js';

export interface GatewayMetrics {
  upgradeRefused(status: number): void;
  connectionOpened(protocol: SessionProtocol): void;
  /** `code` is the close code recorded for the session. */
  connectionClosed(protocol: SessionProtocol, code: number): void;
  frameReceived(protocol: SessionProtocol): void;
  rateLimited(): void;
  errorReplied(code: ErrorCode): void;
  ticksWritten(sent: number, skipped: number): void;
  /** Seconds from the second boundary until the tick was handed to every socket. */
  tickFanout(seconds: number): void;
  usersOnline(count: number): void;
}
