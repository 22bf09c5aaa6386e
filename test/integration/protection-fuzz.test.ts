// Protection, part 5: hostile input at volume against a live server (RATE_LIMIT_PER_SECOND=0).
// A few thousand generated frames (random bytes as text, truncated JSON, huge numbers, wrong
// types, control characters, very long ids, deep nesting, valid requests mixed in) over several
// connections of both protocols. The server never crashes; every text frame gets exactly one
// well-formed reply, in order, or a documented close (1009 oversize, 1007 bad UTF-8); nothing
// is ever INTERNAL; a bystander's ticks keep arriving. Seeded: set FUZZ_SEED to replay a run.
// The server also runs with ALLOWED_ORIGINS=* (any Origin is let through) and behind a pretend
// proxy (TRUST_PROXY, MAX_CONNECTIONS_PER_IP=20: the cap applies to the forwarded address).

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import { ERROR_CODES } from '../../src/protocol/codes.js';
import { startPulse, type RunningPulse } from '../helpers/pulse.js';
import { Probe, rawOpen, rawUpgrade, sleep, type ProbeFrame, type RawWebSocket } from '../helpers/raw-socket.js';

// Every generated input comes from fc.sample with SEED, SEED + 1 or SEED + 2; nothing else here
// is random but WebSocket masks and handshake keys, which do not change what the server reads.
const SEED = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : Date.now() % 1_000_000;
if (!Number.isSafeInteger(SEED)) throw new Error(`FUZZ_SEED must be an integer, got ${JSON.stringify(process.env.FUZZ_SEED)}`);
// Printed at load, so that every run shows it, whichever of its tests fail or are selected.
console.log(`FUZZ_SEED=${SEED}`);
const MAX_MESSAGE_BYTES = 4096;
const JSON_CONNECTIONS = 5;
const FRAMES_PER_CONNECTION = 1000;
const TEXT_FRAMES = 1000;
const CHUNK = 100;
let server: RunningPulse;

before(async () => {
  server = await startPulse({
    RATE_LIMIT_PER_SECOND: '0',
    PING_INTERVAL_MS: '60000',
    ALLOWED_ORIGINS: '*',
    TRUST_PROXY: '1',
    MAX_CONNECTIONS_PER_IP: '20',
  });
  // The bystander's ticks are checked; PGlite's boot on this thread stalls the event loop.
  await server.ready();
}, { timeout: 180_000 });

after(async () => {
  await server?.stop();
});

// Exact F(n) for the small n the valid requests use.
const FIB: bigint[] = [0n, 1n];
for (let i = 2; i <= 3000; i++) FIB.push(FIB[i - 1]! + FIB[i - 2]!);
const fib = (n: number): string => {
  const value = FIB[Math.abs(n)]!;
  return (n < 0 && n % 2 === 0 ? -value : value).toString();
};

interface Fuzz {
  text: string;
  /** For a valid fibonacci request: the id and n its answer must carry. */
  expect?: { id: string | number | null; n: number };
  users?: string | number | null;
}

const validId = fc.oneof(fc.string({ maxLength: 64 }), fc.integer({ min: -1e9, max: 1e9 }), fc.string({ unit: 'binary', maxLength: 30 }));
const smallN = fc.integer({ min: -3000, max: 3000 });
const valid = fc.tuple(smallN, validId).map(([n, id]): Fuzz => ({ text: JSON.stringify({ type: 'fibonacci', n, id }), expect: { id, n } }));
const validBig = fc.tuple(fc.integer({ min: 5_001, max: 60_000 }), validId).map(([n, id]): Fuzz => ({ text: JSON.stringify({ id, n, type: 'fibonacci' }), expect: { id, n } }));
const bare = fc
  .tuple(smallN, fc.constantFrom('', ' ', '\n', '\t', '\r\n'), fc.boolean())
  .map(([n, ws, zeros]): Fuzz => ({ text: `${ws}${n < 0 ? '-' : ''}${zeros ? '00' : ''}${Math.abs(n)}${ws}`, expect: { id: null, n } }));
