import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  describeClose,
  describeConnectFailure,
  describeHttpStatus,
  formatClock,
  formatError,
  formatFibonacci,
  formatPresence,
  formatUserRow,
  formatUsersReply,
  isTransientStatus,
  sanitize,
} from '../../../src/cli/format.js';
import { BACKOFF_MAX_MS, backoffDelay } from '../../../src/cli/backoff.js';

test('names cannot drive the terminal', () => {
  assert.equal(sanitize('alice'), 'alice');
  assert.equal(sanitize('Zoë 山田'), 'Zoë 山田');
  assert.equal(sanitize('evil\x1b[2J\n\t'), 'evil\\u{1b}[2J\\u{a}\\u{9}');
  assert.equal(sanitize('a\u202eb\u0085'), 'a\\u{202e}b\\u{85}');
});

test('the clock is shown in local time', () => {
  const d = new Date('2026-11-29T15:45:27.000Z');
  const p = (n: number) => String(n).padStart(2, '0');
  const expected = `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
  assert.equal(formatClock('2026-11-29T15:45:27.000Z'), expected);
  assert.equal(formatClock('garbage\x1b'), 'garbage\\u{1b}');
});

test('answers and errors', () => {
  assert.equal(formatFibonacci({ type: 'fibonacci', id: 'a', n: 10, value: '55', digits: 2 }), 'F(10) = 55');
  assert.equal(formatFibonacci({ type: 'fibonacci', id: null, n: -8, value: '-21', digits: 2 }), 'F(-8) = -21');
  assert.equal(
    formatError({ type: 'error', id: 'cli', code: 'OUT_OF_RANGE', message: 'n must be between -1000000 and 1000000' }),
    'error OUT_OF_RANGE: n must be between -1000000 and 1000000',
  );
});

test('presence lines: who joined and left, then the online count', () => {
  assert.deepEqual(
    formatPresence({
      type: 'presence',
      online: 3,
      joined: [{ id: 'alice', name: 'alice' }],
      left: [{ id: 'u-7', name: 'bob' }],
    }),
    ['+ alice joined', '- bob (u-7) left', '3 online'],
  );
  assert.deepEqual(
    formatPresence({
      type: 'presence',
      online: 5000,
      joined: [{ id: 'a', name: 'a' }],
      left: [],
      truncated: true,
      joinedCount: 4000,
      leftCount: 2,
    }),
    ['+ a joined', '… and 3999 more joined, 2 more left (/users for the full list)', '5000 online'],
  );
});

test('users: tab-separated rows for scripts, a list for humans', () => {
  const u = { id: 'alice', name: 'alice', sessions: 2, since: '2026-11-29T15:00:00.000Z' };
  assert.equal(formatUserRow(u), 'alice\talice\t2');
  assert.equal(formatUserRow({ ...u, name: 'a\tb' }), 'a\\u{9}b\talice\t2');
  assert.deepEqual(formatUsersReply({ type: 'users', id: 1, online: 2, users: [u, { ...u, id: 'b', name: 'bob', sessions: 1 }] }), [
    '2 online:',
    '  alice · 2 sessions',
    '  bob (b) · 1 session',
  ]);
  assert.deepEqual(formatUsersReply({ type: 'users', id: 1, online: 1001, users: [u], truncated: true }), [
    '1001 online:',
    '  alice · 2 sessions',
    '  … 1000 more not shown',
  ]);
});

test('refused upgrades name the HTTP status and what it means', () => {
  for (const [status, words] of [
    [400, /--name/],
    [401, /token/],
    [403, /origin/],
    [429, /too many connections/],
    [503, /full or draining/],
  ] as const) {
    assert.match(describeHttpStatus(status), words);
    assert.match(describeConnectFailure({ url: 'ws://h/ws', status }), new RegExp(`^cannot connect to ws://h/ws: HTTP ${status} `));
  }
  assert.match(describeConnectFailure({ url: 'ws://h/ws', status: 400, body: 'invalid name' }), /— invalid name$/);
  assert.match(describeConnectFailure({ url: 'ws://h/ws', code: 'ECONNREFUSED' }), /connection refused/);
  assert.match(describeConnectFailure({ url: 'ws://h/ws', code: 'ENOTFOUND' }), /unknown host/);
  assert.match(describeConnectFailure({ url: 'ws://h/ws', code: 'TIMEOUT' }), /timed out/);
  assert.equal(isTransientStatus(503), true);
  assert.equal(isTransientStatus(429), true);
  assert.equal(isTransientStatus(401), false);
  assert.equal(isTransientStatus(400), false);
});

test('close codes are explained', () => {
  assert.equal(describeClose(1001, ''), 'server shutting down (1001)');
  assert.equal(describeClose(1008, 'token expired'), 'policy violation (rate-limit abuse or token expired) (1008: token expired)');
  assert.equal(describeClose(1013, ''), 'server overloaded or client too slow (1013)');
  assert.equal(describeClose(4000, ''), 'closed (4000)');
});

test('reconnect backoff: grows, is capped, and is jittered within [half, full]', () => {
  assert.equal(backoffDelay(1, () => 0), 250);
  assert.equal(backoffDelay(1, () => 1), 500);
  assert.equal(backoffDelay(2, () => 1), 1000);
  assert.equal(backoffDelay(4, () => 0.5), 3000);
  assert.equal(backoffDelay(50, () => 1), BACKOFF_MAX_MS);
  assert.equal(backoffDelay(1e9, () => 0), BACKOFF_MAX_MS / 2);
  for (let attempt = 1; attempt < 12; attempt++) {
    const d = backoffDelay(attempt);
    const cap = Math.min(BACKOFF_MAX_MS, 500 * 2 ** (attempt - 1));
    assert.ok(d >= cap / 2 && d <= cap, `attempt ${attempt}: ${d}`);
  }
});
