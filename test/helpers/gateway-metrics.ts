// GatewayMetrics for unit tests: every report ignored, except those a test overrides.

import type { GatewayMetrics } from '../../src/gateway/metrics.js';

export function gatewayMetrics(overrides: Partial<GatewayMetrics> = {}): GatewayMetrics {
  const ignore = () => undefined;
  return {
    upgradeRefused: ignore,
    connectionOpened: ignore,
    connectionClosed: ignore,
    frameReceived: ignore,
    rateLimited: ignore,
    errorReplied: ignore,
    ticksWritten: ignore,
    tickFanout: ignore,
    usersOnline: ignore,
    ...overrides,
  };
}
