// With a ping interval of seconds, pings are spread over one-second slices between ticks.
// A silent peer is still dropped within about two intervals; peers that answer stay.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Opcode, rawOpen } from '../helpers/raw-socket.js';
import { startPulse, type RunningPulse } from '../helpers/pulse.js';

const PING_INTERVAL_MS = 3_000; // three slices, one round a second

let server: RunningPulse;
before(async () => {
  server = await startPulse({ PING_INTERVAL_MS: String(PING_INTERVAL_MS) });
  await server.ready();
});
after(() => server?.stop());

test('sliced pings: every peer is pinged once per interval, off the second boundary; a silent one is dropped', async () => {
  const peers = await Promise.all(Array.from({ length: 6 }, (_, i) => rawOpen(server.port, `/ws?name=peer${i}`)));
  for (const peer of peers.slice(1)) peer.answerPings = true;
  const silent = peers[0]!;
  const pingTimes = new Map<number, number[]>();
  const started = Date.now();
  peers.forEach((peer, i) => {
    const seen = () => peer.frames.filter((f) => f.opcode === Opcode.PING).length;
    let count = 0;
    const timer = setInterval(() => {
      const now = seen();
      if (now > count) (pingTimes.get(i) ?? pingTimes.set(i, []).get(i)!).push(Date.now() % 1000);
      count = now;
    }, 20);
    timer.unref();
  });

  await silent.until(() => silent.ended, 'the silent peer to be dropped', 4 * PING_INTERVAL_MS + 3_000);
  const droppedAfter = Date.now() - started;
  assert.ok(droppedAfter <= 2 * PING_INTERVAL_MS + 2_000, `dropped after ${droppedAfter} ms`);
  assert.ok(silent.frames.some((f) => f.opcode === Opcode.PING), 'it was pinged before being dropped');

  await new Promise((resolve) => setTimeout(resolve, PING_INTERVAL_MS + 500));
  for (const peer of peers.slice(1)) assert.equal(peer.ended, false, 'peers that answer stay');
  for (const [i, peer] of peers.entries()) {
    if (i === 0) continue;
    const pings = peer.frames.filter((f) => f.opcode === Opcode.PING).length;
    assert.ok(pings >= 1 && pings <= 3, `peer ${i} pinged ${pings} times in about ${(Date.now() - started) / 1000} s`);
  }
  const phases = [...pingTimes.values()].flat();
  assert.ok(phases.length > 0);
  // Rounds run half a second after each tick; a loaded machine may delay a few of them.
  const offBoundary = phases.filter((phase) => phase >= 250 && phase <= 950).length;
  assert.ok(offBoundary >= phases.length / 2, `ping arrival phases (ms into the second): ${phases.join(', ')}`);
});
