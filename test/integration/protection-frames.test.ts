// Protection, part 3: frame limits on a real server with the default limits (docs/design.md §3, §6):
// MAX_MESSAGE_BYTES (1009), binary (1003), invalid UTF-8 (1007), token bucket and abuse (1008),
// FIB_MAX_IN_FLIGHT (BUSY), and hostile JSON. No error reply ever closes the connection.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startPulse, type RunningPulse } from '../helpers/pulse.js';
import { Opcode, Probe, encodeClientFrame, metricValue, rawOpen, sleep, type ProbeFrame } from '../helpers/raw-socket.js';

const MAX_MESSAGE_BYTES = 4096;
let server: RunningPulse;

before(async () => {
  server = await startPulse({ PING_INTERVAL_MS: '60000' });
});

after(async () => {
  await server?.stop();
});

const open = (name: string) => Probe.open(`${server.wsUrl}?name=${name}`);

/** A fibonacci request padded with `pad` characters to exactly `bytes` UTF-8 bytes. */
function paddedRequest(bytes: number, pad: string, id: string): string {
  const head = `{"type":"fibonacci","n":10,"id":"${id}","pad":"`;
  const tail = '"}';
  const room = bytes - Buffer.byteLength(head + tail);
  const padBytes = Buffer.byteLength(pad);
  let padding = pad.repeat(Math.floor(room / padBytes));
  padding += 'x'.repeat(room - Buffer.byteLength(padding));
  const text = head + padding + tail;
  assert.equal(Buffer.byteLength(text), bytes);
  return text;
}

async function stillAnswers(probe: Probe, n = 12): Promise<void> {
  const reply = await probe.request(JSON.stringify({ type: 'fibonacci', n, id: 'after' }));
  assert.deepEqual(reply, { type: 'fibonacci', id: 'after', n, value: n === 12 ? '144' : reply.value, digits: reply.digits });
  assert.equal(probe.closed, undefined);
}

