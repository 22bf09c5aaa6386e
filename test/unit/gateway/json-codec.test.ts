// JSON protocol codec (docs/design.md §3): examples of every input rule, then properties over hostile
// input: decodeJsonFrame never throws, always returns one of the three request shapes, and only
// ever the documented error codes.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { decodeJsonFrame, encodeError, encodeFibonacci, type JsonRequest } from '../../../src/gateway/json-codec.js';
import { ERROR_CODES } from '../../../src/protocol/codes.js';
import { MAX_ID_LENGTH, MAX_JSON_DEPTH } from '../../../src/protocol/limits.js';
import { parseIntegerText } from '../../../src/fibonacci/parse.js';

const MAX = 1_000_000;
const DECODE_CODES = new Set(['INVALID_JSON', 'INVALID_MESSAGE', 'INVALID_NUMBER', 'OUT_OF_RANGE']);

/** Asserts `r` is one of the documented shapes; returns it for further checks. */
function assertShape(r: JsonRequest, input: string): JsonRequest {
  const label = `input ${JSON.stringify(input.slice(0, 200))}`;
  assert.ok(r.id === null || (typeof r.id === 'string' && r.id.length <= MAX_ID_LENGTH) || Number.isSafeInteger(r.id), `${label}: id ${String(r.id)}`);
  switch (r.type) {
    case 'fibonacci':
      assert.deepEqual(Object.keys(r).sort(), ['id', 'n', 'type'], label);
      assert.ok(Number.isSafeInteger(r.n) && Math.abs(r.n) <= MAX && !Object.is(r.n, -0), `${label}: n ${r.n}`);
      break;
    case 'users':
      assert.deepEqual(Object.keys(r).sort(), ['id', 'type'], label);
      break;
    case 'error':
      assert.deepEqual(Object.keys(r).sort(), ['code', 'id', 'message', 'type'], label);
      assert.ok(DECODE_CODES.has(r.code), `${label}: code ${r.code}`);
      assert.ok((ERROR_CODES as readonly string[]).includes(r.code), label);
      assert.equal(typeof r.message, 'string', label);
      assert.ok(r.message.length > 0, label);
      break;
    default:
      assert.fail(`${label}: unknown shape ${JSON.stringify(r)}`);
  }
  return r;
}

function decode(text: string): JsonRequest {
  let result: JsonRequest | undefined;
  assert.doesNotThrow(() => (result = decodeJsonFrame(text, MAX)), `threw on ${JSON.stringify(text.slice(0, 200))}`);
  return assertShape(result!, text);
}

function errorCode(text: string): string | undefined {
  const r = decode(text);
  return r.type === 'error' ? r.code : undefined;
}

const nested = (depth: number, inner = '1'): string => '['.repeat(depth) + inner + ']'.repeat(depth);

test('valid requests decode exactly', () => {
  assert.deepEqual(decode('{"type":"fibonacci","n":10,"id":"a1"}'), { type: 'fibonacci', id: 'a1', n: 10 });
  assert.deepEqual(decode('{"type":"fibonacci","n":-7}'), { type: 'fibonacci', id: null, n: -7 });
  assert.deepEqual(decode('{"type":"fibonacci","n":0,"id":42}'), { type: 'fibonacci', id: 42, n: 0 });
  assert.deepEqual(decode('{"type":"fibonacci","n":-0}'), { type: 'fibonacci', id: null, n: 0 });
  assert.deepEqual(decode('{"type":"fibonacci","n":1e3}'), { type: 'fibonacci', id: null, n: 1000 });
  assert.deepEqual(decode('{"type":"users","id":"u"}'), { type: 'users', id: 'u' });
  assert.deepEqual(decode(' \n{"type":"users"}'), { type: 'users', id: null });
  assert.deepEqual(decode('10'), { type: 'fibonacci', id: null, n: 10 });
  assert.deepEqual(decode('  -0042\n'), { type: 'fibonacci', id: null, n: -42 });
  assert.deepEqual(decode(`{"type":"fibonacci","n":1,"id":"${'x'.repeat(64)}"}`), { type: 'fibonacci', id: 'x'.repeat(64), n: 1 });
  assert.deepEqual(decode(`{"type":"fibonacci","n":1,"id":${Number.MAX_SAFE_INTEGER}}`), { type: 'fibonacci', id: Number.MAX_SAFE_INTEGER, n: 1 });
  // 64 UTF-16 code units, as JavaScript counts: 32 astral characters.
  assert.equal(decode(`{"type":"users","id":"${'😀'.repeat(32)}"}`).type, 'users');
});

