// Fibonacci answers on four paths, cheapest first:
//   table  |n| <= 93            precomputed frozen answers, no allocation
//   inline |n| <= inlineMaxN    BigInt on the calling thread, cheaper than a worker round trip
//   cache  seen before          LRU of unsigned decimal strings, bounded by bytes
//   worker anything larger      piscina pool computes F(|n|) and its string off the main thread
// Only the worker path returns a Promise, and concurrent requests for one |n| share one task.
import { availableParallelism } from 'node:os';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { fibonacci, isNegativeFibonacci } from './core.js';
import { StringLruCache } from './cache.js';
import { FIBONACCI_TABLE, TABLE_MAX_N } from './table.js';

export interface FibonacciAnswer {
  n: number;
  /** Exact decimal, with '-' for negative results. */
  value: string;
  /** Decimal digits, sign excluded. */
  digits: number;
}

export type FibonacciPath = 'table' | 'inline' | 'worker' | 'cache';

export interface FibonacciServiceOptions {
  /** Byte bound of the result cache (0 disables). */
  cacheBytes: number;
  /** Largest |n| computed on the calling thread; above it a worker is used. */
  inlineMaxN?: number;
  /** Pool size. */
  maxThreads?: number;
  /** Metrics hook: which path answered, how long it took (seconds, including queueing), and n. */
  observe?: (path: FibonacciPath, seconds: number, n: number) => void;
  /** Pool errors not tied to a request (a worker thread that failed to start or died); default: a process warning. */
  onError?: (error: Error) => void;
}

/**
 * From bench/fib-threshold.ts on the 2-core machines: inline F(n)+toString stays at or below
 * one worker round trip (~15-20 µs quiet, ~45-60 µs under load) up to n ≈ 5000-6000, where it
 * blocks the event loop for roughly 15-30 µs; beyond that it grows quickly (about 60 µs at
 * 10,000, 400 µs at 20,000), so larger n go to the pool. docs/design.md §8 agrees (under 16 µs to ≈ 5000).
 */
export const DEFAULT_INLINE_MAX_N = 5000;

export function defaultMaxThreads(): number {
  return Math.min(4, Math.max(1, availableParallelism() - 1));
}

// The worker sits next to this module with the same extension: worker.ts under tsx (worker
// threads inherit --import tsx through execArgv), worker.js once compiled to dist/.
const WORKER_FILE = fileURLToPath(new URL(`./worker${extname(fileURLToPath(import.meta.url))}`, import.meta.url));

function makeAnswer(n: number, unsigned: string): FibonacciAnswer {
  // The sign prefix is a cheap rope concatenation, not a copy of the digits.
  return { n, value: isNegativeFibonacci(n) ? '-' + unsigned : unsigned, digits: unsigned.length };
}

// Frozen answers for -93..93, indexed by n + TABLE_MAX_N: the commonest requests allocate nothing.
const TABLE_ANSWERS: readonly FibonacciAnswer[] = Object.freeze(
  Array.from({ length: 2 * TABLE_MAX_N + 1 }, (_, i) => {
    const n = i - TABLE_MAX_N;
    return Object.freeze(makeAnswer(n, FIBONACCI_TABLE[Math.abs(n)] as string));
  }),
);

/** Counters for /metrics and tests. */
export interface FibonacciServiceStats {
  /** Tasks sent to the pool since start (duplicates that joined one task count once). */
  workerTasks: number;
  /** |n| values whose worker task is still running. */
  inFlight: number;
  cacheEntries: number;
  cacheBytes: number;
}

export class FibonacciService {
  readonly #inlineMaxN: number;
  readonly #observe: FibonacciServiceOptions['observe'];
  readonly #cache: StringLruCache<number>;
  readonly #inFlight = new Map<number, Promise<string>>();
  readonly #pool: Piscina<number, string>;
  #closed = false;
  #workerTasks = 0;

  constructor(options: FibonacciServiceOptions) {
    this.#inlineMaxN = options.inlineMaxN ?? DEFAULT_INLINE_MAX_N;
    this.#observe = options.observe;
    this.#cache = new StringLruCache<number>(options.cacheBytes);
    const threads = Math.max(1, options.maxThreads ?? defaultMaxThreads());
    // Threads start now and stay warm (minThreads = maxThreads) so the first large request
    // does not pay thread start-up; idle threads are unref'd by piscina and never hold the
    // process open.
    this.#pool = new Piscina<number, string>({ filename: WORKER_FILE, minThreads: threads, maxThreads: threads });
    // Without a listener, an 'error' event from the pool would crash the whole server.
    const onError = options.onError ?? ((error: Error) => process.emitWarning(error));
    this.#pool.on('error', onError);
  }

  /** n must already be validated (|n| <= maxN). Synchronous except on the worker path. */
  compute(n: number): FibonacciAnswer | Promise<FibonacciAnswer> {
    const observe = this.#observe;
    const started = observe === undefined ? 0 : performance.now();
    const m = n < 0 ? -n : n;

    if (m <= TABLE_MAX_N) {
      const answer = TABLE_ANSWERS[n + TABLE_MAX_N] as FibonacciAnswer;
      observe?.('table', (performance.now() - started) / 1000, n);
      return answer;
    }
    if (m <= this.#inlineMaxN) {
      const answer = makeAnswer(n, fibonacci(m).toString());
      observe?.('inline', (performance.now() - started) / 1000, n);
      return answer;
    }
    const cached = this.#cache.get(m);
    if (cached !== undefined) {
      const answer = makeAnswer(n, cached);
      observe?.('cache', (performance.now() - started) / 1000, n);
      return answer;
    }

    let pending = this.#inFlight.get(m);
    if (pending === undefined) {
      if (this.#closed) return Promise.reject(new Error('FibonacciService is closed'));
      this.#workerTasks++;
      pending = this.#runWorker(m);
      this.#inFlight.set(m, pending);
    }
    return pending.then((unsigned) => {
      const answer = makeAnswer(n, unsigned);
      observe?.('worker', (performance.now() - started) / 1000, n);
      return answer;
    });
  }

  async #runWorker(m: number): Promise<string> {
    try {
      const unsigned = await this.#pool.run(m);
      this.#cache.set(m, unsigned);
      return unsigned;
    } finally {
      this.#inFlight.delete(m);
    }
  }

  get stats(): FibonacciServiceStats {
    return { workerTasks: this.#workerTasks, inFlight: this.#inFlight.size, cacheEntries: this.#cache.size, cacheBytes: this.#cache.bytes };
  }

  /** Destroys the pool; requests still waiting for a worker are rejected. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#pool.destroy();
    this.#cache.clear();
  }
}
