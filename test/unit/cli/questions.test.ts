import { test } from 'node:test';
import assert from 'node:assert/strict';
import { USERS_QUESTION, fibonacciQuestion, readLine } from '../../../src/cli/questions.js';

test('a number goes as the text typed: the server reads it exactly, whatever its length', () => {
  assert.deepEqual(fibonacciQuestion(' 10 '), { label: '10', request: '10' });
  assert.deepEqual(fibonacciQuestion('-8'), { label: '-8', request: '-8' });
  assert.deepEqual(fibonacciQuestion('99999999999999999999'), { label: '99999999999999999999', request: '99999999999999999999' });
  // Not numbers either: the server answers INVALID_NUMBER, the CLI does not judge.
  for (const text of ['abc', '1.5', '', '0x10', '١٢']) assert.equal(fibonacciQuestion(text).request, text);
});

test('text that would read as a JSON frame is still asked as n', () => {
  assert.deepEqual(JSON.parse(fibonacciQuestion('{"type":"users"}').request as string), { type: 'fibonacci', n: '{"type":"users"}' });
  assert.deepEqual(JSON.parse(fibonacciQuestion('[1]').request as string), { type: 'fibonacci', n: '[1]' });
});

test('lines: commands, raw frames and numbers', () => {
  assert.deepEqual(readLine('   '), { kind: 'nothing' });
  assert.deepEqual(readLine('/quit'), { kind: 'quit' });
  assert.deepEqual(readLine('/exit'), { kind: 'quit' });
  assert.deepEqual(readLine('/help'), { kind: 'help' });
  assert.deepEqual(readLine(' /users '), { kind: 'ask', question: USERS_QUESTION });
  assert.deepEqual(USERS_QUESTION.request, { type: 'users' });
  assert.deepEqual(readLine('/who'), { kind: 'unknown', command: '/who' });
  assert.deepEqual(readLine('{"type":"users","id":7}'), { kind: 'ask', question: { label: '{"type":"users","id":7}', request: '{"type":"users","id":7}' } });
  assert.deepEqual(readLine('10'), { kind: 'ask', question: { label: '10', request: '10' } });
});
