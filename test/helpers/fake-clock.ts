// A Clock (src/clock/clock.ts) that moves only when the test says so. Timers fire in due order,
// each at its own due time, and the promise callbacks they start run before the next one fires,
// so code that awaits a fake database between timers behaves as it would on real time.

import type { Clock, ClockTimer } from '../../src/clock/clock.js';

interface FakeTimer {
  due: number;
  order: number;
  callback: () => void;
}

/** Lets every promise callback already queued (and those they queue) run. Takes no clock time. */
export const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export class FakeClock implements Clock {
  private time = 0;
  private wallOffset: number;
  private created = 0;
  private readonly timers = new Set<FakeTimer>();

  /** `startEpochMs`: what now() reads at first. */
  constructor(startEpochMs = Date.UTC(2026, 0, 1)) {
    this.wallOffset = startEpochMs;
  }

  now(): number {
    return this.time + this.wallOffset;
  }

  monotonic(): number {
    return this.time;
  }

  setTimeout(callback: () => void, delayMs: number): ClockTimer {
    // Node's rule: anything below 1 ms (or not a number) waits 1 ms.
    const delay = delayMs >= 1 ? delayMs : 1;
    const timer: FakeTimer = { due: this.time + delay, order: this.created++, callback };
    this.timers.add(timer);
    return timer;
  }

  clearTimeout(timer: ClockTimer): void {
    this.timers.delete(timer as FakeTimer);
  }

  /** Timers armed and not yet fired or cleared. */
  get pending(): number {
    return this.timers.size;
  }

  /**
   * Moves time forward by `ms`, firing every timer that falls due on the way (also those armed by
   * the callbacks), each at its due time; one overdue after elapse() fires at once, late.
   */
  async advance(ms: number): Promise<void> {
    const end = this.time + ms;
    await settle();
    for (;;) {
      const next = this.next();
      if (!next || next.due > end) break;
      this.timers.delete(next);
      this.time = Math.max(this.time, next.due);
      next.callback();
      await settle();
    }
    this.time = end;
    await settle();
  }

  /** Moves time forward by `ms` without firing anything: the event loop was blocked meanwhile. */
  elapse(ms: number): void {
    this.time += ms;
  }

  /** Sets the wall clock forward (or back, with a negative `ms`); monotonic time and timers are unaffected. */
  stepWall(ms: number): void {
    this.wallOffset += ms;
  }

  private next(): FakeTimer | undefined {
    let first: FakeTimer | undefined;
    for (const timer of this.timers) {
      if (!first || timer.due < first.due || (timer.due === first.due && timer.order < first.order)) first = timer;
    }
    return first;
  }
}