const users = validId.map((id): Fuzz => ({ text: JSON.stringify({ type: 'users', id }), users: id }));
const randomBytes = fc.uint8Array({ maxLength: 1200 }).map((b): Fuzz => ({ text: Buffer.from(b).toString('utf8') }));
const randomText = fc.oneof(fc.string({ unit: 'binary', maxLength: 1000 }), fc.string({ maxLength: 200 })).map((text): Fuzz => ({ text }));
const truncated = valid.chain((v) => fc.nat({ max: v.text.length - 1 }).map((k): Fuzz => ({ text: v.text.slice(0, k) })));
const huge = fc
  .constantFrom(
    '{"type":"fibonacci","n":1e308}',
    '{"type":"fibonacci","n":-1e308}',
    '{"type":"fibonacci","n":1e400}',
    '{"type":"fibonacci","n":9007199254740993}',
    '{"type":"fibonacci","n":1000001}',
    '{"type":"fibonacci","n":-1000001}',
    '{"type":"fibonacci","n":1e-7}',
    '{"type":"fibonacci","n":0.1e1,"id":1e21}',
    '99999999999999999999999999',
    `-${'9'.repeat(4000)}`,
    `${'0'.repeat(4000)}7`,
  )
  .map((text): Fuzz => ({ text }));
const wrongTypes = fc
  .record(
    {
      type: fc.oneof(fc.constantFrom('fibonacci', 'users', 'time', 'welcome', 'error', '__proto__'), fc.jsonValue({ maxDepth: 1 })),
      n: fc.jsonValue({ maxDepth: 2 }),
      id: fc.jsonValue({ maxDepth: 2 }),
      __proto__: fc.jsonValue({ maxDepth: 2 }),
      constructor: fc.jsonValue({ maxDepth: 2 }),
    },
    { requiredKeys: [] },
  )
  .map((o): Fuzz => ({ text: JSON.stringify(o) }));
const control = fc
  .tuple(fc.string({ unit: fc.integer({ min: 0, max: 31 }).map((c) => String.fromCharCode(c)), maxLength: 40 }), fc.boolean())
  .map(([s, inJson]): Fuzz => ({ text: inJson ? `{"type":"fibonacci","n":10,"id":"${s}"}` : s }));
const longId = fc.integer({ min: 65, max: 3_900 }).map((length): Fuzz => ({ text: JSON.stringify({ type: 'fibonacci', n: 5, id: 'i'.repeat(length) }) }));
const deep = fc
  .tuple(fc.integer({ min: 28, max: 600 }), fc.boolean())
  .map(([depth, arrays]): Fuzz => ({
    text: `{"type":"fibonacci","n":3,"x":${arrays ? '['.repeat(depth) + ']'.repeat(depth) : '{"a":'.repeat(depth) + '1' + '}'.repeat(depth)}}`,
  }));

const frame: fc.Arbitrary<Fuzz> = fc
  .oneof(
    { arbitrary: valid, weight: 20 },
    { arbitrary: validBig, weight: 1 },
    { arbitrary: bare, weight: 6 },
    { arbitrary: users, weight: 3 },
    { arbitrary: randomBytes, weight: 10 },
    { arbitrary: randomText, weight: 10 },
    { arbitrary: truncated, weight: 10 },
    { arbitrary: huge, weight: 4 },
    { arbitrary: wrongTypes, weight: 12 },
    { arbitrary: control, weight: 6 },
    { arbitrary: longId, weight: 4 },
    { arbitrary: deep, weight: 4 },
  )
  .filter((f) => Buffer.byteLength(f.text) <= MAX_MESSAGE_BYTES);

function checkReply(reply: ProbeFrame, sent: Fuzz, where: string): void {
  const label = `${where}: ${JSON.stringify(sent.text.slice(0, 120))} → ${JSON.stringify(reply).slice(0, 200)}`;
  assert.ok(reply.type === 'fibonacci' || reply.type === 'users' || reply.type === 'error', label);
  if (reply.type === 'error') {
    assert.ok((ERROR_CODES as readonly string[]).includes(reply.code as string), label);
    assert.notEqual(reply.code, 'INTERNAL', label);
    assert.equal(typeof reply.message, 'string', label);
    assert.ok(reply.id === null || typeof reply.id === 'string' || typeof reply.id === 'number', label);
  }
  if (reply.type === 'fibonacci') {
    assert.match(reply.value as string, /^-?\d+$/, label);
    assert.equal((reply.value as string).replace('-', '').length, reply.digits, label);
    if (Math.abs(reply.n as number) <= 3000) assert.equal(reply.value, fib(reply.n as number), label);
  }
  if (sent.expect) {
    // A valid request is answered (or, for a big n behind four others, BUSY) with its own id.
    assert.equal(reply.id, sent.expect.id, label);
    if (reply.type === 'error') assert.equal(reply.code, 'BUSY', label);
    else assert.deepEqual([reply.type, reply.n], ['fibonacci', sent.expect.n], label);
  } else if (sent.users !== undefined) {
    assert.deepEqual([reply.type, reply.id], ['users', sent.users], label);
  }
}

