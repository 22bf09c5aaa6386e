// Every code a client can meet, with the text a person reads (docs/design.md §3, §6): error
// codes of the JSON protocol, WebSocket close codes, and the codes of HTTP error bodies.

/** `code` of an `error` frame. An error never closes the connection by itself. */
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

/** What each error code means, for a person. */
export const ERROR_CODE_MEANING: Readonly<Record<ErrorCode, string>> = {
  INVALID_JSON: 'the frame is not valid JSON',
  INVALID_MESSAGE: 'the frame is not a message the server knows',
  INVALID_NUMBER: 'n is not an integer',
  OUT_OF_RANGE: 'n is beyond the largest |n| the server answers',
  RATE_LIMITED: 'too many messages: slow down',
  BUSY: 'too many Fibonacci requests waiting: wait for an answer first',
  UNAUTHORIZED: 'not allowed',
  INTERNAL: 'the server failed to answer',
};

export const CloseCode = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  PROTOCOL_ERROR: 1002,
  UNSUPPORTED_DATA: 1003,
  ABNORMAL: 1006,
  INVALID_PAYLOAD: 1007,
  POLICY_VIOLATION: 1008,
  MESSAGE_TOO_BIG: 1009,
  INTERNAL_ERROR: 1011,
  TRY_AGAIN_LATER: 1013,
} as const;

/** What each close code means, for a person (1005 and 1006 are never sent: browsers report them). */
export const CLOSE_CODE_MEANING: Readonly<Record<number, string>> = {
  [CloseCode.NORMAL]: 'closed normally',
  [CloseCode.GOING_AWAY]: 'the server is shutting down; reconnect',
  [CloseCode.PROTOCOL_ERROR]: 'WebSocket protocol error',
  [CloseCode.UNSUPPORTED_DATA]: 'binary frames are not supported',
  1005: 'closed without a code',
  [CloseCode.ABNORMAL]: 'the connection was lost',
  [CloseCode.INVALID_PAYLOAD]: 'the frame was not valid UTF-8',
  [CloseCode.POLICY_VIOLATION]: 'policy: the token expired, or too many messages for too long',
  [CloseCode.MESSAGE_TOO_BIG]: 'a frame was larger than the server accepts',
  [CloseCode.INTERNAL_ERROR]: 'internal server error',
  [CloseCode.TRY_AGAIN_LATER]: 'the client was too slow to keep up',
};

/**
 * `code` of an HTTP error body (see HttpErrorBody). Refused upgrades use the same body, so a
 * client that can read the status (not a browser) learns why.
 */
export const HTTP_ERROR_CODES = {
  INVALID_REQUEST: 'a parameter or the body is invalid',
  INVALID_NUMBER: 'n is not an integer',
  OUT_OF_RANGE: 'n is beyond the largest |n| answered',
  INVALID_NAME: 'the name breaks the name rule',
  INVALID_CLIENT_ID: 'the clientId breaks the clientId rule',
  INVALID_HANDSHAKE: 'not a valid WebSocket handshake',
  UNAUTHORIZED: 'the token is missing, invalid or expired',
  SIGNING_KEY_UNAVAILABLE: 'the key that signed the token cannot be had yet (the identity provider is unreachable, or the key is newer than the cached ones): try again',
  ORIGIN_NOT_ALLOWED: 'the page\'s origin may not connect',
  NOT_FOUND: 'no such route',
  UPGRADE_REQUIRED: 'connect with a WebSocket client',
  TOO_MANY_CONNECTIONS: 'too many connections from this address',
  SERVER_FULL: 'the server holds as many connections as it may',
  DRAINING: 'the server is shutting down; try another instance',
  DATABASE_UNAVAILABLE: 'the database does not answer; try again shortly',
  INTERNAL: 'internal server error',
} as const;
export type HttpErrorCode = keyof typeof HTTP_ERROR_CODES;

/** Refusals that may pass if tried again later: capacity, a shutdown, the database, a key not fetched yet. */
export const RETRYABLE_HTTP_ERROR_CODES: ReadonlySet<string> = new Set<HttpErrorCode>([
  'SIGNING_KEY_UNAVAILABLE',
  'TOO_MANY_CONNECTIONS',
  'SERVER_FULL',
  'DRAINING',
  'DATABASE_UNAVAILABLE',
  'INTERNAL',
]);

/** The one shape of every HTTP error Pulse answers (Fastify's own, plus a code). */
export interface HttpErrorBody {
  statusCode: number;
  code: HttpErrorCode;
  error: string;
  message: string;
}

/** The body for an HTTP status, its reason phrase (`STATUS_CODES` of node:http) and a code. */
export function httpErrorBody(statusCode: number, statusText: string | undefined, code: HttpErrorCode, message: string): HttpErrorBody {
  return { statusCode, code, error: statusText ?? 'Error', message };
}

/**
 * The whole raw HTTP/1.1 error response, ending the connection, for the server's two answers on a
 * bare socket: a refused WebSocket upgrade and a request Node's parser could not read.
 */
export function httpErrorResponse(status: number, statusText: string | undefined, code: HttpErrorCode, message: string, extraHeaders = ''): string {
  const body = JSON.stringify(httpErrorBody(status, statusText, code, message));
  return (
    `HTTP/1.1 ${status} ${statusText ?? ''}\r\nConnection: close\r\nContent-Type: application/json; charset=utf-8\r\n` +
    `X-Content-Type-Options: nosniff\r\nCache-Control: no-store\r\nContent-Length: ${new TextEncoder().encode(body).length}\r\n${extraHeaders}\r\n${body}`
  );
}