describe('frame size, type and encoding', () => {
  test(`a frame of exactly ${MAX_MESSAGE_BYTES} bytes is answered; one byte more closes with 1009`, async () => {
    const probe = await open('size');
    for (const pad of ['x', 'é', '李', '😀']) {
      const text = paddedRequest(MAX_MESSAGE_BYTES, pad, `exact-${pad}`);
      assert.deepEqual(await probe.request(text), { type: 'fibonacci', id: `exact-${pad}`, n: 10, value: '55', digits: 2 });
    }
    const closes1009 = await metricValue(server.baseUrl, 'pulse_closes_total', { code: '1009' });
    // Fewer characters than the limit, but one byte over it.
    const over = paddedRequest(MAX_MESSAGE_BYTES + 1, 'é', 'over');
    assert.ok(over.length < MAX_MESSAGE_BYTES);
    const answered = probe.replies.length;
    probe.send(over);
    const closed = await probe.waitClosed();
    assert.equal(closed.code, 1009);
    assert.equal(probe.replies.length, answered, 'no reply to the oversize frame');
    await waitFor(async () => (await metricValue(server.baseUrl, 'pulse_closes_total', { code: '1009' })) === closes1009 + 1, 'the server records 1009');
  });

  test('a binary frame closes with 1003', async () => {
    const probe = await open('binary');
    const closes1003 = await metricValue(server.baseUrl, 'pulse_closes_total', { code: '1003' });
    probe.send(Buffer.from('{"type":"fibonacci","n":10}'), { binary: true });
    assert.equal((await probe.waitClosed()).code, 1003);
    await waitFor(async () => (await metricValue(server.baseUrl, 'pulse_closes_total', { code: '1003' })) === closes1003 + 1, 'the server records 1003');
  });

  test('a text frame that is not UTF-8 closes with 1007 (ws client and raw socket)', async () => {
    const probe = await open('utf8');
    await stillAnswers(probe);
    const closes1007 = await metricValue(server.baseUrl, 'pulse_closes_total', { code: '1007' });
    // ws sends a Buffer as a text frame unchecked when told binary: false.
    probe.send(Buffer.from([0x31, 0x30, 0xff]));
    assert.equal((await probe.waitClosed()).code, 1007);

    const raw = await rawOpen(server.port, '/ws?name=utf8raw');
    await raw.until(() => raw.texts.length > 0, 'welcome');
    // An overlong encoding of '/' and a lone surrogate half, each invalid in UTF-8.
    raw.send(Opcode.TEXT, Buffer.from([0x7b, 0xc0, 0xaf, 0x7d]));
    await raw.until(() => raw.closeCode !== undefined, 'a close frame');
    assert.equal(raw.closeCode, 1007);
    raw.destroy();

    const raw2 = await rawOpen(server.port, '/ws?name=utf8raw2');
    await raw2.until(() => raw2.texts.length > 0, 'welcome');
    raw2.send(Opcode.TEXT, Buffer.from([0x31, 0xed, 0xa0, 0x80]));
    await raw2.until(() => raw2.closeCode !== undefined, 'a close frame');
    assert.equal(raw2.closeCode, 1007);
    raw2.destroy();
    await waitFor(async () => (await metricValue(server.baseUrl, 'pulse_closes_total', { code: '1007' })) === closes1007 + 3, 'the server records 1007 three times');
  });

  test('a request fragmented across frames, split inside a character, is one message', async () => {
    const raw = await rawOpen(server.port, '/ws?name=fragments');
    await raw.until(() => raw.texts.length > 0, 'welcome');
    const bytes = Buffer.from('{"type":"fibonacci","n":10,"id":"€€"}');
    const cut = bytes.indexOf(0xe2) + 1; // inside the first '€'
    raw.write(Buffer.concat([encodeClientFrame(Opcode.TEXT, bytes.subarray(0, cut), false), encodeClientFrame(Opcode.CONTINUATION, bytes.subarray(cut), true)]));
    // A tick may come first: the answer is the first frame that is neither the welcome nor a tick.
    const answer = () => raw.texts.map((t) => JSON.parse(t) as { type: string }).find((f) => f.type !== 'welcome' && f.type !== 'time');
    await raw.until(() => answer() !== undefined, 'the answer');
    assert.deepEqual(answer(), { type: 'fibonacci', id: '€€', n: 10, value: '55', digits: 2 });
    raw.destroy();
  });
});

