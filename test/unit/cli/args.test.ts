import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_URL, USAGE, normaliseUrl, parseArgs } from '../../../src/cli/args.js';
import type { CliOptions } from '../../../src/cli/args.js';

function ok(argv: string[], env: Record<string, string> = {}): CliOptions {
  const r = parseArgs(argv, env);
  if (!r.ok) assert.fail(`unexpected error: ${r.error}`);
  return r.options;
}
function err(argv: string[], env: Record<string, string> = {}): string {
  const r = parseArgs(argv, env);
  if (r.ok) assert.fail(`expected an error for ${argv.join(' ')}`);
  return r.error;
}

test('no arguments: interactive against the default URL', () => {
  assert.deepEqual(ok([]), { mode: 'interactive', url: DEFAULT_URL, json: false });
});

test('PULSE_URL and PULSE_TOKEN are defaults; options win', () => {
  const env = { PULSE_URL: 'ws://pulse.example:9000/ws', PULSE_TOKEN: 'tok' };
  assert.deepEqual(ok([], env), { mode: 'interactive', url: 'ws://pulse.example:9000/ws', token: 'tok', json: false });
  const o = ok(['--url', 'ws://other:1/ws', '--token=t2'], env);
  assert.equal(o.url, 'ws://other:1/ws');
  assert.equal(o.token, 't2');
  assert.equal(ok([], { PULSE_URL: '  ' }).url, DEFAULT_URL);
});

test('--fib takes the next argument, even a negative number or text', () => {
  assert.equal(ok(['--fib', '10']).fib, '10');
  assert.equal(ok(['--fib', '-5']).mode, 'fib');
  assert.equal(ok(['--fib', '-5']).fib, '-5');
  assert.equal(ok(['--fib=abc']).fib, 'abc');
  assert.equal(ok(['--fib', '']).fib, '');
  assert.match(err(['--fib']), /--fib needs a value/);
  assert.match(err(['--fib', '--json']), /--fib needs a value/);
});

test('modes and flags', () => {
  assert.equal(ok(['--users']).mode, 'users');
  assert.equal(ok(['--json', '--fib', '10']).json, true);
  assert.equal(ok(['--name', 'alice', '--users']).name, 'alice');
  assert.equal(ok(['--name', 'Zoë Q']).name, 'Zoë Q');
  assert.equal(ok(['-h']).mode, 'help');
  assert.equal(ok(['--users', '--help']).mode, 'help');
  assert.equal(ok(['-v']).mode, 'version');
  assert.equal(ok(['--version']).mode, 'version');
});

test('usage errors', () => {
  assert.match(err(['--fib', '1', '--users']), /cannot be combined/);
  assert.match(err(['--bogus']), /unknown option --bogus/);
  assert.match(err(['--users=1']), /unknown option/);
  assert.match(err(['stray']), /unexpected argument/);
  assert.match(err(['--name', '']), /--name must not be empty/);
  assert.match(err(['--url', 'ftp://x/']), /unsupported URL scheme/);
  assert.match(err(['--url', 'ws://']), /invalid URL/);
  assert.match(err(['--name', 'a', '--name', 'b']), /given twice/);
});

test('URLs are normalised to the /ws endpoint', () => {
  const cases: Array<[string, string]> = [
    ['ws://localhost:8000/ws', 'ws://localhost:8000/ws'],
    ['ws://localhost:8000', 'ws://localhost:8000/ws'],
    ['http://localhost:8000/', 'ws://localhost:8000/ws'],
    ['https://pulse.example', 'wss://pulse.example/ws'],
    ['localhost:8000', 'ws://localhost:8000/ws'],
    ['wss://pulse.example/custom/ws?x=1#frag', 'wss://pulse.example/custom/ws?x=1'],
  ];
  for (const [input, expected] of cases) assert.deepEqual(normaliseUrl(input), { ok: true, url: expected }, input);
});

test('--help documents the modes, the options and the exit status', () => {
  for (const words of [/--fib N/, /--users/, /--json/, /--name NAME/, /--token JWT/, /--url URL/, /\/users/, /\/quit/, /64 bad usage/]) assert.match(USAGE, words);
});
