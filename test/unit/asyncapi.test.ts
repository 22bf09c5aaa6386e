// The AsyncAPI document (served at GET /asyncapi.yaml) is valid AsyncAPI 3 and describes
// every message the server sends, with the codes and text-protocol strings of src/protocol.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Parser, DiagnosticSeverity } from '@asyncapi/parser';
import type { AsyncAPIDocumentInterface, MessageInterface } from '@asyncapi/parser';
import { CLOSE_CODE_MEANING, ERROR_CODES, HTTP_ERROR_CODES, type HttpErrorCode } from '../../src/protocol/codes.js';
import { CLIENT_MESSAGE_TYPES, REPLY_TYPE, SERVER_MESSAGE_TYPES, TextProtocol } from '../../src/protocol/messages.js';

const path = fileURLToPath(new URL('../../docs/asyncapi.yaml', import.meta.url));
const source = readFileSync(path, 'utf8');

type Json = Record<string, unknown>;
const obj = (v: unknown): Json => (v !== null && typeof v === 'object' ? (v as Json) : {});

let parsed: Promise<AsyncAPIDocumentInterface> | undefined;
function load(): Promise<AsyncAPIDocumentInterface> {
  parsed ??= new Parser().parse(source).then(({ document, diagnostics }) => {
    const errors = diagnostics.filter((d) => d.severity === DiagnosticSeverity.Error);
    assert.deepEqual(errors.map((d) => `${d.code}: ${d.message} at ${d.path.join('.')}`), []);
    assert.ok(document, 'the parser returned no document');
    return document;
  });
  return parsed;
}

function payload(m: MessageInterface): Json {
  return obj(m.payload()?.json());
}
function typeOf(m: MessageInterface): unknown[] {
  const t = obj(obj(payload(m).properties).type);
  if (t.const !== undefined) return [t.const];
  return Array.isArray(t.enum) ? t.enum : [];
}

/** Messages the server sends on a channel: `send` operations plus replies of `receive` operations. */
async function sentOn(address: string): Promise<MessageInterface[]> {
  const doc = await load();
  const out: MessageInterface[] = [];
  for (const op of doc.operations().all()) {
    if (!op.channels().all().some((c) => c.address() === address)) continue;
    if (op.action() === 'send') out.push(...op.messages().all());
    else out.push(...(op.reply()?.messages().all() ?? []));
  }
  return out;
}

async function receivedOn(address: string): Promise<MessageInterface[]> {
  const doc = await load();
  return doc
    .operations()
    .all()
    .filter((op) => op.action() === 'receive' && op.channels().all().some((c) => c.address() === address))
    .flatMap((op) => op.messages().all());
}

test('validates as AsyncAPI 3 with no errors', async () => {
  const diagnostics = await new Parser().validate(source);
  const errors = diagnostics.filter((d) => d.severity === DiagnosticSeverity.Error);
  assert.deepEqual(errors.map((d) => `${d.code}: ${d.message} at ${d.path.join('.')}`), []);
  const doc = await load();
  assert.match(doc.version(), /^3\./);
});

test('has the two channels, the /ws handshake query and the clientId parameter', async () => {
  const doc = await load();
  const channels = doc.channels().all();
  const json = channels.find((c) => c.address() === '/ws');
  const text = channels.find((c) => c.address() === '/ws/{clientId}');
  assert.ok(json, 'channel /ws');
  assert.ok(text, 'channel /ws/{clientId}');
  assert.deepEqual(text.parameters().all().map((p) => p.id()), ['clientId']);
  const ws = json.bindings().all().find((b) => b.protocol() === 'ws');
  assert.ok(ws, 'ws binding on /ws');
  const query = obj(obj(ws.value()).query);
  assert.equal(query.type, 'object');
  assert.deepEqual(Object.keys(obj(query.properties)).sort(), ['name', 'presence', 'token']);
});

test('every server message type is described as a message the server sends on /ws', async () => {
  const sent = await sentOn('/ws');
  for (const type of SERVER_MESSAGE_TYPES) {
    const m = sent.find((x) => typeOf(x).includes(type));
    assert.ok(m, `no sent message with payload type ${type}`);
    const required = payload(m).required;
    assert.ok(Array.isArray(required) && required.includes('type'), `${type}: type is required`);
  }
  const described = new Set(sent.flatMap(typeOf));
  assert.deepEqual([...described].sort(), [...SERVER_MESSAGE_TYPES].sort(), 'no undocumented extra types');
});

