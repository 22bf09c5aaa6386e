import assert from 'node:assert/strict';
import { test } from 'node:test';
import { jsonTimeFrame, textTimeFrame } from '../../../src/clock/frames.js';
import { startTicker } from '../../../src/clock/ticker.js';

test('ticks land on second boundaries, one per second, with epochMs a multiple of 1000', async () => {
  const ticks: { epochMs: number; at: number }[] = [];
  const ticker = startTicker((epochMs) => ticks.push({ epochMs, at: Date.now() }));
  await new Promise((resolve) => setTimeout(resolve, 2_300));
  ticker.stop();
  assert.ok(ticks.length >= 2, `got ${ticks.length} ticks`);
  for (const tick of ticks) {
    assert.equal(tick.epochMs % 1000, 0);
    assert.ok(tick.at >= tick.epochMs, 'never before its boundary');
  }
  assert.equal(ticks[1]!.epochMs - ticks[0]!.epochMs, 1000);
});

test('a timer that fires early waits for the boundary instead of ticking early', async () => {
  let fake = 10_999; // 1 ms before a boundary; the first timer is armed for 1 ms
  const seen: number[] = [];
  const ticker = startTicker((epochMs) => seen.push(epochMs), () => fake);
  await new Promise((resolve) => setTimeout(resolve, 20)); // fires with the fake clock still early
  assert.deepEqual(seen, []);
  fake = 11_003;
  await new Promise((resolve) => setTimeout(resolve, 20));
  ticker.stop();
  assert.deepEqual(seen, [11_000]);
});

test('frames: JSON with the same instant twice, and the original text format in local time', () => {
  const epochMs = Date.UTC(2026, 10, 29, 15, 45, 27);
  assert.equal(jsonTimeFrame(epochMs).toString(), `{"type":"time","now":"2026-11-29T15:45:27.000Z","epochMs":${epochMs}}`);
  const d = new Date(epochMs);
  const pad = (n: number) => String(n).padStart(2, '0');
  assert.equal(
    textTimeFrame(epochMs).toString(),
    `Current time: ${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`,
  );
});
