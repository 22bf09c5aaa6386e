// Plain BigInt Fibonacci by fast doubling, used by the reference server and to check answers.
// Independent of src/fibonacci on purpose: the bench must not trust the code it measures.

/**
 * F(m) for m >= 0 by fast doubling with two squarings per bit (the fair, fast form, so the
 * reference is not handicapped). From (F(k-1), F(k)):
 *   F(2k-1) = F(k)^2 + F(k-1)^2,  F(2k+1) = 4F(k)^2 - F(k-1)^2 + 2(-1)^k,  F(2k) = F(2k+1) - F(2k-1).
 */
function fibUnsigned(m: number): bigint {
  if (m < 2) return BigInt(m);
  let prev = 0n; // F(k-1)
  let cur = 1n; // F(k)
  let k = 1;
  for (let bit = 30 - Math.clz32(m); bit >= 0; bit--) {
    const cur2 = cur * cur;
    const prev2 = prev * prev;
    const lo = cur2 + prev2; // F(2k-1)
    const hi = 4n * cur2 - prev2 + (k % 2 === 0 ? 2n : -2n); // F(2k+1)
    const mid = hi - lo; // F(2k)
    if (((m >>> bit) & 1) === 0) {
      prev = lo;
      cur = mid;
      k *= 2;
    } else {
      prev = mid;
      cur = hi;
      k = 2 * k + 1;
    }
  }
  return cur;
}

/** F(n) for any safe integer n; negative n by F(-n) = (-1)^(n+1) F(n). */
export function fib(n: number): bigint {
  const m = Math.abs(n);
  const value = fibUnsigned(m);
  return n < 0 && m % 2 === 0 ? -value : value;
}

/** The answer fields of docs/design.md §3 for n: exact decimal value and its digit count (sign excluded). */
export function fibAnswer(n: number): { value: string; digits: number } {
  const value = fib(n).toString();
  return { value, digits: value.startsWith('-') ? value.length - 1 : value.length };
}

/** Decimal strings of F(0)..F(max), for checking small-n answers without recomputing. */
export function fibTable(max: number): string[] {
  const out: string[] = [];
  let a = 0n;
  let b = 1n;
  for (let i = 0; i <= max; i++) {
    out.push(a.toString());
    [a, b] = [b, a + b];
  }
  return out;
}