test('every client message type is a message the server receives on /ws, plus the bare integer', async () => {
  const received = await receivedOn('/ws');
  for (const type of CLIENT_MESSAGE_TYPES) {
    assert.ok(received.some((m) => typeOf(m).includes(type)), `no received message with payload type ${type}`);
  }
  const bare = received.find((m) => m.contentType() === 'text/plain');
  assert.ok(bare, 'bare integer request');
  const pattern = new RegExp(String(payload(bare).pattern));
  for (const ok of ['10', ' -007 ', '+3']) assert.match(ok, pattern);
  for (const bad of ['1.5', 'abc', '1e3', '']) assert.doesNotMatch(bad, pattern);
});

test('every request is a request/reply operation answered with its reply type or an error', async () => {
  const doc = await load();
  for (const type of CLIENT_MESSAGE_TYPES) {
    const op = doc
      .operations()
      .all()
      .find((o) => o.action() === 'receive' && o.messages().all().some((m) => typeOf(m).includes(type)));
    assert.ok(op, `operation receiving ${type}`);
    const replies = op.reply()?.messages().all() ?? [];
    assert.ok(replies.some((m) => typeOf(m).includes(REPLY_TYPE[type])), `${type} replies with ${REPLY_TYPE[type]}`);
    assert.ok(replies.some((m) => typeOf(m).includes('error')), `${type} may reply with error`);
  }
});

test('the error code enum equals ERROR_CODES', async () => {
  const sent = await sentOn('/ws');
  const error = sent.find((m) => typeOf(m).includes('error'));
  assert.ok(error);
  assert.deepEqual(obj(obj(payload(error).properties).code).enum, [...ERROR_CODES]);
});

test('JSON message examples carry their own type and every required field', async () => {
  const doc = await load();
  for (const m of doc.messages().all()) {
    if (m.contentType() !== 'application/json') continue;
    const examples = m.examples().all();
    assert.ok(examples.length > 0, `${m.id()} has an example`);
    const required = (payload(m).required as string[] | undefined) ?? [];
    for (const ex of examples) {
      const p = obj(ex.payload());
      assert.ok(typeOf(m).includes(p.type), `${m.id()} example type ${String(p.type)}`);
      for (const key of required) assert.ok(key in p, `${m.id()} example lacks ${key}`);
    }
  }
});

test('text protocol lines match the strings of protocol.ts', async () => {
  const sent = await sentOn('/ws/{clientId}');
  const matches = (line: string) =>
    sent.some((m) => {
      const p = payload(m);
      return (
        p.const === line ||
        (Array.isArray(p.enum) && p.enum.includes(line)) ||
        (typeof p.pattern === 'string' && new RegExp(p.pattern).test(line))
      );
    });
  assert.ok(matches('Current time: 2026-11-29 16:45:27'));
  assert.ok(matches(TextProtocol.answer(10, '55')));
  assert.ok(matches(TextProtocol.answer(-8, '-21')));
  assert.ok(matches(TextProtocol.notANumber));
  assert.ok(matches(TextProtocol.outOfRange(1000000)));
  assert.ok(matches(TextProtocol.left('client_42')));
  for (const m of sent) {
    for (const ex of m.examples().all()) {
      const line: unknown = ex.payload();
      assert.ok(typeof line === 'string', `${m.id()} example is a text line`);
      assert.ok(matches(line), `${m.id()} example ${line}`);
    }
  }
});

test('the description lists every close code and every code a refused upgrade can carry', async () => {
  const description = (await load()).info().description() ?? '';
  for (const code of Object.keys(CLOSE_CODE_MEANING)) assert.match(description, new RegExp(`\\| ${code} \\|`), `close code ${code}`);
  const upgradeCodes: HttpErrorCode[] = [
    'INVALID_NAME',
    'INVALID_CLIENT_ID',
    'INVALID_HANDSHAKE',
    'UNAUTHORIZED',
    'SIGNING_KEY_UNAVAILABLE',
    'ORIGIN_NOT_ALLOWED',
    'TOO_MANY_CONNECTIONS',
    'SERVER_FULL',
    'DRAINING',
  ];
  for (const code of upgradeCodes) {
    assert.ok(code in HTTP_ERROR_CODES, code);
    assert.ok(description.includes(`\`${code}\``), `upgrade refusal ${code}`);
  }
  assert.ok(description.includes('GET /api/admission'), 'the pre-check');
});
