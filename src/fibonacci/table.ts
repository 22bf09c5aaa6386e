// F(0..93) as exact decimal strings. F(93) is the largest Fibonacci number that fits in
// 64 unsigned bits; a double holds F(n) exactly only up to n = 78, so the table is built
// with BigInt once at load (94 additions) rather than typed in by hand.

export const TABLE_MAX_N = 93;

function build(): readonly string[] {
  const table: string[] = [];
  let a = 0n;
  let b = 1n;
  for (let i = 0; i <= TABLE_MAX_N; i++) {
    table.push(a.toString());
    [a, b] = [b, a + b];
  }
  return Object.freeze(table);
}

/** FIBONACCI_TABLE[n] is the decimal string of F(n) for 0 <= n <= TABLE_MAX_N. */
export const FIBONACCI_TABLE: readonly string[] = build();
