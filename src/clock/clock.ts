// The time sources that timing code reads, behind one small interface, so that its tests can move
// time by hand (test/helpers/fake-clock.ts) instead of waiting for it to pass.

/** A pending timer, as returned by Clock.setTimeout; only that clock can cancel it. */
export type ClockTimer = object;

export interface Clock {
  /** Wall-clock time in epoch ms, like Date.now(): jumps when the system clock is set. */
  now(): number;
  /** Monotonic ms from an arbitrary origin, like performance.now(): for durations only. */
  monotonic(): number;
  setTimeout(callback: () => void, delayMs: number): ClockTimer;
  clearTimeout(timer: ClockTimer): void;
}

/** The process's own clock and timers, each behind one thin wrapper. */
export const systemClock: Clock = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
  setTimeout: (callback, delayMs) => setTimeout(callback, delayMs),
  clearTimeout: (timer) => clearTimeout(timer as NodeJS.Timeout),
};
