import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as ws from 'ws';
import { textFrameBytes } from '../../../src/gateway/connection.js';

interface ReceiverLike {
  on(event: 'message', listener: (data: Buffer, isBinary: boolean) => void): void;
  write(chunk: Buffer): void;
}
// ws exports its frame parser, but @types/ws does not describe it.
const Receiver = (ws as unknown as { Receiver: new (options: { isServer: boolean }) => ReceiverLike }).Receiver;

test('a prebuilt frame decodes as one text message, for every header length', () => {
  for (const size of [0, 1, 125, 126, 65_535, 65_536, 300_000]) {
    const payload = Buffer.alloc(size, 'x');
    const receiver = new Receiver({ isServer: false });
    const messages: { data: Buffer; isBinary: boolean }[] = [];
    receiver.on('message', (data, isBinary) => messages.push({ data, isBinary }));
    receiver.write(textFrameBytes(payload));
    assert.equal(messages.length, 1, `size ${size}`);
    assert.equal(messages[0]!.isBinary, false);
    assert.equal(messages[0]!.data.length, size);
  }
});
