// --fib and --users: connect once (no retry, no presence messages), ask, print the answer, exit.

import { PulseError, type PulseClient } from '../client/index.js';
import type { ServerFrame } from '../protocol/frames.js';
import type { CliOptions } from './args.js';
import { createClient } from './client.js';
import { EXIT_CONNECTION, EXIT_OK, EXIT_SERVER_ERROR } from './exit-codes.js';
import { describeFailure, displayUrl, formatError, formatUserRow, sanitize } from './format.js';
import { USERS_QUESTION, fibonacciQuestion } from './questions.js';

export interface Output {
  out(line: string): void;
  err(line: string): void;
}

export async function runOneShot(opts: CliOptions, io: Output): Promise<number> {
  const client = createClient(opts, { interactive: false });
  try {
    return await askOnce(client, opts, io);
  } finally {
    client.close();
  }
}

async function askOnce(client: PulseClient, opts: CliOptions, io: Output): Promise<number> {
  try {
    await client.connect();
  } catch (err) {
    if (!(err instanceof PulseError)) throw err;
    io.err(describeFailure(err, displayUrl(opts.url)));
    return EXIT_CONNECTION;
  }
  const question = opts.mode === 'fib' ? fibonacciQuestion(opts.fib ?? '') : USERS_QUESTION;
  let answer: ServerFrame;
  try {
    answer = await client.send(question.request);
  } catch (err) {
    // The connection closed first, or the answer took too long.
    if (!(err instanceof PulseError)) throw err;
    io.err(sanitize(err.message));
    return EXIT_CONNECTION;
  }
  printAnswer(answer, opts.json, io);
  return answer.type === 'error' ? EXIT_SERVER_ERROR : EXIT_OK;
}

/** --json: the frame; otherwise the value alone, or one row per user, for scripts; errors on stderr. */
function printAnswer(answer: ServerFrame, json: boolean, io: Output): void {
  if (json) {
    io.out(JSON.stringify(answer));
  } else if (answer.type === 'fibonacci') {
    io.out(answer.value);
  } else if (answer.type === 'users') {
    for (const u of answer.users) io.out(formatUserRow(u));
    if (answer.truncated) io.err(`(${answer.online} online, only the first ${answer.users.length} listed)`);
  } else if (answer.type === 'error') {
    io.err(formatError(answer));
  }
}
