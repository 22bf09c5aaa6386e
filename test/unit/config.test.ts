import { readFileSync } from 'node:fs';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, loadConfig, parseDuration } from '../../src/config.js';

test('defaults are those of docs/design.md §6', () => {
  const config = loadConfig({});
  assert.equal(config.port, 8000);
  assert.equal(config.host, '0.0.0.0');
  assert.equal(config.databaseUrl, undefined);
  assert.equal(config.dataDir, '.data');
  assert.equal(config.fibMaxN, 1_000_000);
  assert.equal(config.maxMessageBytes, 4096);
  assert.equal(config.rateLimitPerSecond, 20);
  assert.equal(config.rateLimitBurst, 40);
  assert.equal(config.fibMaxInFlight, 4);
  assert.equal(config.maxConnections, 100_000);
  assert.equal(config.maxConnectionsPerIp, 1000);
  assert.equal(config.slowClientSkipBytes, 65_536);
  assert.equal(config.slowClientCloseBytes, 1_048_576);
  assert.equal(config.pingIntervalMs, 15_000);
  assert.equal(config.heartbeatIntervalMs, 5_000);
  assert.equal(config.instanceTtlMs, 15_000);
  assert.equal(config.allowedOrigins, undefined);
  assert.equal(config.auth, undefined);
  assert.equal(config.trustProxy, false);
  assert.equal(config.workers, 1);
  assert.equal(config.logLevel, 'info');
  assert.equal(config.sessionsRetentionMs, 30 * 86_400_000);
});

test('a bad value is refused with one line naming the variable and what it accepts', () => {
  const cases: [Record<string, string>, RegExp][] = [
    [{ PORT: 'eighty' }, /^PORT="eighty" is invalid: expected an integer from 0 to 65535$/],
    [{ PORT: '70000' }, /^PORT=/],
    [{ FIB_MAX_N: '-1' }, /^FIB_MAX_N=/],
    [{ DATABASE_URL: 'mysql://x' }, /^DATABASE_URL is invalid/],
    [{ AUTH_JWT_SECRET: 'short' }, /^AUTH_JWT_SECRET is invalid: expected a secret of at least 32 characters$/],
    [{ ALLOWED_ORIGINS: 'not a url' }, /^ALLOWED_ORIGINS contains/],
    [{ ALLOWED_ORIGINS: 'https://a.example/path' }, /^ALLOWED_ORIGINS contains/],
    [{ TRUST_PROXY: 'maybe' }, /^TRUST_PROXY=/],
    [{ LOG_LEVEL: 'loud' }, /^LOG_LEVEL=/],
    [{ PULSE_WORKERS: '2' }, /^PULSE_WORKERS is invalid without DATABASE_URL/],
    [{ DATABASE_LISTEN_URL: 'postgres://u@db/pulse' }, /^DATABASE_LISTEN_URL is invalid without DATABASE_URL/],
    [{ DATABASE_URL: 'postgres://u@db/pulse', DATABASE_LISTEN_URL: 'db:5432' }, /^DATABASE_LISTEN_URL is invalid: expected postgres:/],
    [{ SLOW_CLIENT_SKIP_BYTES: '1000', SLOW_CLIENT_CLOSE_BYTES: '10' }, /^SLOW_CLIENT_CLOSE_BYTES is invalid/],
    [{ HEARTBEAT_INTERVAL_MS: '5000', INSTANCE_TTL_MS: '4000' }, /^INSTANCE_TTL_MS is invalid/],
    [{ RATE_LIMIT_BURST: '0' }, /^RATE_LIMIT_BURST/],
    [{ SESSIONS_RETENTION: 'forever' }, /^SESSIONS_RETENTION="forever" is invalid: expected a duration such as 30d, 12h, 45m or 90s \(at most 3650d\), or 0 to keep everything$/],
    [{ SESSIONS_RETENTION: '30' }, /^SESSIONS_RETENTION="30" is invalid/],
  ];
  for (const [env, message] of cases) {
    assert.throws(() => loadConfig(env), (err: unknown) => err instanceof ConfigError && message.test(err.message) && !err.message.includes('\n'), JSON.stringify(env));
  }
});

test('lists and switches parse', () => {
  const config = loadConfig({
    ALLOWED_ORIGINS: 'https://a.example, http://localhost:8000',
    TRUST_PROXY: 'true',
    DATABASE_URL: 'postgres://u:p@db:5432/pulse',
    PULSE_WORKERS: 'auto',
    RATE_LIMIT_PER_SECOND: '0',
  }, 4);
  assert.deepEqual(config.allowedOrigins, ['https://a.example', 'http://localhost:8000']);
  assert.equal(config.trustProxy, true);
  assert.equal(config.workers, 4);
  assert.equal(loadConfig({ ALLOWED_ORIGINS: '*' }).allowedOrigins, '*');
  assert.equal(config.rateLimitPerSecond, 0, '0 disables the limiter');
  assert.equal(config.databaseListenUrl, 'postgres://u:p@db:5432/pulse', 'LISTEN connects where the rest does unless told otherwise');
  const split = loadConfig({ DATABASE_URL: 'postgres://u@pgbouncer:6432/pulse', DATABASE_LISTEN_URL: 'postgres://u@db:5432/pulse' });
  assert.equal(split.databaseListenUrl, 'postgres://u@db:5432/pulse');
});

test('.env.example, as a user copies it to .env, is a configuration Pulse accepts', () => {
  const text = readFileSync(new URL('../../.env.example', import.meta.url), 'utf8');
  const env: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const match = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(line);
    if (match) env[match[1]!] = match[2]!;
  }
  assert.ok(Object.keys(env).length > 20, 'the settings were read');
  // compose.yaml sets DATABASE_URL itself; the rest is as the file says.
  assert.doesNotThrow(() => loadConfig({ ...env, DATABASE_URL: 'postgres://pulse:pulse@db:5432/pulse' }));
});

test('SESSIONS_RETENTION: a duration in d, h, m or s; 0 keeps everything; a bare number is refused', () => {
  assert.equal(parseDuration('30d'), 30 * 86_400_000);
  assert.equal(parseDuration('12h'), 12 * 3_600_000);
  assert.equal(parseDuration('45m'), 45 * 60_000);
  assert.equal(parseDuration('90s'), 90_000);
  assert.equal(parseDuration(' 2s '), 2_000, 'surrounding spaces are ignored');
  assert.equal(parseDuration('0'), 0);
  assert.equal(parseDuration('3650d'), 3_650 * 86_400_000);
  // Unit-less numbers are ambiguous (seconds? days?), and a zero with a unit is not how to say "keep".
  for (const bad of ['30', '1000', '0s', '0d', '1.5h', '-1d', '30D', '30 d', '1w', '1h30m', 'd', '', '3651d', '99999999s']) {
    assert.equal(parseDuration(bad), undefined, JSON.stringify(bad));
  }
  assert.equal(loadConfig({ SESSIONS_RETENTION: '2s' }).sessionsRetentionMs, 2_000);
  assert.equal(loadConfig({ SESSIONS_RETENTION: '0' }).sessionsRetentionMs, 0);
  assert.equal(loadConfig({ SESSIONS_RETENTION: '' }).sessionsRetentionMs, 30 * 86_400_000, 'empty means the default');
});
