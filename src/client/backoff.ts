// When to reconnect. Pure: the random source is a parameter, so tests can pin it.

export interface BackoffPolicy {
  /** First bound; each failed attempt doubles it. */
  baseMs: number;
  /** The bound never grows past this. */
  capMs: number;
  /** After a 1001 (the server is draining for a deploy), reconnect at once within this jitter. */
  drainJitterMs: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { baseMs: 500, capMs: 15_000, drainJitterMs: 250 };

/**
 * Capped exponential backoff with full jitter: a delay drawn uniformly from
 * [0, min(cap, base · 2^attempt)). Full jitter spreads a crowd of clients that lost the same
 * server over the whole window, instead of bringing them back in waves.
 */
export function backoffDelay(policy: BackoffPolicy, attempt: number, random: () => number = Math.random): number {
  const bound = Math.min(policy.capMs, policy.baseMs * 2 ** Math.min(30, Math.max(0, attempt)));
  return Math.floor(random() * bound);
}

/** After a drain (1001) the next instance is ready now: a small jitter only, so that a rolling deploy costs well under a second. */
export function drainDelay(policy: BackoffPolicy, random: () => number = Math.random): number {
  return Math.floor(random() * policy.drainJitterMs);
}
