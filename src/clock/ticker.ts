// Second-aligned ticker. Each tick is scheduled from the wall clock, never by chaining 1000 ms
// sleeps, so it cannot drift; a timer that fires early waits for the boundary it was meant for.

import { systemClock, type Clock, type ClockTimer } from './clock.js';

export interface Ticker {
  stop(): void;
}

/** Calls `onTick(epochMs)` at every wall-clock second boundary; `epochMs` is a multiple of 1000. */
export function startTicker(onTick: (epochMs: number) => void, clock: Clock = systemClock): Ticker {
  let timer: ClockTimer | undefined;
  let stopped = false;
  let target = Math.floor(clock.now() / 1000) * 1000 + 1000;

  const arm = () => {
    if (stopped) return;
    timer = clock.setTimeout(fire, Math.max(0, target - clock.now()));
  };

  const fire = () => {
    const current = clock.now();
    if (current < target) {
      arm(); // woke up early: wait for the boundary itself
      return;
    }
    // Missed boundaries (the process was paused or the clock jumped) are skipped, not replayed.
    const boundary = Math.floor(current / 1000) * 1000;
    target = boundary + 1000;
    arm();
    onTick(boundary);
  };

  arm();
  return {
    stop() {
      stopped = true;
      if (timer) clock.clearTimeout(timer);
    },
  };
}
