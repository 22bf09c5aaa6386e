// Exact Fibonacci numbers as BigInt. Pure: no I/O, no state.

/** Largest |n| accepted: F(2^31) would exceed V8's BigInt size limit (2^30 bits) anyway. */
export const MAX_FIBONACCI_INDEX = 0x7fff_ffff;

/**
 * F(m) for 0 <= m <= MAX_FIBONACCI_INDEX by fast doubling with two squarings per bit
 * (the form GMP's mpz_fib_ui uses). From the pair (F(k-1), F(k)):
 *   F(2k-1) = F(k)^2 + F(k-1)^2
 *   F(2k+1) = 4F(k)^2 - F(k-1)^2 + 2(-1)^k
 *   F(2k)   = F(2k+1) - F(2k-1)
 * Squarings are the only big multiplications; the textbook F(k)(2F(k+1) - F(k)) form
 * needs a third general product and measures 2-2.6x slower (docs/design.md §8).
 * The last step, the largest, needs only F(n), so it uses one product with L(k) = 2F(k-1) + F(k):
 *   F(2k) = F(k) L(k),   F(2k+1) = F(k+1) L(k) - (-1)^k
 */
function fibonacciUnsigned(m: number): bigint {
  if (m < 2) return BigInt(m);
  // Start at k = 1 (the top bit) with (F(0), F(1)); walk the remaining bits downwards.
  let previous = 0n; // F(k-1)
  let current = 1n; // F(k)
  let k = 1;
  for (let bit = 30 - Math.clz32(m); bit >= 1; bit--) {
    const currentSquared = current * current;
    const previousSquared = previous * previous;
    const lower = currentSquared + previousSquared; // F(2k-1)
    // 2(-1)^k: k's parity is its lowest bit.
    const upper = 4n * currentSquared - previousSquared + ((k & 1) === 0 ? 2n : -2n); // F(2k+1)
    const middle = upper - lower; // F(2k)
    if (((m >>> bit) & 1) === 0) {
      previous = lower;
      current = middle;
      k = 2 * k;
    } else {
      previous = middle;
      current = upper;
      k = 2 * k + 1;
    }
  }
  const lucas = 2n * previous + current; // L(k)
  if ((m & 1) === 0) return current * lucas;
  return (current + previous) * lucas - ((k & 1) === 0 ? 1n : -1n);
}

/** F(n) for any integer |n| <= MAX_FIBONACCI_INDEX; negative n by F(-n) = (-1)^(n+1) F(n). */
export function fibonacci(n: number): bigint {
  if (!Number.isInteger(n) || Math.abs(n) > MAX_FIBONACCI_INDEX) {
    throw new RangeError(`fibonacci: n must be an integer with |n| <= ${MAX_FIBONACCI_INDEX}, got ${n}`);
  }
  const m = Math.abs(n);
  const value = fibonacciUnsigned(m);
  return isNegativeFibonacci(n) ? -value : value;
}

/** F(-n) = (-1)^(n+1) F(n): F(n) is negative exactly when n is negative and even. */
export function isNegativeFibonacci(n: number): boolean {
  return n < 0 && n % 2 === 0;
}
