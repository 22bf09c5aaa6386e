// Starts a real Pulse in this process on a free port: embedded PGlite in memory by default,
// or a PostgreSQL server when env.DATABASE_URL is given.

import { buildPulse, type Pulse } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';

export interface RunningPulse {
  baseUrl: string;
  wsUrl: string;
  port: number;
  pulse: Pulse;
  /** Resolves once the database is connected (presence rows are being written). */
  ready(): Promise<void>;
  stop(): Promise<void>;
}

export async function startPulse(env: Record<string, string> = {}): Promise<RunningPulse> {
  const config = loadConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    DATA_DIR: ':memory:',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
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
    ready: () => pulse.presence.start(),
    stop: () => pulse.stop(),
  };
}
