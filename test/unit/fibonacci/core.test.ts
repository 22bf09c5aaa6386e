import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { MAX_FIBONACCI_INDEX, fibonacci, isNegativeFibonacci } from '../../../src/fibonacci/core.js';
import { FIBONACCI_TABLE, TABLE_MAX_N } from '../../../src/fibonacci/table.js';

/** The definition, step by step: obviously right, quadratic, fine for small n. */
function naive(n: number): bigint {
  let a = 0n;
  let b = 1n;
  for (let i = 0; i < n; i++) [a, b] = [b, a + b];
  return a;
}

/**
 * An independent fast method for the large cases: Lucas-number doubling,
 * F(2k) = F(k)L(k), L(2k) = L(k)^2 - 2(-1)^k, F(2k+1) = (F(2k) + L(2k))/2, L(2k+1) = (5F(2k) + L(2k))/2.
 */
function lucasDoubling(n: number): bigint {
  let f = 0n; // F(k)
  let l = 2n; // L(k)
  let k = 0;
  for (let bit = 31 - Math.clz32(n); bit >= 0 && n > 0; bit--) {
    const f2 = f * l;
    const l2 = l * l - ((k & 1) === 0 ? 2n : -2n);
    k *= 2;
    if (((n >>> bit) & 1) === 1) {
      f = (f2 + l2) / 2n;
      l = (5n * f2 + l2) / 2n;
      k += 1;
    } else {
      f = f2;
      l = l2;
    }
  }
  return f;
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

test('F(0..100) equals the step-by-step definition', () => {
  for (let n = 0; n <= 100; n++) assert.equal(fibonacci(n), naive(n), `F(${n})`);
});

test('well-known values', () => {
  assert.equal(fibonacci(0), 0n);
  assert.equal(fibonacci(1), 1n);
  assert.equal(fibonacci(2), 1n);
  assert.equal(fibonacci(10), 55n);
  assert.equal(fibonacci(78), 8944394323791464n); // the last one a double holds exactly
  assert.equal(fibonacci(93), 12200160415121876738n); // the last one that fits in 64 unsigned bits
  assert.equal(fibonacci(94), 19740274219868223167n);
});

test('negative n follows F(-n) = (-1)^(n+1) F(n)', () => {
  assert.equal(fibonacci(-1), 1n);
  assert.equal(fibonacci(-2), -1n);
  assert.equal(fibonacci(-3), 2n);
  assert.equal(fibonacci(-10), -55n);
  assert.equal(fibonacci(-0), 0n);
  for (let n = 1; n <= 200; n++) {
    const expected = n % 2 === 0 ? -naive(n) : naive(n);
    assert.equal(fibonacci(-n), expected, `F(-${n})`);
    assert.equal(isNegativeFibonacci(-n), expected < 0n);
    assert.equal(isNegativeFibonacci(n), false);
  }
});

test('the table holds exact decimal strings of F(0..93)', () => {
  assert.equal(TABLE_MAX_N, 93);
  assert.equal(FIBONACCI_TABLE.length, 94);
  for (let n = 0; n <= TABLE_MAX_N; n++) assert.equal(FIBONACCI_TABLE[n], naive(n).toString(), `table[${n}]`);
  assert.ok(Object.isFrozen(FIBONACCI_TABLE));
});

test('fast doubling agrees with Lucas doubling at every n up to 3000 and across bit patterns', () => {
  for (let n = 0; n <= 3000; n++) assert.equal(fibonacci(n), lucasDoubling(n), `F(${n})`);
  for (const n of [4095, 4096, 4097, 65535, 65536, 65537, 99_999, 131_071]) assert.equal(fibonacci(n), lucasDoubling(n), `F(${n})`);
});

test('identity F(2k) = F(k)(2F(k+1) - F(k)) and F(2k+1) = F(k)^2 + F(k+1)^2', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 20_000 }), (k) => {
      const fk = fibonacci(k);
      const fk1 = fibonacci(k + 1);
      assert.equal(fibonacci(2 * k), fk * (2n * fk1 - fk));
      assert.equal(fibonacci(2 * k + 1), fk * fk + fk1 * fk1);
    }),
    { numRuns: 200 },
  );
});

test('identity F(m+n) = F(m)F(n+1) + F(m-1)F(n), negative indices included', () => {
  fc.assert(
    fc.property(fc.integer({ min: -5_000, max: 20_000 }), fc.integer({ min: -5_000, max: 20_000 }), (m, n) => {
      assert.equal(fibonacci(m + n), fibonacci(m) * fibonacci(n + 1) + fibonacci(m - 1) * fibonacci(n));
    }),
    { numRuns: 300 },
  );
});

test("Cassini's identity F(n-1)F(n+1) - F(n)^2 = (-1)^n", () => {
  fc.assert(
    fc.property(fc.integer({ min: -20_000, max: 20_000 }), (n) => {
      const f = fibonacci(n);
      assert.equal(fibonacci(n - 1) * fibonacci(n + 1) - f * f, n % 2 === 0 ? 1n : -1n);
    }),
    { numRuns: 200 },
  );
});

test('F(1,000,000) has 208,988 digits and the same SHA-256 by two methods and a pinned value', () => {
  const fast = fibonacci(1_000_000).toString();
  const lucas = lucasDoubling(1_000_000).toString();
  assert.equal(fast.length, 208_988);
  assert.ok(fast.startsWith('19532821287077577316'));
  assert.ok(fast.endsWith('68996526838242546875'));
  assert.equal(sha256(fast), sha256(lucas));
  // Pinned from CPython's integers (a third implementation): sha256(str(F(10**6))).
  assert.equal(sha256(fast), 'aef6e8c19df607aa07940f2abde8460d1b34c18df1a6f46b5fc04dfe9be51706');
  assert.equal(fibonacci(-1_000_000).toString(), '-' + fast);
});

test('F(100,000) matches the pinned SHA-256 as well', () => {
  const text = fibonacci(100_000).toString();
  assert.equal(text.length, 20_899);
  assert.equal(sha256(text), '9fe22f691a91170da9006226d479ad986b2f92021b7045ecfb0a5091b641b802');
});

test('rejects indices that are not integers or beyond the BigInt limit', () => {
  for (const bad of [1.5, Number.NaN, Number.POSITIVE_INFINITY, MAX_FIBONACCI_INDEX + 1, -(MAX_FIBONACCI_INDEX + 1)]) {
    assert.throws(() => fibonacci(bad), RangeError, String(bad));
  }
});
