import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PulseError } from '../../../src/client/index.js';
import {
  describeFailure,
  displayUrl,
  formatAnswer,
  formatClock,
  formatError,
  formatFibonacci,
  formatPresence,
  formatReconnecting,
  formatStatus,
  formatUnanswered,
  formatUserRow,
  formatUsersReply,
  sanitize,
} from '../../../src/cli/format.js';

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

test('answers to a question typed; an error says which question it answers', () => {
  assert.deepEqual(formatAnswer({ type: 'fibonacci', id: null, n: 7, value: '13', digits: 2 }, '7'), ['F(7) = 13']);
  assert.deepEqual(formatAnswer({ type: 'error', id: null, code: 'INVALID_NUMBER', message: 'n must be an integer' }, 'abc'), [
    'error INVALID_NUMBER: n must be an integer (for abc)',
  ]);
  assert.deepEqual(formatAnswer({ type: 'users', id: null, online: 0, users: [] }, '/users'), ['0 online:']);
  assert.equal(formatError(new PulseError('BUSY', 'wait')), 'error BUSY: wait');
  assert.equal(
    formatUnanswered(new PulseError('DISCONNECTED', 'the connection closed (1006 the connection was lost) before the answer came'), '10'),
    'no answer to 10: the connection closed (1006 the connection was lost) before the answer came',
  );
});

test('refused connections say the HTTP status, the server\'s reason and the option to check', () => {
  const url = 'ws://h/ws';
  assert.equal(
    describeFailure(new PulseError('UNAUTHORIZED', 'token expired', false, 401), url),
    'cannot connect to ws://h/ws: HTTP 401 (unauthorized: token expired; check --token or PULSE_TOKEN)',
  );
  assert.equal(
    describeFailure(new PulseError('INVALID_NAME', 'a name is 1-32 letters', false, 400), url),
    'cannot connect to ws://h/ws: HTTP 400 (the server refuses the name: a name is 1-32 letters; check --name)',
  );
  assert.equal(describeFailure(new PulseError('ORIGIN_NOT_ALLOWED', 'origin not allowed', false, 403), url), 'cannot connect to ws://h/ws: HTTP 403 (forbidden: origin not allowed)');
  assert.equal(describeFailure(new PulseError('SERVER_FULL', 'server full', true, 503), url), 'cannot connect to ws://h/ws: HTTP 503 (server full)');
  assert.equal(describeFailure(new PulseError('UNAUTHORIZED', 'evil\x1b[2J', false, 401), url).includes('\x1b'), false);
});

test('failures below HTTP say what the network said', () => {
  const url = 'ws://h/ws';
  const failed = (cause?: unknown) => new PulseError('DISCONNECTED', 'could not connect to ws://h/ws (1006 the connection was lost)', true, undefined, cause);
  const errno = (code: string) => Object.assign(new Error(`connect ${code} 127.0.0.1:9`), { code });
  assert.equal(describeFailure(failed(errno('ECONNREFUSED')), url), 'cannot connect to ws://h/ws: connection refused (is the server running?) (ECONNREFUSED)');
  assert.equal(describeFailure(failed(errno('ENOTFOUND')), url), 'cannot connect to ws://h/ws: unknown host (ENOTFOUND)');
  assert.equal(describeFailure(failed(errno('EHOSTUNREACH')), url), 'cannot connect to ws://h/ws: connect EHOSTUNREACH 127.0.0.1:9');
  assert.equal(describeFailure(failed(new Error('Unexpected server response: 404')), url), 'cannot connect to ws://h/ws: HTTP 404 (no WebSocket endpoint at this path; try /ws)');
  assert.equal(describeFailure(failed(new Error('Unexpected server response: 502')), url), 'cannot connect to ws://h/ws: HTTP 502');
  assert.equal(describeFailure(failed(), url), 'could not connect to ws://h/ws (1006 the connection was lost)', 'a browser-like runtime: PulseClient\'s own words');
});

test('the status line and the reconnect announcement', () => {
  assert.equal(formatStatus('', 'connecting…', undefined), '---------- --:--:-- · connecting…');
  assert.equal(formatStatus('2026-11-29 16:45:27', '', 3), '2026-11-29 16:45:27 · 3 online');
  assert.equal(formatReconnecting(1234, 2), 'reconnecting in 1.2s (attempt 2)');
});

test('URLs are shown without query or credentials: a token never appears', () => {
  assert.equal(displayUrl('ws://u:p@h:1/ws?token=secret&name=a'), 'ws://h:1/ws');
});
