// The frames of both protocols (docs/design.md §3, §4): what the server sends, what a client may
// send, and the text protocol's lines, byte for byte.

export const PROTOCOL_VERSION = 1;

/** Every `type` the server sends on the JSON protocol (`/ws`). */
export const SERVER_MESSAGE_TYPES = ['welcome', 'time', 'fibonacci', 'users', 'presence', 'refreshed', 'error'] as const;

/** Every `type` a client may send on the JSON protocol. A bare integer as text is a fibonacci request too. */
export const CLIENT_MESSAGE_TYPES = ['fibonacci', 'users', 'refresh'] as const;

/** The `type` of the answer to each request (or `error`). */
export const REPLY_TYPE = { fibonacci: 'fibonacci', users: 'users', refresh: 'refreshed' } as const satisfies Record<
  (typeof CLIENT_MESSAGE_TYPES)[number],
  (typeof SERVER_MESSAGE_TYPES)[number]
>;

/** A request id as the client sent it, echoed back verbatim; null when it sent none. */
export type RequestId = string | number | null;

/** The limits the welcome announces, set by the operator. */
export interface WelcomeLimits {
  maxN: number;
  maxMessageBytes: number;
  messagesPerSecond: number;
}

/** Text protocol (`/ws/{clientId}`): the original project's lines, byte for byte. */
export const TextProtocol = {
  notANumber: 'Error: Only numbers are accepted.',
  outOfRange: (maxN: number) => `Error: n must be between -${maxN} and ${maxN}.`,
  answer: (n: number, value: string) => `Fibonacci(${n}) = ${value}`,
  left: (clientId: string) => `Client #${clientId} has left the chat`,
  /** Lines the original never needed, in its style. */
  rateLimited: 'Error: Too many messages, slow down.',
  busy: 'Error: Too many requests in flight.',
  internal: 'Error: Internal error.',
} as const;
