// With a ping interval of seconds, pings are spread over one-second slices between ticks:
// connection i (in accept order) belongs to slot i % slices, and each round, half-way between
// two ticks, pings one slot. A silent peer is dropped by its slot's next round; peers that
// answer stay.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Opcode, rawOpen, type RawWebSocket } from '../helpers/raw-socket.js';
import { startPulse, type RunningPulse } from '../helpers/pulse.js';

const PING_INTERVAL_MS = 3_000; // three slices, one round a second
const SLICES = 3;
/**
 * Pings of one round are written in one loop turn and arrive together; rounds are at least half
 * a second apart (each is armed 500 ms after a tick that follows the previous one).
 */
const SAME_ROUND_MS = 250;

let server: RunningPulse;
before(async () => {
  server = await startPulse({ PING_INTERVAL_MS: String(PING_INTERVAL_MS) });
  await server.ready();
});
after(() => server?.stop());

interface Ping {
  peer: number;
  at: number;
}

/**
 * Records every ping frame (from now on) and close as they arrive, with the time; calls `onEvent`
 * after each. Its listeners come after RawWebSocket's own, so a chunk's frames are already parsed.
 */
function record(peers: RawWebSocket[], onEvent: () => void) {
  const pings: Ping[] = [];
  const closedAt = new Map<number, number>();
  const pingsSoFar = (peer: RawWebSocket) => peer.frames.filter((f) => f.opcode === Opcode.PING).length;
  const listeners = peers.map((peer, i) => {
    let seen = pingsSoFar(peer);
    const onData = () => {
      const count = pingsSoFar(peer);
      for (; seen < count; seen++) pings.push({ peer: i, at: Date.now() });
      onEvent();
    };
    const onClose = () => {
      closedAt.set(i, Date.now());
      onEvent();
    };
    peer.socket.on('data', onData);
    peer.socket.on('close', onClose);
    return () => {
      peer.socket.off('data', onData);
      peer.socket.off('close', onClose);
    };
  });
  return { pings, closedAt, stop: () => listeners.forEach((off) => off()) };
}

/** Pings grouped by round, in order. */
function rounds(pings: Ping[]): Ping[][] {
  const grouped: Ping[][] = [];
  for (const ping of pings) {
    const current = grouped.at(-1);
    if (current && ping.at - current[0]!.at <= SAME_ROUND_MS) current.push(ping);
    else grouped.push([ping]);
  }
  return grouped;
}

test('sliced pings: one slot per round, off the second boundary, every peer once per interval; a silent one is dropped', async () => {
  // One after another, so that the accept order is the index order.
  const peers: RawWebSocket[] = [];
  for (let i = 0; i < 6; i++) peers.push(await rawOpen(server.port, `/ws?name=peer${i}`));
  const silent = peers[0]!;
  for (const peer of peers.slice(1)) peer.answerPings = true;

  // Until the silent peer is dropped and every other one was pinged twice (so judged alive once).
  let done: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => (done = resolve));
  const recorder = record(peers, () => {
    const pingsOf = (i: number) => recorder.pings.filter((p) => p.peer === i).length;
    if (silent.ended && [1, 2, 3, 4, 5].every((i) => pingsOf(i) >= 2)) done();
  });
  const summary = () => JSON.stringify(rounds(recorder.pings).map((r) => ({ phase: r[0]!.at % 1000, peers: r.map((p) => p.peer) })));
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out; rounds seen: ${summary()}; silent peer ended: ${silent.ended}`)), 30_000);
  });
  try {
    await Promise.race([finished, timeout]);
  } finally {
    clearTimeout(timer);
    recorder.stop();
  }

  // Rounds while the peers were still connecting are not recorded: every round here saw all six.
  const seen = rounds(recorder.pings);
  const detail = summary();
  const dropped = recorder.closedAt.get(0)!;
  // The silent peer is dropped by a round of its own slot, in which it is not pinged.
  const dropRound = seen.findIndex((round) => Math.abs(round[0]!.at - dropped) <= SAME_ROUND_MS);
  assert.ok(dropRound >= 0, `dropped in a ping round: ${detail}; dropped at phase ${dropped % 1000}`);

  // Each round pings exactly the open peers of one slot; consecutive rounds take consecutive slots.
  let previousSlot: number | undefined;
  seen.forEach((round, index) => {
    const slot = round[0]!.peer % SLICES;
    const open = [0, 1, 2, 3, 4, 5].filter((i) => i % SLICES === slot && (i !== 0 || index < dropRound));
    assert.deepEqual(round.map((p) => p.peer).sort((a, b) => a - b), open, `round ${index} pings one slot, all of its open peers: ${detail}`);
    if (previousSlot !== undefined) assert.equal(slot, (previousSlot + 1) % SLICES, `slots in turn: ${detail}`);
    previousSlot = slot;
  });
  assert.ok(seen.length >= 4 && seen.every((round) => round.length < peers.length), `no round pings every peer: ${detail}`);
  assert.equal(seen[dropRound]![0]!.peer % SLICES, 0, `the drop is its slot's round: ${detail}`);
  // So every peer that answers is pinged once per interval: every third round.
  for (const peer of [1, 2, 3, 4, 5]) {
    const at = seen.flatMap((round, index) => (round.some((p) => p.peer === peer) ? [index] : []));
    assert.ok(at.length >= 2 && at.every((index, k) => k === 0 || index - at[k - 1]! === SLICES), `peer ${peer} pinged in rounds ${at.join(', ')}: ${detail}`);
  }

  // Rounds run half-way between ticks; a loaded machine may delay a few of them.
  const offBoundary = seen.filter((round) => round[0]!.at % 1000 >= 250 && round[0]!.at % 1000 <= 950).length;
  assert.ok(offBoundary >= seen.length / 2, `round phases (ms into the second): ${detail}`);

  // Dropped at its slot's next round after its ping: within about two intervals (one more round
  // of its slot if a round ran late, since a late round judges nobody).
  const silentPings = silent.frames.filter((f) => f.opcode === Opcode.PING).length;
  assert.ok(silentPings >= 1 && silentPings <= 2, `the silent peer was pinged ${silentPings} times before the drop: ${detail}`);
  for (const peer of peers.slice(1)) assert.equal(peer.ended, false, 'peers that answer stay');
  for (const peer of peers) peer.destroy();
});