test('a few thousand hostile frames: one well-formed reply each, no crash, ticks keep coming', { timeout: 120_000 }, async (t) => {
  const bystander = await Probe.open(`${server.wsUrl}?name=bystander`);
  const started = Date.now();
  const frames = fc.sample(frame, { numRuns: JSON_CONNECTIONS * FRAMES_PER_CONNECTION, seed: SEED });

  const runJson = async (index: number) => {
    const probe = await Probe.open(`${server.wsUrl}?name=fuzz${index}`);
    const mine = frames.slice(index * FRAMES_PER_CONNECTION, (index + 1) * FRAMES_PER_CONNECTION);
    for (let from = 0; from < mine.length; from += CHUNK) {
      const chunk = mine.slice(from, from + CHUNK);
      for (const f of chunk) probe.send(f.text);
      const replies = await probe.nextReplies(chunk.length, from, 30_000);
      chunk.forEach((sent, i) => checkReply(replies[i]!, sent, `connection ${index}, frame ${from + i}`));
    }
    await sleep(300);
    assert.equal(probe.replies.length, mine.length, `connection ${index}: exactly one reply per frame`);
    assert.equal(probe.closed, undefined, `connection ${index} still open`);
    await probe.close();
    return mine.length;
  };

  const runText = async () => {
    const probe = await Probe.open(`ws://127.0.0.1:${server.port}/ws/fuzz-text`);
    const texts = fc.sample(frame, { numRuns: TEXT_FRAMES, seed: SEED + 1 }).map((f) => f.text);
    const lines = () => probe.texts.filter((l) => !l.startsWith('Current time: ') && !l.startsWith('Client #'));
    for (let from = 0; from < texts.length; from += CHUNK) {
      const chunk = texts.slice(from, from + CHUNK);
      for (const text of chunk) probe.send(text);
      await probe.until(() => lines().length >= from + chunk.length, `text replies to ${from + chunk.length}`, 30_000);
    }
    await sleep(300);
    const got = lines();
    assert.equal(got.length, texts.length, 'text protocol: exactly one line per frame');
    got.forEach((line, i) => {
      const label = `text frame ${i}: ${JSON.stringify(texts[i]!.slice(0, 80))} → ${line.slice(0, 100)}`;
      const answer = /^Fibonacci\((-?\d+)\) = (-?\d+)$/.exec(line);
      if (answer) {
        if (Math.abs(Number(answer[1])) <= 3000) assert.equal(answer[2], fib(Number(answer[1])), label);
      } else {
        assert.ok(
          ['Error: Only numbers are accepted.', 'Error: n must be between -1000000 and 1000000.', 'Error: Too many requests in flight.'].includes(line),
          label,
        );
      }
    });
    await probe.close();
    return texts.length;
  };

  const counts = await Promise.all([...Array.from({ length: JSON_CONNECTIONS }, (_, i) => runJson(i)), runText()]);
  const elapsed = Date.now() - started;
  t.diagnostic(`${counts.reduce((a, b) => a + b, 0)} frames answered in ${elapsed} ms`);

  // The bystander was served all along.
  const ticks = bystander.frames.filter((f) => f.type === 'time').map((f) => f.epochMs as number);
  assert.ok(ticks.length >= Math.floor(elapsed / 1000) - 1, `${ticks.length} ticks in ${elapsed} ms`);
  for (let i = 1; i < ticks.length; i++) assert.ok(ticks[i]! > ticks[i - 1]!, 'ticks in order');
  await bystander.until(() => bystander.frames.filter((f) => f.type === 'time').length > ticks.length, 'another tick', 3_000);
  assert.equal(bystander.closed, undefined);
  assert.equal((await bystander.request('{"type":"fibonacci","n":90,"id":"end"}')).value, fib(90));
  assert.equal((await fetch(`${server.baseUrl}/healthz`)).status, 200);
  await bystander.close();
});

