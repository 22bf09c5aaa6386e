import assert from 'node:assert/strict';
import { test } from 'node:test';
import { jsonTimeFrame, textTimeFrame } from '../../../src/clock/frames.js';
import { startTicker } from '../../../src/clock/ticker.js';
import { FakeClock } from '../../helpers/fake-clock.js';

const SECOND = Date.UTC(2026, 10, 29, 15, 45, 27); // a second boundary

/** A ticker on a fake clock that records each tick's boundary and the wall time it ran at. */
function tickerAt(startEpochMs: number, work?: (clock: FakeClock) => void) {
  const clock = new FakeClock(startEpochMs);
  const ticks: { epochMs: number; at: number }[] = [];
  const ticker = startTicker((epochMs) => {
    ticks.push({ epochMs, at: clock.now() });
    work?.(clock);
  }, clock);
  return { clock, ticks, ticker };
}

test('one tick at every second boundary, on the boundary itself', async () => {
  const { clock, ticks, ticker } = tickerAt(SECOND + 250);
  await clock.advance(749);
  assert.deepEqual(ticks, [], 'nothing before the first boundary');
  await clock.advance(1 + 3_000);
  assert.deepEqual(ticks, [1, 2, 3, 4].map((s) => ({ epochMs: SECOND + s * 1000, at: SECOND + s * 1000 })));
  ticker.stop();
});

test('a tick that runs late does not make the next ones late', async () => {
  // Blocked across the first boundary, and each tick keeps the process busy for 300 ms besides:
  // a ticker that chained 1000 ms sleeps would drift by that much every second.
  const { clock, ticks, ticker } = tickerAt(SECOND, (c) => c.elapse(300));
  await clock.advance(900);
  clock.elapse(400);
  await clock.advance(3_000);
  assert.deepEqual(ticks, [
    { epochMs: SECOND + 1000, at: SECOND + 1300 },
    ...[2, 3, 4].map((s) => ({ epochMs: SECOND + s * 1000, at: SECOND + s * 1000 })),
  ]);
  ticker.stop();
});

test('a timer that fires before the boundary (the wall clock lags the timers) waits for it', async () => {
  const { clock, ticks, ticker } = tickerAt(SECOND + 500);
  clock.stepWall(-3); // the timer armed for 500 ms fires 3 ms before the boundary by the wall clock
  await clock.advance(500);
  assert.deepEqual(ticks, [], 'no tick before the boundary, and none stamped with the previous second');
  await clock.advance(3);
  assert.deepEqual(ticks, [{ epochMs: SECOND + 1000, at: SECOND + 1000 }]);
  ticker.stop();
});

test('boundaries missed while the event loop was blocked are skipped, not replayed', async () => {
  const { clock, ticks, ticker } = tickerAt(SECOND + 100);
  await clock.advance(900);
  clock.elapse(3_500); // blocked from +1.0 s to +4.5 s
  await clock.advance(1_000);
  assert.deepEqual(ticks, [
    { epochMs: SECOND + 1000, at: SECOND + 1000 },
    { epochMs: SECOND + 4000, at: SECOND + 4500 }, // late, once, for the second it is in
    { epochMs: SECOND + 5000, at: SECOND + 5000 }, // back on the boundary
  ]);
  ticker.stop();
});

test('a wall clock set forward by an hour gives the new second at once, not 3,600 ticks', async () => {
  const { clock, ticks, ticker } = tickerAt(SECOND);
  await clock.advance(1_000);
  clock.stepWall(3_600_000);
  await clock.advance(2_000);
  assert.deepEqual(
    ticks.map((t) => t.epochMs),
    [SECOND + 1000, SECOND + 3_602_000, SECOND + 3_603_000],
  );
  ticker.stop();
});

test('stop() ends the ticks and leaves no timer behind, also when called from a tick', async () => {
  const { clock, ticks, ticker } = tickerAt(SECOND + 10);
  await clock.advance(1_000);
  ticker.stop();
  assert.equal(clock.pending, 0);
  await clock.advance(3_000);
  assert.equal(ticks.length, 1);

  const inner = tickerAt(SECOND, () => inner.ticker.stop());
  await inner.clock.advance(5_000);
  assert.equal(inner.ticks.length, 1);
  assert.equal(inner.clock.pending, 0);
});

test('frames: JSON with the same instant twice, and the original text format in local time', () => {
  const epochMs = SECOND;
  assert.equal(jsonTimeFrame(epochMs).toString(), `{"type":"time","now":"2026-11-29T15:45:27.000Z","epochMs":${epochMs}}`);
  const d = new Date(epochMs);
  const pad = (n: number) => String(n).padStart(2, '0');
  assert.equal(
    textTimeFrame(epochMs).toString(),
    `Current time: ${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`,
  );
});
