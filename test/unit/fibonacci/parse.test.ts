import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { checkJsonN, parseIntegerText, type ParseResult } from '../../../src/fibonacci/parse.js';

const MAX = 1_000_000;
const INVALID = { ok: false, code: 'INVALID_NUMBER', message: 'n must be an integer' };
const OUT_OF_RANGE = { ok: false, code: 'OUT_OF_RANGE', message: `n must be between -${MAX} and ${MAX}` };
const ok = (n: number) => ({ ok: true, n });

// Compare as plain data: shared error results are frozen, successes are fresh objects.
function same(actual: ParseResult, expected: object, label: string): void {
  assert.deepEqual({ ...actual }, expected, label);
}

test('parseIntegerText: integers with optional white space, sign and leading zeros', () => {
  const cases: [string, number][] = [
    ['0', 0],
    ['10', 10],
    [' 10 ', 10],
    ['\t10\r\n', 10],
    ['\f\v42\v', 42],
    ['+7', 7],
    ['-7', -7],
    ['-10', -10],
    ['007', 7],
    ['-007', -7],
    ['000000000000000000000000000000000000000000001', 1],
    ['1000000', 1_000_000],
    ['-1000000', -1_000_000],
    ['+0', 0],
  ];
  for (const [text, n] of cases) same(parseIntegerText(text, MAX), ok(n), JSON.stringify(text));
});

test("parseIntegerText: '-0' is 0, not negative zero", () => {
  const result = parseIntegerText('-0', MAX);
  assert.ok(result.ok);
  assert.ok(Object.is(result.n, 0));
  const padded = parseIntegerText('  -000 ', MAX);
  assert.ok(padded.ok && Object.is(padded.n, 0));
});

test('parseIntegerText: anything that is not a plain integer is INVALID_NUMBER', () => {
  const cases = [
    'abc', '1.5', '1e3', '0x10', '1_000', '١٢', '', '  ', '-', '+', '+-1', '--1', '- 1', '1 2', '10a', 'a10',
    '1,000', '１２', '٣', 'NaN', 'Infinity', '-Infinity', '0b101', '0o7', '.5', '5.', '1e300', '10n', '"10"',
    '\u00a010', '10\u2003', '\u200b1', 'null', '[10]', '{"n":10}',
    // White space is ASCII only: a no-break space or an em space makes the text invalid.
  ];
  for (const text of cases) same(parseIntegerText(text, MAX), INVALID, JSON.stringify(text));
});

test('parseIntegerText: well-formed integers beyond ±maxN are OUT_OF_RANGE at any length', () => {
  const cases = [
    '1000001',
    '-1000001',
    '9007199254740993',
    '-9007199254740993',
    '1234567890123456789012345678901234567890',
    '-1234567890123456789012345678901234567890',
    ' 99999999999999999999999999999999999999999999999999 ',
    '9'.repeat(4096),
    '00000001000001',
  ];
  for (const text of cases) same(parseIntegerText(text, MAX), OUT_OF_RANGE, JSON.stringify(text.slice(0, 60)));
});

test('parseIntegerText: a bad character after a huge number still makes it INVALID_NUMBER', () => {
  same(parseIntegerText('9'.repeat(100) + 'x', MAX), INVALID, 'huge then x');
  same(parseIntegerText('9'.repeat(100) + '.5', MAX), INVALID, 'huge fraction');
  same(parseIntegerText('1000001e3', MAX), INVALID, 'exponent');
});

test('parseIntegerText: the bound comes from the caller', () => {
  same(parseIntegerText('11', 10), { ok: false, code: 'OUT_OF_RANGE', message: 'n must be between -10 and 10' }, '11 > 10');
  same(parseIntegerText('-10', 10), ok(-10), '-10 within 10');
  same(parseIntegerText('10000000', 10_000_000), ok(10_000_000), 'FIB_MAX_N upper bound');
  same(parseIntegerText('1', 0), { ok: false, code: 'OUT_OF_RANGE', message: 'n must be between -0 and 0' }, 'maxN 0');
  same(parseIntegerText('0', 0), ok(0), '0 within 0');
});

