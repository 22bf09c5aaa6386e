// Reconnect delays: capped exponential bounds with full jitter, and the short jitter after a drain.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_BACKOFF, backoffDelay, drainDelay } from '../../../src/client/backoff.js';

const policy = { baseMs: 500, capMs: 15_000, drainJitterMs: 250 };

test('the bound doubles per failed attempt from the base and stops at the cap', () => {
  const almostOne = () => 0.999_999;
  const bounds = Array.from({ length: 8 }, (_, attempt) => backoffDelay(policy, attempt, almostOne) + 1);
  assert.deepEqual(bounds, [500, 1000, 2000, 4000, 8000, 15_000, 15_000, 15_000]);
  assert.equal(backoffDelay(policy, 1_000, almostOne) + 1, 15_000, 'no overflow on a long outage');
});

test('full jitter: any delay from 0 up to the bound, uniformly', () => {
  assert.equal(backoffDelay(policy, 3, () => 0), 0);
  const samples = Array.from({ length: 4_000 }, () => backoffDelay(policy, 3));
  assert.ok(samples.every((d) => Number.isInteger(d) && d >= 0 && d < 4000));
  const quarters = [0, 0, 0, 0];
  for (const d of samples) quarters[Math.floor(d / 1000)]!++;
  for (const count of quarters) assert.ok(count > 800 && count < 1200, `quarters ${quarters.join(', ')}`);
});

test('after a drain: at once, within the small jitter, whatever the attempt count', () => {
  const samples = Array.from({ length: 1_000 }, () => drainDelay(DEFAULT_BACKOFF));
  assert.ok(samples.every((d) => d >= 0 && d < DEFAULT_BACKOFF.drainJitterMs));
  assert.ok(Math.max(...samples) > DEFAULT_BACKOFF.drainJitterMs / 2, 'spread, not all at once');
});