test('raw bytes as text frames: one reply, or 1009 when oversize, or 1007 when not UTF-8', { timeout: 60_000 }, async (t) => {
  const payloads = fc.sample(
    fc.oneof(
      fc.uint8Array({ minLength: 1, maxLength: 300 }),
      fc.integer({ min: MAX_MESSAGE_BYTES + 1, max: MAX_MESSAGE_BYTES + 3000 }).map((n) => new Uint8Array(Buffer.from('7'.padStart(n, ' ')))),
      fc.integer({ min: 1, max: 3000 }).map((n) => new Uint8Array(Buffer.from(`{"type":"fibonacci","n":${n % 90},"id":"${'é'.repeat(Math.min(60, n))}"}`))),
      fc.string({ unit: 'binary', minLength: 1, maxLength: 200 }).map((s) => new Uint8Array(Buffer.from(s))),
    ),
    { numRuns: 60, seed: SEED + 2 },
  );
  const outcome = { replied: 0, 1009: 0, 1007: 0 };
  for (const bytes of payloads) {
    const payload = Buffer.from(bytes);
    let utf8 = true;
    try {
      new TextDecoder('utf-8', { fatal: true }).decode(payload);
    } catch {
      utf8 = false;
    }
    const probe = await Probe.open(`${server.wsUrl}?name=bytes`);
    probe.send(payload);
    const label = `${payload.length} bytes ${payload.subarray(0, 40).toString('hex')}`;
    if (payload.length > MAX_MESSAGE_BYTES) {
      assert.equal((await probe.waitClosed()).code, 1009, label);
      outcome[1009]++;
    } else if (!utf8) {
      assert.equal((await probe.waitClosed()).code, 1007, label);
      outcome[1007]++;
    } else {
      const [reply] = await probe.nextReplies(1, 0);
      checkReply(reply!, { text: payload.toString('utf8') }, label);
      assert.equal(probe.closed, undefined, label);
      outcome.replied++;
      await probe.close();
    }
    assert.equal(probe.replies.length, payload.length > MAX_MESSAGE_BYTES || !utf8 ? 0 : 1, label);
  }
  t.diagnostic(JSON.stringify(outcome));
  assert.ok(outcome.replied > 0 && outcome[1009] > 0 && outcome[1007] > 0, JSON.stringify(outcome));
  const deadline = Date.now() + 10_000;
  while (server.pulse.gateway.connectionCount !== 0) {
    assert.ok(Date.now() < deadline, 'every throwaway connection closed');
    await sleep(50);
  }
});

test('ALLOWED_ORIGINS=* lets any Origin through', async () => {
  for (const origin of ['http://evil.example', 'null', 'https://a.b.c:1234', `http://localhost:${server.port}`]) {
    const result = await rawUpgrade(server.port, '/ws?name=anyorigin', { Origin: origin });
    assert.equal(result.status, 101, origin);
    result.ws!.destroy();
  }
  const probe = await Probe.open(`${server.wsUrl}?name=anyorigin`, { headers: { Origin: 'https://elsewhere.example' } });
  assert.equal((await probe.request('10')).value, '55');
  await probe.close();
});

test('with TRUST_PROXY the per-address cap counts the X-Forwarded-For client', async () => {
  const open: RawWebSocket[] = [];
  try {
    for (let i = 0; i < 20; i++) open.push(await rawOpen(server.port, `/ws?name=proxied${i}`, { 'X-Forwarded-For': '198.51.100.7, 10.0.0.2' }));
    const over = await rawUpgrade(server.port, '/ws?name=proxied20', { 'X-Forwarded-For': '198.51.100.7, 10.0.0.2' });
    over.ws?.destroy();
    assert.equal(over.status, 429);
    // Another client behind the same proxy (same socket address) has its own allowance.
    open.push(await rawOpen(server.port, '/ws?name=other', { 'X-Forwarded-For': '198.51.100.8' }));
    open.push(await rawOpen(server.port, '/ws?name=direct'));
  } finally {
    for (const ws of open) ws.destroy();
  }
  const deadline = Date.now() + 10_000;
  while (server.pulse.gateway.connectionCount !== 0) {
    assert.ok(Date.now() < deadline, 'all closed');
    await sleep(50);
  }
});
