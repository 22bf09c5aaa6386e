// Token bucket per connection and the abuse rule of docs/design.md §3 (more than 100 RATE_LIMITED
// answers within 10 s → 'abuse', which the gateway turns into close 1008). Time is a plain number.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { RateLimiter, type RateDecision } from '../../../src/gateway/rate-limiter.js';
import { ABUSE_MAX_REJECTIONS, ABUSE_WINDOW_MS } from '../../../src/protocol/limits.js';

function takeMany(limiter: RateLimiter, count: number, now: number): Record<RateDecision, number> {
  const seen: Record<RateDecision, number> = { allow: 0, limit: 0, abuse: 0 };
  for (let i = 0; i < count; i++) seen[limiter.take(now)]++;
  return seen;
}

test('a burst of 40 is allowed at once, the 41st is limited', () => {
  const limiter = new RateLimiter(20, 40, 1_000);
  assert.deepEqual(takeMany(limiter, 40, 1_000), { allow: 40, limit: 0, abuse: 0 });
  assert.equal(limiter.take(1_000), 'limit');
});

test('tokens refill at the configured rate, never above the burst', () => {
  const limiter = new RateLimiter(20, 40, 0);
  takeMany(limiter, 40, 0);
  assert.equal(limiter.take(49), 'limit'); // 0.98 of a token
  assert.equal(limiter.take(50), 'allow'); // one token after 50 ms at 20/s
  assert.equal(limiter.take(50), 'limit');
  // A long pause refills to the burst, not beyond.
  assert.deepEqual(takeMany(limiter, 41, 1_000_000), { allow: 40, limit: 1, abuse: 0 });
});

test('a steady client at the rate is never limited', () => {
  const limiter = new RateLimiter(20, 40, 0);
  for (let t = 0; t < 60_000; t += 50) assert.equal(limiter.take(t), 'allow', `at ${t} ms`);
});

test(`more than ${ABUSE_MAX_REJECTIONS} rejections within ${ABUSE_WINDOW_MS} ms is abuse`, () => {
  const limiter = new RateLimiter(20, 40, 0);
  takeMany(limiter, 40, 0);
  assert.deepEqual(takeMany(limiter, ABUSE_MAX_REJECTIONS, 10), { allow: 0, limit: ABUSE_MAX_REJECTIONS, abuse: 0 });
  assert.equal(limiter.take(10), 'abuse');
});

test('rejections spread over more than the window are not abuse', () => {
  const limiter = new RateLimiter(1, 1, 0);
  let now = 0;
  let limited = 0;
  // 90 rejections per 10 s window, for a minute: never abuse.
  for (let window = 0; window < 6; window++) {
    for (let i = 0; i < 90; i++) {
      const decision = limiter.take(now);
      assert.notEqual(decision, 'abuse', `window ${window}`);
      if (decision === 'limit') limited++;
    }
    now += ABUSE_WINDOW_MS + 1;
  }
  assert.ok(limited > 400);
});

test('0 per second disables the limiter', () => {
  const limiter = new RateLimiter(0, 0, 0);
  assert.deepEqual(takeMany(limiter, 10_000, 0), { allow: 10_000, limit: 0, abuse: 0 });
});

test('property: allowed frames never exceed burst + rate × elapsed', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 100 }),
      fc.integer({ min: 1, max: 200 }),
      fc.array(fc.integer({ min: 0, max: 200 }), { minLength: 1, maxLength: 400 }),
      (perSecond, burst, gaps) => {
        const limiter = new RateLimiter(perSecond, burst, 0);
        let now = 0;
        let allowed = 0;
        for (const gap of gaps) {
          now += gap;
          if (limiter.take(now) === 'allow') allowed++;
          assert.ok(allowed <= burst + (now * perSecond) / 1000 + 1e-9, `allowed ${allowed} by ${now} ms`);
        }
      },
    ),
    { numRuns: 500 },
  );
});
