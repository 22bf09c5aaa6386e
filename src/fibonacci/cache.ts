// Least-recently-used map of decimal strings, bounded by their total length. Fibonacci
// strings are ASCII, so length is a fair measure of bytes (V8 stores them one byte per char).
// A Map keeps insertion order: re-inserting on a hit moves the key to the young end, and
// eviction takes keys from the old end.

export class StringLruCache<K> {
  readonly #maxBytes: number;
  readonly #entries = new Map<K, string>();
  #bytes = 0;

  constructor(maxBytes: number) {
    this.#maxBytes = Math.max(0, maxBytes);
  }

  get bytes(): number {
    return this.#bytes;
  }

  get size(): number {
    return this.#entries.size;
  }

  get(key: K): string | undefined {
    const value = this.#entries.get(key);
    if (value !== undefined) {
      this.#entries.delete(key);
      this.#entries.set(key, value);
    }
    return value;
  }

  has(key: K): boolean {
    return this.#entries.has(key);
  }

  /** Stores value unless it alone exceeds the bound; evicts the least recently used entries to fit. */
  set(key: K, value: string): void {
    const previous = this.#entries.get(key);
    if (previous !== undefined) {
      this.#entries.delete(key);
      this.#bytes -= previous.length;
    }
    if (value.length > this.#maxBytes) return;
    for (const [oldKey, oldValue] of this.#entries) {
      if (this.#bytes + value.length <= this.#maxBytes) break;
      this.#entries.delete(oldKey);
      this.#bytes -= oldValue.length;
    }
    this.#entries.set(key, value);
    this.#bytes += value.length;
  }

  clear(): void {
    this.#entries.clear();
    this.#bytes = 0;
  }
}