test('each input rule of docs/design.md §3 gives its error code', () => {
  const cases: [string, string][] = [
    ['{"type":"fibonacci","n":"10"}', 'INVALID_NUMBER'],
    ['{"type":"fibonacci","n":1.5}', 'INVALID_NUMBER'],
    ['{"type":"fibonacci","n":null}', 'INVALID_NUMBER'],
    ['{"type":"fibonacci","n":true}', 'INVALID_NUMBER'],
    ['{"type":"fibonacci","n":[10]}', 'INVALID_NUMBER'],
    ['{"type":"fibonacci","n":{}}', 'INVALID_NUMBER'],
    ['{"type":"fibonacci","n":1000001}', 'OUT_OF_RANGE'],
    ['{"type":"fibonacci","n":-1000001}', 'OUT_OF_RANGE'],
    ['{"type":"fibonacci","n":1e300}', 'OUT_OF_RANGE'],
    ['{"type":"fibonacci","n":1e400}', 'OUT_OF_RANGE'], // an integer too long for a double, not "not a number"
    ['{"type":"fibonacci"}', 'INVALID_MESSAGE'],
    ['{"type":"fibonacci","n":10,"id":{}}', 'INVALID_MESSAGE'],
    ['{"type":"fibonacci","n":10,"id":[]}', 'INVALID_MESSAGE'],
    ['{"type":"fibonacci","n":10,"id":true}', 'INVALID_MESSAGE'],
    ['{"type":"fibonacci","n":10,"id":1.5}', 'INVALID_MESSAGE'],
    [`{"type":"fibonacci","n":10,"id":${2 ** 53}}`, 'INVALID_MESSAGE'],
    [`{"type":"fibonacci","n":10,"id":"${'x'.repeat(65)}"}`, 'INVALID_MESSAGE'],
    ['{"type":"fib","n":10}', 'INVALID_MESSAGE'],
    ['{"type":"FIBONACCI","n":10}', 'INVALID_MESSAGE'],
    ['{"type":"welcome"}', 'INVALID_MESSAGE'],
    ['{"n":10}', 'INVALID_MESSAGE'],
    ['{}', 'INVALID_MESSAGE'],
    ['[]', 'INVALID_MESSAGE'],
    ['[{"type":"fibonacci","n":10}]', 'INVALID_MESSAGE'],
    ['{"type":"fibonacci","n":10', 'INVALID_JSON'],
    ['{"type":"fibonacci","n":10}}', 'INVALID_JSON'],
    ["{'type':'fibonacci','n':10}", 'INVALID_JSON'],
    ['{"type":"fibonacci","n":NaN}', 'INVALID_JSON'],
    ['{', 'INVALID_JSON'],
    ['[', 'INVALID_JSON'],
    ['', 'INVALID_NUMBER'],
    ['   ', 'INVALID_NUMBER'],
    ['null', 'INVALID_NUMBER'],
    ['"10"', 'INVALID_NUMBER'],
    ['1.5', 'INVALID_NUMBER'],
    ['1e3', 'INVALID_NUMBER'],
    ['0x10', 'INVALID_NUMBER'],
    ['١٠', 'INVALID_NUMBER'], // Arabic-Indic digits: ASCII only
    ['10\u0000', 'INVALID_NUMBER'],
    ['1000001', 'OUT_OF_RANGE'],
    ['9'.repeat(4000), 'OUT_OF_RANGE'],
  ];
  for (const [input, code] of cases) assert.equal(errorCode(input), code, `input ${input.slice(0, 80)}`);
});

test('an invalid id is not echoed; a valid id is echoed with the error', () => {
  const bad = decode(`{"type":"fibonacci","n":10,"id":"${'x'.repeat(65)}"}`);
  assert.equal(bad.id, null);
  const good = decode('{"type":"fibonacci","n":"10","id":"keep"}');
  assert.deepEqual({ ...good }, { type: 'error', id: 'keep', code: 'INVALID_NUMBER', message: 'n must be an integer' });
  assert.equal(decode('{"type":"nope","id":7}').id, 7);
});

