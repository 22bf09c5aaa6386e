// What a line typed in interactive mode asks for, and the request behind each question (--fib
// and --users ask the same way). Pure: PulseClient.send() takes the request.

import type { ClientFrame } from '../protocol/frames.js';

export interface Question {
  /** What the user typed, to say which question an error answers. */
  label: string;
  /** A frame, or text sent as it is. */
  request: ClientFrame | string;
}

export type LineAction =
  | { kind: 'ask'; question: Question }
  | { kind: 'help' }
  | { kind: 'quit' }
  | { kind: 'unknown'; command: string }
  | { kind: 'nothing' };

export const USERS_QUESTION: Question = { label: '/users', request: { type: 'users' } };

/**
 * F(text). The text goes as typed: the protocol reads bare text as n, exactly however many digits
 * it has, and the server alone decides what is not an integer (INVALID_NUMBER). Only text that
 * would read as a JSON frame is wrapped in one, so that it is still taken as n.
 */
export function fibonacciQuestion(text: string): Question {
  const label = text.trim();
  const request = /^[{[]/.test(label) ? JSON.stringify({ type: 'fibonacci', n: label }) : label;
  return { label, request };
}

export function readLine(raw: string): LineAction {
  const line = raw.trim();
  if (line === '') return { kind: 'nothing' };
  if (line === '/quit' || line === '/exit') return { kind: 'quit' };
  if (line === '/help') return { kind: 'help' };
  if (line === '/users') return { kind: 'ask', question: USERS_QUESTION };
  if (line.startsWith('{')) return { kind: 'ask', question: { label: line, request: line } };
  if (line.startsWith('/')) return { kind: 'unknown', command: line };
  return { kind: 'ask', question: fibonacciQuestion(line) };
}
