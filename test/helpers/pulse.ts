// Starts a real Pulse in this process on a free port: embedded PGlite in memory by default,
// or a PostgreSQL server when env.DATABASE_URL is given.

import { buildPulse, type Pulse } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { eventually } from './ws-client.js';

export interface RunningPulse {
  baseUrl: string;
  wsUrl: string;
  port: number;
  pulse: Pulse;
  /** Resolves once the instance is ready, as /readyz says: the database connected, the others' users loaded and announced. */
  ready(): Promise<void>;
  stop(): Promise<void>;
}

export async function startPulse(env: Record<string, string> = {}): Promise<RunningPulse> {
  const config = loadConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    DATA_DIR: ':memory:',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    // Presence tests time the moment a user leaves: announced at once unless a test asks for a grace.
    PRESENCE_LEAVE_GRACE_MS: '0',
    ...env,
  });
  const pulse = await buildPulse(config);
  const port = await pulse.listen();
  const baseUrl = `http://127.0.0.1:${port}`;
  return {
    baseUrl,
    wsUrl: `ws://127.0.0.1:${port}/ws`,
    port,
    pulse,
    ready: async () => {
      await pulse.presence.start();
      // The other instances' users are announced at the first tick after they load: at most a second.
      await eventually('pulse to become ready', () => pulse.presence.ready, { timeoutMs: 10_000, intervalMs: 20 });
    },
    stop: () => pulse.stop(),
  };
}