test('checkJsonN: a JSON integer within ±maxN', () => {
  for (const n of [0, 1, -1, 10, -10, 93, 1_000_000, -1_000_000, 1.0]) same(checkJsonN(n, MAX), ok(n), String(n));
  const negativeZero = checkJsonN(-0, MAX);
  assert.ok(negativeZero.ok && Object.is(negativeZero.n, 0));
  // JSON.parse of "10.0" and "1e2" gives integers; they are integers as far as JSON is concerned.
  same(checkJsonN(JSON.parse('{"n":1e2}').n, MAX), ok(100), '1e2');
});

test('checkJsonN: strings, fractions and non-numbers are INVALID_NUMBER', () => {
  const cases: unknown[] = ['10', '', ' 10', 1.5, -0.5, Number.NaN, true, false, null, undefined, {}, [], [10], { n: 10 }, 10n];
  for (const value of cases) same(checkJsonN(value, MAX), INVALID, String(value));
});

test('checkJsonN: integers beyond ±maxN are OUT_OF_RANGE', () => {
  for (const value of [1_000_001, -1_000_001, Number('9007199254740993'), 2 ** 53 + 2, 1e300, -1e300, Number.MAX_VALUE, Infinity, -Infinity]) {
    same(checkJsonN(value, MAX), OUT_OF_RANGE, String(value));
  }
});

test('property: parseIntegerText never throws and always returns one of the three shapes', () => {
  const arbitraryText = fc.oneof(
    fc.string({ maxLength: 64 }),
    fc.string({ unit: 'binary', maxLength: 64 }),
    fc.stringMatching(/^\s{0,3}[+-]?[0-9 ._eEx+-]{0,30}\s{0,3}$/),
  );
  fc.assert(
    fc.property(arbitraryText, fc.integer({ min: 0, max: 10_000_000 }), (text, maxN) => {
      const result = parseIntegerText(text, maxN);
      if (result.ok) {
        assert.deepEqual(Object.keys(result).sort(), ['n', 'ok']);
        assert.ok(Number.isSafeInteger(result.n) && Math.abs(result.n) <= maxN);
        assert.ok(!Object.is(result.n, -0));
      } else {
        assert.deepEqual(Object.keys(result).sort(), ['code', 'message', 'ok']);
        assert.ok(result.code === 'INVALID_NUMBER' || result.code === 'OUT_OF_RANGE');
        assert.equal(typeof result.message, 'string');
      }
    }),
    { numRuns: 2000 },
  );
});

test('property: every integer in range round-trips through String(n), padding, sign and zeros', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: -MAX, max: MAX }),
      fc.constantFrom('', ' ', '\t', '\n  '),
      fc.constantFrom('', ' ', '\r\n'),
      fc.nat({ max: 5 }),
      (n, before, after, zeros) => {
        same(parseIntegerText(String(n), MAX), ok(n), String(n));
        const digits = '0'.repeat(zeros) + String(Math.abs(n));
        const signed = n < 0 ? '-' + digits : (zeros % 2 === 0 ? '+' : '') + digits;
        same(parseIntegerText(before + signed + after, MAX), ok(n), JSON.stringify(before + signed + after));
        same(checkJsonN(n, MAX), ok(n), `json ${n}`);
      },
    ),
    { numRuns: 1000 },
  );
});

test('property: every integer beyond the bound is OUT_OF_RANGE, as text or as JSON', () => {
  fc.assert(
    fc.property(fc.bigInt({ min: BigInt(MAX) + 1n, max: 10n ** 60n }), fc.boolean(), (magnitude, negative) => {
      const text = (negative ? '-' : '') + magnitude.toString();
      same(parseIntegerText(text, MAX), OUT_OF_RANGE, text);
      same(checkJsonN(Number(text), MAX), OUT_OF_RANGE, `json ${text}`);
    }),
    { numRuns: 500 },
  );
});

test('checkJsonN: an integer too long for a double (Infinity after JSON.parse) is OUT_OF_RANGE', () => {
  for (const text of ['1e400', '-1e400', '9'.repeat(400)]) {
    const result = checkJsonN(JSON.parse(text), 1_000_000);
    assert.equal(result.ok ? 'ok' : result.code, 'OUT_OF_RANGE', text);
  }
});