test(`nesting: ${MAX_JSON_DEPTH} levels are fine, ${MAX_JSON_DEPTH + 1} are INVALID_MESSAGE`, () => {
  // The envelope object is level 1.
  const inside = (depth: number) => `{"type":"fibonacci","n":10,"x":${nested(depth - 1)}}`;
  assert.deepEqual(decode(inside(MAX_JSON_DEPTH)), { type: 'fibonacci', id: null, n: 10 });
  assert.equal(errorCode(inside(MAX_JSON_DEPTH + 1)), 'INVALID_MESSAGE');
  assert.equal(errorCode(`{"type":"users","a":${'{"b":'.repeat(40)}1${'}'.repeat(40)}}`), 'INVALID_MESSAGE');
  assert.equal(errorCode(nested(33)), 'INVALID_MESSAGE');
  // Deep enough to overflow a recursive walk; the frame limit keeps real frames far smaller.
  assert.equal(errorCode(`{"type":"users","x":${nested(5000)}}`), 'INVALID_MESSAGE');
  // Unbalanced brackets deeper than any stack: still just a JSON error.
  assert.equal(errorCode('['.repeat(100_000)), 'INVALID_JSON');
});

test('__proto__ and constructor keys never reach a prototype', () => {
  const inputs = [
    '{"type":"fibonacci","n":10,"__proto__":{"x":1},"constructor":{}}',
    '{"__proto__":{"type":"fibonacci","n":10,"polluted":1}}',
    '{"type":"users","constructor":{"prototype":{"polluted":1}}}',
    '{"type":"fibonacci","n":10,"x":{"__proto__":{"polluted":1}}}',
  ];
  const results = inputs.map(decode);
  assert.deepEqual(results[0], { type: 'fibonacci', id: null, n: 10 });
  // A type that only sits on a would-be prototype is not a type.
  assert.equal(results[1]!.type, 'error');
  const probe = {} as Record<string, unknown>;
  assert.equal(probe.x, undefined);
  assert.equal(probe.polluted, undefined);
  assert.equal(Object.prototype.hasOwnProperty.call(Object.prototype, 'polluted'), false);
});

// --- properties ---

const RUNS = { numRuns: 2000 };

test('property: any string decodes to a documented shape without throwing', () => {
  fc.assert(
    fc.property(fc.oneof(fc.string({ unit: 'binary', maxLength: 300 }), fc.string({ maxLength: 300 }), fc.string({ unit: 'grapheme', maxLength: 100 })), (text) => {
      decode(text);
    }),
    RUNS,
  );
});

test('property: any JSON value, serialised, decodes to a documented shape', () => {
  fc.assert(
    fc.property(fc.jsonValue({ maxDepth: 6 }), (value) => {
      decode(JSON.stringify(value));
    }),
    RUNS,
  );
});