describe('rate limits', () => {
  test('a burst of 40 is answered, then RATE_LIMITED; the connection stays open', async () => {
    const probe = await open('burst');
    const started = Date.now();
    for (let i = 0; i < 60; i++) probe.send(JSON.stringify({ type: 'fibonacci', n: 20, id: i }));
    const replies = await probe.nextReplies(60, 0);
    const elapsed = Date.now() - started;
    const answers = replies.filter((r) => r.type === 'fibonacci');
    const limited = replies.filter((r) => r.type === 'error' && r.code === 'RATE_LIMITED');
    assert.equal(answers.length + limited.length, 60, 'only answers and RATE_LIMITED');
    assert.deepEqual(replies.slice(0, 40).map((r) => r.id), Array.from({ length: 40 }, (_, i) => i), 'the first 40 are answered, in order');
    // Refill is 20 per second: only as many extra answers as the time taken allows.
    assert.ok(answers.length <= 40 + Math.ceil((elapsed * 20) / 1000) + 1, `${answers.length} answers in ${elapsed} ms`);
    assert.ok(limited.length >= 1, 'some RATE_LIMITED');
    for (const error of limited) assert.equal(error.id, null);
    await sleep(300);
    await stillAnswers(probe);
    await probe.close();
  });

  test('more than 100 RATE_LIMITED within 10 s closes with 1008', async () => {
    const probe = await open('abuser');
    const closes1008 = await metricValue(server.baseUrl, 'pulse_closes_total', { code: '1008' });
    for (let i = 0; i < 400; i++) probe.send('7');
    const closed = await probe.waitClosed();
    assert.equal(closed.code, 1008);
    const limited = probe.replies.filter((r) => r.type === 'error' && r.code === 'RATE_LIMITED');
    assert.equal(limited.length, 100, 'exactly 100 RATE_LIMITED answers, then the close');
    const answers = probe.replies.filter((r) => r.type === 'fibonacci');
    assert.ok(answers.length >= 40, `${answers.length} answers`);
    await waitFor(async () => (await metricValue(server.baseUrl, 'pulse_closes_total', { code: '1008' })) === closes1008 + 1, 'the server records 1008');
  });

  test(`more than FIB_MAX_IN_FLIGHT (4) big requests at once → BUSY for the rest, in order`, async () => {
    const raw = await rawOpen(server.port, '/ws?name=busy');
    await raw.until(() => raw.texts.length > 0, 'welcome');
    // Distinct big n: no cache hit, each goes to a worker. One write, so they arrive together.
    const ns = Array.from({ length: 8 }, (_, i) => 250_001 + i);
    raw.write(Buffer.concat(ns.map((n, i) => encodeClientFrame(Opcode.TEXT, JSON.stringify({ type: 'fibonacci', n, id: `big${i}` })))));
    const replies = () => raw.texts.map((t) => JSON.parse(t) as ProbeFrame).filter((f) => f.type !== 'welcome' && f.type !== 'time' && f.type !== 'presence');
    await raw.until(() => replies().length >= 8, '8 replies', 30_000);
    const got = replies();
    assert.deepEqual(
      got.map((r) => [r.id, r.type, r.code]),
      [
        ...ns.slice(0, 4).map((_, i) => [`big${i}`, 'fibonacci', undefined]),
        ...ns.slice(4).map((_, i) => [`big${i + 4}`, 'error', 'BUSY']),
      ],
    );
    for (const answer of got.slice(0, 4)) {
      assert.equal((answer.value as string).length, answer.digits);
      assert.ok((answer.digits as number) > 52_000);
    }
    // Once those are done, the connection takes big requests again.
    raw.sendText(JSON.stringify({ type: 'fibonacci', n: 250_001, id: 'again' }));
    await raw.until(() => replies().length >= 9, 'another answer', 30_000);
    assert.equal(replies()[8]!.type, 'fibonacci');
    assert.equal(raw.ended, false);
    raw.destroy();
  });
});

describe('text protocol limits', () => {
  test('the same limits hold on /ws/{clientId}: RATE_LIMITED lines, then 1008; 1009; 1003', async () => {
    const url = (id: string) => `ws://127.0.0.1:${server.port}/ws/${id}`;
    const lines = (probe: Probe) => probe.texts.filter((l) => !l.startsWith('Current time: ') && !l.startsWith('Client #'));
    const abuser = await Probe.open(url('text-abuser'));
    for (let i = 0; i < 300; i++) abuser.send('5');
    assert.equal((await abuser.waitClosed()).code, 1008);
    const got = lines(abuser);
    assert.deepEqual(got.slice(0, 40), Array.from({ length: 40 }, () => 'Fibonacci(5) = 5'));
    assert.equal(got.filter((l) => l === 'Error: Too many messages, slow down.').length, 100);
    assert.ok(got.every((l) => l === 'Fibonacci(5) = 5' || l === 'Error: Too many messages, slow down.'));

    const big = await Probe.open(url('text-big'));
    big.send(` ${'0'.repeat(MAX_MESSAGE_BYTES - 3)}12`);
    await big.until(() => lines(big).length === 1, 'the answer to a frame of exactly the limit');
    assert.equal(lines(big)[0], 'Fibonacci(12) = 144');
    big.send(' '.repeat(MAX_MESSAGE_BYTES) + '1');
    assert.equal((await big.waitClosed()).code, 1009);

    const binary = await Probe.open(url('text-binary'));
    binary.send(Buffer.from('10'), { binary: true });
    assert.equal((await binary.waitClosed()).code, 1003);
  });
});

