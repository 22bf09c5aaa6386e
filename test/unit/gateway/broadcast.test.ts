// Broadcast without sockets, on mocked timers: one frame per protocol per tick for everyone who
// keeps up, slow readers skipped then closed, presence once for those who want it, and pings
// spread over slices, half-way between ticks.

import assert from 'node:assert/strict';
import { afterEach, beforeEach, mock, test } from 'node:test';
import { Broadcaster, type BroadcastLimits, type PresenceFeed } from '../../../src/gateway/broadcast.js';
import type { Connections } from '../../../src/gateway/connection.js';
import type { PresenceChanges } from '../../../src/presence/online-users.js';
import { fakeConnection, type FakeSocket } from '../../helpers/fake-socket.js';
import { gatewayMetrics } from '../../helpers/gateway-metrics.js';

const LIMITS: BroadcastLimits = { slowClientSkipBytes: 1_000, slowClientCloseBytes: 10_000, pingIntervalMs: 3_000 };
const BOUNDARY = Date.UTC(2026, 10, 29, 15, 45, 27);

// setImmediate stays real: Node 20's mocked one hangs when a timer callback schedules it. A ping
// round judges in setImmediate, so the tests let one real check phase pass after each round.
beforeEach(() => mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'], now: BOUNDARY }));
afterEach(() => mock.timers.reset());

/** Moves the mocked clock on by `ms`, then lets the ping round's setImmediate run. */
async function advance(ms: number): Promise<void> {
  mock.timers.tick(ms);
  await new Promise((resolve) => setImmediate(resolve));
}

function setup(limits = LIMITS, changes: PresenceChanges[] = []) {
  const connections: Connections = { json: new Set(), text: new Set() };
  const counts = { sent: 0, skipped: 0, online: -1 };
  const metrics = gatewayMetrics({
    ticksWritten: (sent, skipped) => {
      counts.sent += sent;
      counts.skipped += skipped;
    },
    usersOnline: (count) => void (counts.online = count),
  });
  const feed: PresenceFeed = { takeChanges: () => changes.shift(), onlineUsers: { count: 7 } };
  const broadcaster = new Broadcaster(connections, limits, feed, metrics);
  const add = (options: Parameters<typeof fakeConnection>[0] = {}) => {
    const made = fakeConnection(options);
    broadcaster.track(made.conn);
    connections[made.conn.protocol].add(made.conn);
    return made;
  };
  return { broadcaster, add, counts };
}

test('a tick: the same bytes to every socket of a protocol; slow readers skipped, then closed with 1013', () => {
  const { broadcaster, add, counts } = setup();
  const json = [add(), add(), add()];
  const text = [add({ protocol: 'text' }), add({ protocol: 'text' })];
  const slow = add();
  slow.socket.bufferedAmount = LIMITS.slowClientSkipBytes + 1;
  const hopeless = add();
  hopeless.socket.bufferedAmount = LIMITS.slowClientCloseBytes + 1;

  broadcaster.tick(BOUNDARY);

  const jsonFrames = json.map(({ socket }) => socket.frames[0]!);
  assert.deepEqual(JSON.parse(jsonFrames[0]!.payload.toString()), { type: 'time', now: '2026-11-29T15:45:27.000Z', epochMs: BOUNDARY });
  assert.ok(jsonFrames.every((f) => f.raw === jsonFrames[0]!.raw), 'one Buffer shared by every JSON socket');
  const textFrames = text.map(({ socket }) => socket.frames[0]!);
  assert.match(textFrames[0]!.payload.toString(), /^Current time: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
  assert.ok(textFrames.every((f) => f.raw === textFrames[0]!.raw), 'one Buffer shared by every text socket');
  assert.equal(slow.socket.writes.length, 0);
  assert.equal(slow.socket.closedWith, undefined, 'skipped, not closed');
  assert.equal(hopeless.socket.writes.length, 0);
  assert.equal(hopeless.socket.closedWith?.code, 1013);
  assert.deepEqual({ sent: counts.sent, skipped: counts.skipped }, { sent: 5, skipped: 2 });
  assert.equal(counts.online, 7);
});

test('presence: one message per tick with changes, only to JSON clients that want it', () => {
  const changes: PresenceChanges = { online: 2, joined: [{ id: 'a', name: 'A' }], left: [], joinedCount: 1, leftCount: 0 };
  const { broadcaster, add } = setup(LIMITS, [changes]);
  const wants = [add(), add()];
  const optedOut = add({ wantsPresence: false });
  const text = add({ protocol: 'text' });
  broadcaster.tick(BOUNDARY);
  broadcaster.tick(BOUNDARY + 1_000); // no change since: no presence message
  const presenceOf = (socket: FakeSocket) => socket.messages.filter((m) => m.type === 'presence');
  for (const { socket } of wants) assert.deepEqual(presenceOf(socket), [{ type: 'presence', online: 2, joined: [{ id: 'a', name: 'A' }], left: [] }]);
  assert.deepEqual(presenceOf(optedOut.socket), []);
  assert.ok(text.socket.texts.every((t) => t.startsWith('Current time: ')));
});

test('pings: one slice per round, half a second after the tick; each peer once per interval', async () => {
  const { broadcaster, add } = setup();
  const peers = Array.from({ length: 6 }, () => add());
  const rounds: number[][] = [];
  for (let second = 0; second < 6; second++) {
    const before = peers.map(({ socket }) => socket.pings);
    broadcaster.tick(BOUNDARY + second * 1_000);
    await advance(499);
    assert.deepEqual(peers.map(({ socket }) => socket.pings), before, 'no ping before half-way');
    await advance(1);
    rounds.push(peers.flatMap(({ socket }, i) => (socket.pings > before[i]! ? [i] : [])));
    for (const { conn } of peers) conn.alive = true; // every peer answers its pings
    await advance(500);
  }
  // 3 slices (3,000 ms / 1 s): slot i % 3, one slot a round, in turn.
  assert.deepEqual(rounds, [[0, 3], [1, 4], [2, 5], [0, 3], [1, 4], [2, 5]]);
  assert.ok(peers.every(({ socket }) => socket.terminated === false));
});

test('a peer silent through a whole interval is dropped at its next round, with 1006', async () => {
  const { broadcaster, add } = setup();
  const [answering, silent] = [add(), add(), add(), add()].filter((_, i) => i % 3 === 0); // both in slot 0
  for (let second = 0; second < 4; second++) {
    broadcaster.tick(BOUNDARY + second * 1_000);
    await advance(500);
    answering!.conn.alive = true;
    await advance(500);
  }
  assert.equal(silent!.socket.pings, 1, 'pinged once, then judged at its next round');
  assert.equal(silent!.socket.terminated, true);
  assert.equal(silent!.conn.closeCode, 1006);
  assert.equal(answering!.socket.terminated, false);
  assert.equal(answering!.socket.pings, 2);
});

test('a round that runs late judges nobody: the pongs may be waiting behind it', async () => {
  const { broadcaster, add } = setup();
  const silent = add(); // slot 0 of 3
  for (let second = 0; second < 3; second++) {
    broadcaster.tick(BOUNDARY + second * 1_000);
    await advance(1_000);
  }
  assert.equal(silent.socket.pings, 1);
  // The event loop stalls for seconds: the next tick, and slot 0's next round, come late.
  await advance(5_000);
  broadcaster.tick(BOUNDARY + 8_000);
  await advance(500);
  assert.equal(silent.socket.pings, 2, 'pinged again instead of judged');
  assert.equal(silent.socket.terminated, false);
  // Its next round on time judges it.
  for (let second = 9; second < 12; second++) {
    broadcaster.tick(BOUNDARY + second * 1_000);
    await advance(1_000);
  }
  assert.equal(silent.socket.terminated, true);
});

test('after stop() (draining) no ping goes out and nobody is judged', async () => {
  const { broadcaster, add } = setup();
  const peer = add();
  broadcaster.tick(BOUNDARY);
  broadcaster.stop();
  await advance(10_000);
  assert.equal(peer.socket.pings, 0);
  assert.equal(peer.socket.terminated, false);
});
