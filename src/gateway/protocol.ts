// The wire contract of docs/design.md §3 and §4 in one place: message types, error codes, close codes.

export const PROTOCOL_VERSION = 1;

/** Every `type` the server sends on the JSON protocol (`/ws`). */
export const SERVER_MESSAGE_TYPES = ['welcome', 'time', 'fibonacci', 'users', 'presence', 'error'] as const;
export type ServerMessageType = (typeof SERVER_MESSAGE_TYPES)[number];

/** Every `type` a client may send on the JSON protocol. A bare integer as text is a fibonacci request too. */
export const CLIENT_MESSAGE_TYPES = ['fibonacci', 'users'] as const;

export const ERROR_CODES = [
  'INVALID_JSON',
  'INVALID_MESSAGE',
  'INVALID_NUMBER',
  'OUT_OF_RANGE',
  'RATE_LIMITED',
  'BUSY',
  'UNAUTHORIZED',
  'INTERNAL',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export const CloseCode = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  UNSUPPORTED_DATA: 1003,
  ABNORMAL: 1006,
  INVALID_PAYLOAD: 1007,
  POLICY_VIOLATION: 1008,
  MESSAGE_TOO_BIG: 1009,
  INTERNAL_ERROR: 1011,
  TRY_AGAIN_LATER: 1013,
} as const;

/** Text protocol (`/ws/{clientId}`) strings of the original project, byte for byte. */
export const TextProtocol = {
  notANumber: 'Error: Only numbers are accepted.',
  outOfRange: (maxN: number) => `Error: n must be between -${maxN} and ${maxN}.`,
  answer: (n: number, value: string) => `Fibonacci(${n}) = ${value}`,
  left: (clientId: string) => `Client #${clientId} has left the chat`,
  clientIdPattern: /^[A-Za-z0-9_-]{1,64}$/,
} as const;
