// Text protocol codec (docs/design.md §4): the original's strings byte for byte, and properties over
// hostile input: never throws, only the two error lines.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { parseIntegerText } from '../../../src/fibonacci/parse.js';
import { TextProtocol } from '../../../src/protocol/messages.js';
import { CLIENT_ID_PATTERN } from '../../../src/protocol/names.js';
import { decodeTextFrame, encodeTextError } from '../../../src/gateway/text-codec.js';

const MAX = 1_000_000;
const NOT_A_NUMBER = 'Error: Only numbers are accepted.';
const OUT_OF_RANGE = 'Error: n must be between -1000000 and 1000000.';

function reply(text: string): string | number {
  let result: ReturnType<typeof decodeTextFrame> | undefined;
  assert.doesNotThrow(() => (result = decodeTextFrame(text, MAX)), `threw on ${JSON.stringify(text.slice(0, 100))}`);
  return result!.ok ? result!.n : encodeTextError(result!.code, MAX);
}

test('the original strings, byte for byte', () => {
  assert.equal(reply('10'), 10);
  assert.equal(reply(' -7\n'), -7);
  assert.equal(reply('abc'), NOT_A_NUMBER);
  assert.equal(reply(''), NOT_A_NUMBER);
  assert.equal(reply('1.5'), NOT_A_NUMBER);
  assert.equal(reply('{"type":"fibonacci","n":10}'), NOT_A_NUMBER);
  assert.equal(reply('1000001'), OUT_OF_RANGE);
  assert.equal(reply('-1000001'), OUT_OF_RANGE);
  assert.equal(TextProtocol.answer(10, '55'), 'Fibonacci(10) = 55');
  assert.equal(TextProtocol.left('bob'), 'Client #bob has left the chat');
  assert.equal(encodeTextError('OUT_OF_RANGE', 50), 'Error: n must be between -50 and 50.');
  assert.equal(encodeTextError('RATE_LIMITED', 50), 'Error: Too many messages, slow down.');
  assert.equal(encodeTextError('BUSY', 50), 'Error: Too many requests in flight.');
  assert.equal(encodeTextError('INTERNAL', 50), 'Error: Internal error.');
});

test('clientId pattern: 1-64 of A-Za-z0-9_-', () => {
  for (const ok of ['a', 'A-z_0', 'x'.repeat(64), '123']) assert.ok(CLIENT_ID_PATTERN.test(ok), ok);
  for (const bad of ['', 'x'.repeat(65), 'a b', 'é', 'a/b', '<script>', 'a\n', 'a.b']) assert.ok(!CLIENT_ID_PATTERN.test(bad), bad);
});

test('property: any text gets a number or one of the two error lines', () => {
  fc.assert(
    fc.property(fc.oneof(fc.string({ unit: 'binary', maxLength: 200 }), fc.string({ maxLength: 200 }), fc.stringMatching(/^\s*[+-]?\d{0,12}\s*$/)), (text) => {
      const r = reply(text);
      if (typeof r === 'number') {
        assert.ok(Number.isSafeInteger(r) && Math.abs(r) <= MAX);
        const expected = parseIntegerText(text, MAX);
        assert.ok(expected.ok && expected.n === r);
      } else {
        assert.ok(r === NOT_A_NUMBER || r === OUT_OF_RANGE, r);
      }
    }),
    { numRuns: 3000 },
  );
});