// Objects that look like requests: the right keys with values of every type.
const idValue = fc.oneof(
  fc.string({ maxLength: 80 }),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.constant(2 ** 53),
  fc.array(fc.integer(), { maxLength: 2 }),
  fc.dictionary(fc.string({ maxLength: 3 }), fc.integer(), { maxKeys: 2 }),
);
const nValue = fc.oneof(
  fc.integer({ min: -MAX - 10, max: MAX + 10 }),
  fc.integer(),
  fc.double(),
  fc.bigInt({ min: -(10n ** 30n), max: 10n ** 30n }).map((b) => Number(b)),
  fc.string({ maxLength: 10 }),
  fc.integer().map(String),
  fc.boolean(),
  fc.constant(null),
);
const requestLike = fc.record(
  {
    type: fc.oneof(fc.constantFrom('fibonacci', 'users', 'time', 'welcome', 'error', 'Fibonacci', ''), fc.string({ maxLength: 10 }), fc.integer()),
    n: nValue,
    id: idValue,
    __proto__: fc.dictionary(fc.string({ maxLength: 5 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 2 }),
    extra: fc.jsonValue({ maxDepth: 3 }),
  },
  { requiredKeys: [] },
);

test('property: request-like objects follow the rules exactly', () => {
  fc.assert(
    fc.property(requestLike, (message) => {
      const text = JSON.stringify(message);
      const r = decode(text);
      // The model: what docs/design.md §3 says the answer must be.
      const own = JSON.parse(text) as Record<string, unknown>;
      const id = own.id;
      const idOk =
        id === undefined || (typeof id === 'string' && id.length <= MAX_ID_LENGTH) || (typeof id === 'number' && Number.isSafeInteger(id));
      if (!idOk) {
        assert.deepEqual([r.type, r.id, r.type === 'error' && r.code], ['error', null, 'INVALID_MESSAGE']);
        return;
      }
      assert.equal(r.id, id ?? null, 'valid id echoed');
      if (own.type !== 'fibonacci' && own.type !== 'users') {
        assert.equal(r.type === 'error' && r.code, 'INVALID_MESSAGE');
      } else if (own.type === 'users') {
        assert.equal(r.type, 'users');
      } else if (!Object.hasOwn(own, 'n')) {
        assert.equal(r.type === 'error' && r.code, 'INVALID_MESSAGE');
      } else if (typeof own.n !== 'number' || !Number.isInteger(own.n)) {
        assert.equal(r.type === 'error' && r.code, 'INVALID_NUMBER');
      } else if (Math.abs(own.n) > MAX) {
        assert.equal(r.type === 'error' && r.code, 'OUT_OF_RANGE');
      } else {
        assert.deepEqual(r, { type: 'fibonacci', id: id ?? null, n: own.n === 0 ? 0 : own.n });
      }
    }),
    RUNS,
  );
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
});

test('property: truncated and mutated valid frames never throw', () => {
  const valid = fc
    .record({ n: fc.integer({ min: -MAX, max: MAX }), id: fc.oneof(fc.string({ maxLength: 64 }), fc.integer()) })
    .map(({ n, id }) => JSON.stringify({ type: 'fibonacci', n, id }));
  fc.assert(
    fc.property(valid, fc.nat(), fc.nat(), fc.integer({ min: 0, max: 0x10ffff }), (text, cut, at, code) => {
      decode(text.slice(0, cut % (text.length + 1)));
      const i = at % text.length;
      const ch = code >= 0xd800 && code <= 0xdfff ? String.fromCharCode(code) : String.fromCodePoint(code);
      decode(text.slice(0, i) + ch + text.slice(i + 1));
      decode(text.slice(0, i) + text.slice(i + 1));
    }),
    RUNS,
  );
});

test('property: nesting depth decides INVALID_MESSAGE exactly', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 80 }), fc.boolean(), (depth, objects) => {
      // depth = the envelope's own level plus the levels inside it.
      let inner = '0';
      for (let level = 2; level <= depth; level++) inner = objects ? `{"k":${inner}}` : `[${inner}]`;
      const text = depth === 1 ? '{"type":"fibonacci","n":3}' : `{"type":"fibonacci","n":3,"x":${inner}}`;
      const r = decode(text);
      if (depth > MAX_JSON_DEPTH) assert.equal(r.type === 'error' && r.code, 'INVALID_MESSAGE', `depth ${depth}`);
      else assert.deepEqual(r, { type: 'fibonacci', id: null, n: 3 }, `depth ${depth}`);
    }),
    { numRuns: 300 },
  );
});

test('property: a bare integer frame follows parseIntegerText', () => {
  const integerText = fc.tuple(
    fc.constantFrom('', ' ', '\t', '\n', '\r\n', ' \f\v'),
    fc.constantFrom('', '+', '-'),
    fc.string({ unit: fc.constantFrom(...'0123456789'), minLength: 0, maxLength: 12 }),
    fc.constantFrom('', ' ', '\n', 'x', '.5', '\u00a0'),
  );
  fc.assert(
    fc.property(integerText, ([pre, sign, digits, post]) => {
      const text = pre + sign + digits + post;
      const r = decode(text);
      const expected = parseIntegerText(text, MAX);
      if (expected.ok) assert.deepEqual(r, { type: 'fibonacci', id: null, n: expected.n });
      else assert.deepEqual({ ...r }, { type: 'error', id: null, code: expected.code, message: expected.message });
    }),
    RUNS,
  );
});

test('property: encoded errors and answers are well-formed JSON that round-trips', () => {
  const id = fc.oneof(fc.constant(null), fc.string({ unit: 'binary', maxLength: 64 }), fc.integer());
  fc.assert(
    fc.property(id, fc.constantFrom(...ERROR_CODES), fc.string({ unit: 'binary', maxLength: 200 }), (requestId, code, message) => {
      const parsed = JSON.parse(encodeError(requestId, code, message)) as Record<string, unknown>;
      assert.deepEqual(parsed, { type: 'error', id: requestId, code, message });
    }),
    RUNS,
  );
  fc.assert(
    fc.property(id, fc.integer({ min: -93, max: 93 }), (requestId, n) => {
      const value = n < 0 && n % 2 === 0 ? '-1' : '1';
      const parsed = JSON.parse(encodeFibonacci(requestId, { n, value, digits: 1 })) as Record<string, unknown>;
      assert.deepEqual(parsed, { type: 'fibonacci', id: requestId, n, value, digits: 1 });
    }),
    { numRuns: 500 },
  );
});
