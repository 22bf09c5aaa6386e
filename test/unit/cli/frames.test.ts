import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fibonacciRequest, fibonacciRequestKeepsId, parseServerFrame, usersRequest } from '../../../src/cli/frames.js';

test('fibonacci requests: safe integers as JSON integers, with the id', () => {
  assert.deepEqual(JSON.parse(fibonacciRequest('10', 'cli')), { type: 'fibonacci', n: 10, id: 'cli' });
  assert.deepEqual(JSON.parse(fibonacciRequest(' -8 ', 3)), { type: 'fibonacci', n: -8, id: 3 });
  assert.deepEqual(JSON.parse(fibonacciRequest('+007', 'a')), { type: 'fibonacci', n: 7, id: 'a' });
  assert.deepEqual(JSON.parse(fibonacciRequest('1000001', 'a')), { type: 'fibonacci', n: 1000001, id: 'a' });
  assert.equal(fibonacciRequestKeepsId('10'), true);
});

test('fibonacci requests: integers beyond safe go as bare text, never rounded', () => {
  assert.equal(fibonacciRequest('99999999999999999999', 'cli'), '99999999999999999999');
  assert.equal(fibonacciRequest('-9007199254740993', 'cli'), '-9007199254740993');
  assert.equal(fibonacciRequestKeepsId('99999999999999999999'), false);
});

test('fibonacci requests: anything else as a string n, answered INVALID_NUMBER with the id', () => {
  for (const input of ['abc', '1.5', '1e3', '', '0x10', '١٢']) {
    assert.deepEqual(JSON.parse(fibonacciRequest(input, 'cli')), { type: 'fibonacci', n: input, id: 'cli' }, input);
    assert.equal(fibonacciRequestKeepsId(input), true, input);
  }
});

test('users request', () => {
  assert.deepEqual(JSON.parse(usersRequest('cli')), { type: 'users', id: 'cli' });
});

test('parses every server frame of docs/design.md §3', () => {
  const welcome = parseServerFrame(
    '{"type":"welcome","protocol":1,"sessionId":"s","user":{"id":"alice","name":"alice"},"instanceId":"i","now":"2026-11-29T15:45:26.412Z","limits":{"maxN":1000000,"maxMessageBytes":4096,"messagesPerSecond":20}}',
  );
  assert.equal(welcome?.type, 'welcome');
  assert.deepEqual(parseServerFrame('{"type":"time","now":"2026-11-29T15:45:27.000Z","epochMs":1795966927000}'), {
    type: 'time',
    now: '2026-11-29T15:45:27.000Z',
    epochMs: 1795966927000,
  });
  assert.deepEqual(parseServerFrame('{"type":"fibonacci","id":null,"n":10,"value":"55","digits":2}'), {
    type: 'fibonacci',
    id: null,
    n: 10,
    value: '55',
    digits: 2,
  });
  const users = parseServerFrame(
    '{"type":"users","id":"cli","online":1,"users":[{"id":"a","name":"a","sessions":2,"since":"2026-11-29T15:00:00.000Z"}]}',
  );
  assert.equal(users?.type === 'users' && users.users[0]?.sessions, 2);
  const presence = parseServerFrame('{"type":"presence","online":3,"joined":[{"id":"a","name":"a"}],"left":[]}');
  assert.equal(presence?.type === 'presence' && presence.joined.length, 1);
  assert.deepEqual(parseServerFrame('{"type":"error","id":7,"code":"BUSY","message":"busy"}'), {
    type: 'error',
    id: 7,
    code: 'BUSY',
    message: 'busy',
  });
});

test('a missing id reads as null; malformed and unknown frames are ignored', () => {
  const e = parseServerFrame('{"type":"error","code":"INVALID_JSON","message":"x"}');
  assert.equal(e?.type === 'error' && e.id, null);
  for (const text of [
    'not json',
    '10',
    'null',
    '[]',
    '{"type":"later-addition"}',
    '{"type":"fibonacci","id":"a","n":10,"value":55}',
    '{"type":"users","id":"a","online":1,"users":[{"id":"a"}]}',
    '{"type":"presence","online":1,"joined":[{"id":1,"name":"x"}],"left":[]}',
    '{"type":"welcome","protocol":1}',
    '{"type":"error","id":{},"code":"X","message":""}',
  ]) {
    assert.equal(parseServerFrame(text), null, text);
  }
});