describe('hostile JSON', () => {
  test('nesting: 32 levels are answered, 33 are INVALID_MESSAGE', async () => {
    const probe = await open('nesting');
    const frame = (depth: number) => `{"type":"fibonacci","n":10,"id":"d${depth}","x":${'['.repeat(depth - 1)}0${']'.repeat(depth - 1)}}`;
    assert.equal((await probe.request(frame(32))).type, 'fibonacci');
    const deep = await probe.request(frame(33));
    assert.deepEqual([deep.type, deep.code], ['error', 'INVALID_MESSAGE']);
    const deeper = await probe.request(`{"type":"users","x":${'{"a":'.repeat(600)}1${'}'.repeat(600)}}`);
    assert.deepEqual([deeper.type, deeper.code], ['error', 'INVALID_MESSAGE']);
    const unbalanced = await probe.request('['.repeat(MAX_MESSAGE_BYTES));
    assert.deepEqual([unbalanced.type, unbalanced.code], ['error', 'INVALID_JSON']);
    await stillAnswers(probe);
    await probe.close();
  });

  test('__proto__ and constructor keys never pollute Object.prototype', async () => {
    const probe = await open('proto');
    const frames = [
      '{"type":"fibonacci","n":10,"__proto__":{"x":1},"constructor":{}}',
      '{"__proto__":{"type":"fibonacci","n":10,"x":1}}',
      '{"type":"users","constructor":{"prototype":{"x":1}},"__proto__":{"polluted":true}}',
      '{"type":"fibonacci","n":10,"id":"p","x":{"__proto__":{"x":1}}}',
    ];
    for (const frame of frames) {
      const reply = await probe.request(frame);
      assert.ok(reply.type === 'fibonacci' || reply.type === 'users' || (reply.type === 'error' && reply.code === 'INVALID_MESSAGE'), JSON.stringify(reply));
      if (reply.type === 'fibonacci') assert.equal(reply.value, '55');
    }
    const plain = {} as Record<string, unknown>;
    assert.equal(plain.x, undefined);
    assert.equal(plain.polluted, undefined);
    assert.equal(Object.hasOwn(Object.prototype, 'x'), false);
    assert.equal(Object.hasOwn(Object.prototype, 'polluted'), false);
    await stillAnswers(probe);
    await probe.close();
  });

  test('wrong types and unknown messages get their error code; the next request is answered', async () => {
    const probe = await open('types');
    const cases: [string, string, string | number | null][] = [
      ['{"type":"fibonacci","n":"10","id":"s"}', 'INVALID_NUMBER', 's'],
      ['{"type":"fibonacci","n":1.5,"id":2}', 'INVALID_NUMBER', 2],
      ['{"type":"fibonacci","n":null}', 'INVALID_NUMBER', null],
      ['{"type":"fibonacci","n":10,"id":{}}', 'INVALID_MESSAGE', null],
      [`{"type":"fibonacci","n":10,"id":"${'i'.repeat(65)}"}`, 'INVALID_MESSAGE', null],
      ['{"type":"fibonacci","n":10,"id":1.25}', 'INVALID_MESSAGE', null],
      ['{"type":"subscribe","id":"t"}', 'INVALID_MESSAGE', 't'],
      ['{"type":"fibonacci","id":"non"}', 'INVALID_MESSAGE', 'non'],
      ['{"n":10}', 'INVALID_MESSAGE', null],
      ['[1,2,3]', 'INVALID_MESSAGE', null],
      ['{"type":"fibonacci","n":1000001,"id":"big"}', 'OUT_OF_RANGE', 'big'],
      ['{"type":"fibonacci","n":10', 'INVALID_JSON', null],
      ['ten', 'INVALID_NUMBER', null],
      ['', 'INVALID_NUMBER', null],
      ['\u0000\u0001\u001b[2J', 'INVALID_NUMBER', null],
    ];
    for (const [frame, code, id] of cases) {
      const reply = await probe.request(frame);
      assert.deepEqual([reply.type, reply.code, reply.id], ['error', code, id], frame.slice(0, 80));
      assert.equal(typeof reply.message, 'string');
      await stillAnswers(probe, 5);
    }
    assert.deepEqual(await probe.request(`{"type":"fibonacci","n":10,"id":"${'i'.repeat(64)}"}`), {
      type: 'fibonacci',
      id: 'i'.repeat(64),
      n: 10,
      value: '55',
      digits: 2,
    });
    await probe.close();
  });
});

async function waitFor(check: () => Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}
