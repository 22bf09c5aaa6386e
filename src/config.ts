// Environment → typed, validated configuration. A bad value stops start-up with one
// line that names the variable and what it accepts (ConfigError.message).

import { readAuthConfig, type AuthConfig } from './auth/auth-config.js';

export interface Config {
  port: number;
  host: string;
  databaseUrl: string | undefined;
  /** Where the LISTEN session connects: DATABASE_LISTEN_URL, else the database URL. */
  databaseListenUrl: string | undefined;
  dataDir: string;
  fibMaxN: number;
  fibMaxInFlight: number;
  fibCacheBytes: number;
  maxMessageBytes: number;
  rateLimitPerSecond: number;
  rateLimitBurst: number;
  maxConnections: number;
  maxConnectionsPerIp: number;
  slowClientSkipBytes: number;
  slowClientCloseBytes: number;
  pingIntervalMs: number;
  heartbeatIntervalMs: number;
  instanceTtlMs: number;
  sweepIntervalMs: number;
  dbQueueMaxBytes: number;
  presenceLeaveGraceMs: number;
  /** Closed sessions older than this are removed (SESSIONS_RETENTION); 0 keeps every session. */
  sessionsRetentionMs: number;
  allowedOrigins: string[] | '*' | undefined;
  /** Token settings; undefined in open mode (`?name=`). */
  auth: AuthConfig | undefined;
  trustProxy: boolean;
  workers: number;
  logLevel: string;
  shutdownTimeoutMs: number;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

type Env = Record<string, string | undefined>;

function integer(env: Env, name: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const text = raw.trim();
  if (!/^\d+$/.test(text) || Number(text) < min || Number(text) > max) {
    throw new ConfigError(`${name}=${JSON.stringify(raw)} is invalid: expected an integer from ${min} to ${max}`);
  }
  return Number(text);
}

function flag(env: Env, name: string): boolean {
  const raw = env[name]?.trim().toLowerCase();
  if (raw === undefined || raw === '' || raw === '0' || raw === 'false' || raw === 'no') return false;
  if (raw === '1' || raw === 'true' || raw === 'yes') return true;
  throw new ConfigError(`${name}=${JSON.stringify(env[name])} is invalid: expected true/false, 1/0 or yes/no`);
}

function origins(env: Env): Config['allowedOrigins'] {
  const raw = env.ALLOWED_ORIGINS?.trim();
  if (!raw) return undefined;
  if (raw === '*') return '*';
  return raw.split(',').map((item) => {
    const origin = item.trim();
    let parsed: URL;
    try {
      parsed = new URL(origin);
    } catch {
      throw new ConfigError(`ALLOWED_ORIGINS contains ${JSON.stringify(origin)}: expected a comma list of origins such as https://example.com, or *`);
    }
    if (parsed.origin !== origin.replace(/\/$/, '')) {
      throw new ConfigError(`ALLOWED_ORIGINS contains ${JSON.stringify(origin)}: expected scheme://host[:port] with no path`);
    }
    return parsed.origin;
  });
}

const DURATION_UNIT_MS = { d: 86_400_000, h: 3_600_000, m: 60_000, s: 1_000 } as const;
/** Ten years: far beyond any retention, and well inside what PostgreSQL's intervals and a double hold exactly. */
const MAX_DURATION_MS = 3_650 * DURATION_UNIT_MS.d;

/**
 * A duration such as `30d`, `12h`, `45m` or `90s`, in milliseconds; `0` alone means 0. Any other plain
 * integer is refused: `30` could mean seconds or days, and a retention read in the wrong unit deletes data.
 */
export function parseDuration(text: string): number | undefined {
  const trimmed = text.trim();
  if (trimmed === '0') return 0;
  const match = /^(\d{1,7})([dhms])$/.exec(trimmed);
  if (!match) return undefined;
  const ms = Number(match[1]) * DURATION_UNIT_MS[match[2] as keyof typeof DURATION_UNIT_MS];
  // `0s` is refused rather than read as 0: keeping everything is spelled `0`, and nobody asks to delete at once.
  return ms > 0 && ms <= MAX_DURATION_MS ? ms : undefined;
}

function duration(env: Env, name: string, fallback: string): number {
  const raw = env[name];
  const ms = parseDuration(raw === undefined || raw.trim() === '' ? fallback : raw);
  if (ms === undefined) {
    throw new ConfigError(
      `${name}=${JSON.stringify(raw)} is invalid: expected a duration such as 30d, 12h, 45m or 90s (at most 3650d), or 0 to keep everything`,
    );
  }
  return ms;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export function loadConfig(env: Env = process.env, cpuCount = 1): Config {
  const logLevel = env.LOG_LEVEL?.trim() || 'info';
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new ConfigError(`LOG_LEVEL=${JSON.stringify(logLevel)} is invalid: expected one of ${LOG_LEVELS.join(', ')}`);
  }

  const databaseUrl = env.DATABASE_URL?.trim() || undefined;
  if (databaseUrl !== undefined && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    throw new ConfigError(`DATABASE_URL is invalid: expected postgres://user:password@host:port/database`);
  }
  // LISTEN needs a session of its own: behind PgBouncer in transaction mode, this points past it.
  const databaseListenUrl = env.DATABASE_LISTEN_URL?.trim() || undefined;
  if (databaseListenUrl !== undefined) {
    if (databaseUrl === undefined) throw new ConfigError('DATABASE_LISTEN_URL is invalid without DATABASE_URL: the embedded database needs neither');
    if (!/^postgres(ql)?:\/\//.test(databaseListenUrl)) {
      throw new ConfigError(`DATABASE_LISTEN_URL is invalid: expected postgres://user:password@host:port/database`);
    }
  }

  const auth = readAuthConfig(env, (message) => new ConfigError(message));

  let workers = 1;
  const rawWorkers = env.PULSE_WORKERS?.trim();
  if (rawWorkers === 'auto') workers = Math.max(1, cpuCount);
  else workers = integer(env, 'PULSE_WORKERS', 1, 1, 256);
  if (workers > 1 && databaseUrl === undefined) {
    throw new ConfigError(
      'PULSE_WORKERS is invalid without DATABASE_URL: the embedded database lives in one process; set DATABASE_URL=postgres://… or PULSE_WORKERS=1',
    );
  }

  const slowClientSkipBytes = integer(env, 'SLOW_CLIENT_SKIP_BYTES', 65_536, 1);
  const slowClientCloseBytes = integer(env, 'SLOW_CLIENT_CLOSE_BYTES', 1_048_576, 1);
  if (slowClientCloseBytes < slowClientSkipBytes) {
    throw new ConfigError('SLOW_CLIENT_CLOSE_BYTES is invalid: expected a value at least SLOW_CLIENT_SKIP_BYTES');
  }
  const rateLimitPerSecond = integer(env, 'RATE_LIMIT_PER_SECOND', 20, 0, 1_000_000);
  const rateLimitBurst = integer(env, 'RATE_LIMIT_BURST', 40, 0, 1_000_000);
  if (rateLimitPerSecond > 0 && rateLimitBurst < 1) {
    throw new ConfigError('RATE_LIMIT_BURST is invalid: expected at least 1 while RATE_LIMIT_PER_SECOND is above 0');
  }
  const heartbeatIntervalMs = integer(env, 'HEARTBEAT_INTERVAL_MS', 5_000, 100, 3_600_000);
  const instanceTtlMs = integer(env, 'INSTANCE_TTL_MS', 15_000, 300, 86_400_000);
  if (instanceTtlMs <= heartbeatIntervalMs) {
    throw new ConfigError('INSTANCE_TTL_MS is invalid: expected a value greater than HEARTBEAT_INTERVAL_MS');
  }

  return {
    port: integer(env, 'PORT', 8000, 0, 65_535),
    host: env.HOST?.trim() || '0.0.0.0',
    databaseUrl,
    databaseListenUrl: databaseListenUrl ?? databaseUrl,
    dataDir: env.DATA_DIR?.trim() || '.data',
    fibMaxN: integer(env, 'FIB_MAX_N', 1_000_000, 0, 10_000_000),
    fibMaxInFlight: integer(env, 'FIB_MAX_IN_FLIGHT', 4, 1, 1_000),
    fibCacheBytes: integer(env, 'FIB_CACHE_BYTES', 32 * 1024 * 1024, 0),
    maxMessageBytes: integer(env, 'MAX_MESSAGE_BYTES', 4096, 64, 1_048_576),
    rateLimitPerSecond,
    rateLimitBurst,
    maxConnections: integer(env, 'MAX_CONNECTIONS', 100_000, 1),
    maxConnectionsPerIp: integer(env, 'MAX_CONNECTIONS_PER_IP', 1_000, 1),
    slowClientSkipBytes,
    slowClientCloseBytes,
    pingIntervalMs: integer(env, 'PING_INTERVAL_MS', 15_000, 100, 3_600_000),
    heartbeatIntervalMs,
    instanceTtlMs,
    sweepIntervalMs: integer(env, 'SWEEP_INTERVAL_MS', 2_000, 50, 3_600_000),
    dbQueueMaxBytes: integer(env, 'DB_QUEUE_MAX_BYTES', 16 * 1024 * 1024, 1024),
    presenceLeaveGraceMs: integer(env, 'PRESENCE_LEAVE_GRACE_MS', 3_000, 0, 600_000),
    sessionsRetentionMs: duration(env, 'SESSIONS_RETENTION', '30d'),
    allowedOrigins: origins(env),
    auth,
    trustProxy: flag(env, 'TRUST_PROXY'),
    workers,
    logLevel,
    shutdownTimeoutMs: integer(env, 'SHUTDOWN_TIMEOUT_MS', 8_000, 100, 600_000),
  };
}
