// Protection, part 4: a slow client (docs/design.md §3 "A slow client is closed, not merely left unread",
// §6 SLOW_CLIENT_*). A raw TCP client completes the handshake, stops reading and keeps asking
// for F(200000) (41,798 digits). The server skips its ticks above SLOW_CLIENT_SKIP_BYTES, closes
// it with 1013 above SLOW_CLIENT_CLOSE_BYTES, never buffers much more than that for it, and a
// well-behaved client meanwhile receives every tick.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startPulse, type RunningPulse } from '../helpers/pulse.js';
import { Opcode, Probe, encodeClientFrame, metricValue, rawOpen, recordedClose, sleep } from '../helpers/raw-socket.js';

const SKIP_BYTES = 64 * 1024;
const CLOSE_BYTES = 1024 * 1024;
const N = 200_000;
let server: RunningPulse;
/** The server side of every open connection. */
const serverSockets = () => [...server.pulse.gateway.connections.json, ...server.pulse.gateway.connections.text].map((conn) => conn.socket);

before(async () => {
  server = await startPulse({
    SLOW_CLIENT_SKIP_BYTES: String(SKIP_BYTES),
    SLOW_CLIENT_CLOSE_BYTES: String(CLOSE_BYTES),
    RATE_LIMIT_PER_SECOND: '0',
    FIB_MAX_IN_FLIGHT: '1000',
    PING_INTERVAL_MS: '60000',
  });
  // Ticks are checked one by one below; PGlite's boot on this thread stalls the event loop.
  await server.ready();
}, { timeout: 180_000 });

after(async () => {
  await server?.stop();
});

