// Second-aligned ticker. Each tick is scheduled from the wall clock, never by chaining 1000 ms
// sleeps, so it cannot drift; a timer that fires early waits for the boundary it was meant for.

export interface Ticker {
  stop(): void;
}

/** Calls `onTick(epochMs)` at every wall-clock second boundary; `epochMs` is a multiple of 1000. */
export function startTicker(onTick: (epochMs: number) => void, now: () => number = Date.now): Ticker {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  let target = Math.floor(now() / 1000) * 1000 + 1000;

  const arm = () => {
    if (stopped) return;
    timer = setTimeout(fire, Math.max(0, target - now()));
  };

  const fire = () => {
    const current = now();
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
      if (timer) clearTimeout(timer);
    },
  };
}
