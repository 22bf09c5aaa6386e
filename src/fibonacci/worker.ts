// Piscina task: the decimal string of F(m) for m >= 0. Both the BigInt and its toString run
// here, off the main thread: toString alone costs ~30-50 ms at m = 1,000,000 (docs/design.md §8).
// The string is copied back to the caller; the sign of negative n is applied there.
import { fibonacci } from './core.js';

export default function fibonacciDecimal(m: number): string {
  return fibonacci(m).toString();
}
