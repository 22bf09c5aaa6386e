// The one error a PulseClient reports, with a code a program can act on and a message a person
// can read.

import type { ErrorCode, HttpErrorCode } from '../protocol/codes.js';

/**
 * - a server error code (`INVALID_NUMBER`, `BUSY`, …): the server answered a request with an error;
 * - an admission code (`INVALID_NAME`, `UNAUTHORIZED`, `ORIGIN_NOT_ALLOWED`, …): the server refused
 *   the connection, as its HTTP pre-check (`GET /api/admission`) explains;
 * - `DISCONNECTED`: the connection dropped, or was not open, before the answer came;
 * - `TIMEOUT`, `ABORTED`: the request's own timeout or AbortSignal ended it;
 * - `CLOSED`: close() was called;
 * - `PROTOCOL`: the server sent something this client cannot use.
 */
export type PulseErrorCode = ErrorCode | HttpErrorCode | 'DISCONNECTED' | 'TIMEOUT' | 'ABORTED' | 'CLOSED' | 'PROTOCOL';

export class PulseError extends Error {
  override readonly name = 'PulseError';

  constructor(
    readonly code: PulseErrorCode,
    message: string,
    /** Whether trying again (a reconnect, the same request later) can help. */
    readonly retryable = false,
    /** The HTTP status of a refused connection, when there was one. */
    readonly status?: number,
    /** What the runtime reported, when an attempt failed below HTTP (in Node, an error with a `code` such as ECONNREFUSED). */
    cause?: unknown,
  ) {
    super(message, cause === undefined ? undefined : { cause });
  }
}
