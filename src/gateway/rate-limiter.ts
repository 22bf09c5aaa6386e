// Token bucket per connection, plus the abuse rule of docs/design.md §3: more than
// ABUSE_MAX_REJECTIONS RATE_LIMITED answers within ABUSE_WINDOW_MS closes the connection with
// 1008. Plain numbers, no timers.

import { ABUSE_MAX_REJECTIONS, ABUSE_WINDOW_MS } from '../protocol/limits.js';

export type RateDecision = 'allow' | 'limit' | 'abuse';

export class RateLimiter {
  private tokens: number;
  private refilledAt: number;
  private windowStart = 0;
  private rejections = 0;

  /** perSecond 0 disables the limiter. */
  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
    now: number,
  ) {
    this.tokens = burst;
    this.refilledAt = now;
  }

  take(now: number): RateDecision {
    if (this.perSecond === 0) return 'allow';
    const elapsed = now - this.refilledAt;
    if (elapsed > 0) {
      this.tokens = Math.min(this.burst, this.tokens + (elapsed * this.perSecond) / 1000);
      this.refilledAt = now;
    }
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return 'allow';
    }
    if (now - this.windowStart > ABUSE_WINDOW_MS) {
      this.windowStart = now;
      this.rejections = 0;
    }
    return ++this.rejections > ABUSE_MAX_REJECTIONS ? 'abuse' : 'limit';
  }
}