test('a client that stops reading has ticks skipped, is closed with 1013, and others keep every tick', { timeout: 90_000 }, async (t) => {
  // Warm the cache so each request is answered at once, from memory.
  const warm = (await (await fetch(`${server.baseUrl}/api/fibonacci/${N}`)).json()) as { digits: number };
  const answerBytes = warm.digits + 80;

  const good = await Probe.open(`${server.wsUrl}?name=good`);
  const slow = await rawOpen(server.port, '/ws?name=slow');
  await slow.until(() => slow.texts.length > 0, 'welcome');
  slow.pause();

  const skippedBefore = await metricValue(server.baseUrl, 'pulse_ticks_skipped_total');
  const slowClosesBefore = await metricValue(server.baseUrl, 'pulse_slow_client_closes_total');
  const closes1013Before = await metricValue(server.baseUrl, 'pulse_closes_total', { code: '1013' });
  const goodTicksFrom = good.texts.length;
  const started = Date.now();

  // The server side of every socket: the most any of them ever held in user space.
  let maxBuffered = 0;
  const slowBuffered = () => Math.max(0, ...serverSockets().map((ws) => ws.bufferedAmount));
  const sampler = setInterval(() => (maxBuffered = Math.max(maxBuffered, slowBuffered())), 10);
  const burst = (count: number) => {
    const frame = encodeClientFrame(Opcode.TEXT, String(N));
    slow.write(Buffer.concat(Array.from({ length: count }, () => frame)));
  };
  let requested = 0;

  try {
    // 1. Fill the kernel buffers until the server starts queueing, but stay under the close bound.
    while (slowBuffered() <= SKIP_BYTES) {
      assert.ok(Date.now() - started < 40_000, `the server never queued (sent ${requested} requests)`);
      burst(10);
      requested += 10;
      await sleep(100);
    }
    assert.ok(slowBuffered() < CLOSE_BYTES, `one burst should not cross the close bound: ${slowBuffered()}`);
    assert.equal(server.pulse.gateway.connectionCount, 2);

    // 2. Left there, the slow client is skipped at the next ticks, not closed.
    const deadline = Date.now() + 5_000;
    while ((await metricValue(server.baseUrl, 'pulse_ticks_skipped_total')) === skippedBefore) {
      assert.ok(Date.now() < deadline, 'no tick was skipped');
      await sleep(100);
    }
    assert.equal(server.pulse.gateway.connectionCount, 2, 'skipped, still open');

    // 3. More answers push it past SLOW_CLIENT_CLOSE_BYTES: closed (1 s grace for the close frame, then dropped).
    const closeDeadline = Date.now() + 20_000;
    while (server.pulse.gateway.connectionCount > 1) {
      assert.ok(Date.now() < closeDeadline, `still open with ${slowBuffered()} bytes queued`);
      if (slowBuffered() <= CLOSE_BYTES) {
        burst(5);
        requested += 5;
      }
      await sleep(100);
    }
  } finally {
    clearInterval(sampler);
  }
  const elapsed = Date.now() - started;
  t.diagnostic(`slow client: ${requested} requests of F(${N}), at most ${maxBuffered} bytes queued, closed after ${elapsed} ms`);

  assert.ok(maxBuffered <= CLOSE_BYTES + 2 * answerBytes, `at most ${maxBuffered} bytes were queued for the slow client (bound ${CLOSE_BYTES})`);
  assert.ok((await metricValue(server.baseUrl, 'pulse_ticks_skipped_total')) > skippedBefore);
  assert.equal(await metricValue(server.baseUrl, 'pulse_slow_client_closes_total'), slowClosesBefore + 1);
  assert.equal(await metricValue(server.baseUrl, 'pulse_closes_total', { code: '1013' }), closes1013Before + 1);
  assert.equal(server.pulse.presence.localSessions, 1);
  const users = (await (await fetch(`${server.baseUrl}/api/users`)).json()) as { users: { id: string }[] };
  assert.deepEqual(users.users.map((u) => u.id), ['good']);
  assert.deepEqual(await recordedClose(server.baseUrl, 'slow'), { closeCode: 1013, closeReason: 'client too slow to keep up' });

  // The well-behaved client got every second meanwhile, and is still served.
  await sleep(1_100);
  const ticks = good.texts
    .slice(goodTicksFrom)
    .map((t) => JSON.parse(t) as { type: string; epochMs?: number })
    .filter((f) => f.type === 'time')
    .map((f) => f.epochMs!);
  assert.ok(ticks.length >= Math.floor(elapsed / 1000), `${ticks.length} ticks in ${elapsed} ms`);
  for (let i = 1; i < ticks.length; i++) assert.equal(ticks[i]! - ticks[i - 1]!, 1000, `tick ${i}: ${ticks[i - 1]} then ${ticks[i]}`);
  assert.equal((await good.request('{"type":"fibonacci","n":10}')).value, '55');
  assert.equal(good.closed, undefined);
  slow.destroy();
  await good.close();
});

test('a client that floods pings and never reads its pongs is dropped before they pile up', async () => {
  const raw = await rawOpen(server.port, '/ws?name=pinger');
  await raw.until(() => raw.texts.length > 0, 'welcome');
  raw.pause();
  let maxBuffered = 0;
  const sampler = setInterval(() => {
    for (const ws of serverSockets()) maxBuffered = Math.max(maxBuffered, ws.bufferedAmount);
  }, 5);
  const ping = encodeClientFrame(Opcode.PING, Buffer.alloc(125, 0x70));
  const batch = Buffer.concat(Array.from({ length: 500 }, () => ping));
  const started = Date.now();
  let sent = 0;
  try {
    while (server.pulse.gateway.connectionCount > 0) {
      assert.ok(Date.now() - started < 10_000, `still open after ${sent} bytes of pings`);
      if (!raw.socket.destroyed) raw.socket.write(batch);
      sent += batch.length;
      await sleep(5);
    }
  } finally {
    clearInterval(sampler);
  }
  assert.ok(maxBuffered < CLOSE_BYTES, `${maxBuffered} bytes of pongs queued`);
  assert.equal(server.pulse.presence.localSessions, 0);
  raw.destroy();
});
