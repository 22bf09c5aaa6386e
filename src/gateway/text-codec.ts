// Text protocol of the original project (`/ws/{clientId}`): one integer per frame in, one line out.

import { parseIntegerText, type ParseResult } from '../fibonacci/parse.js';
import type { ErrorCode } from '../protocol/codes.js';
import { TextProtocol } from '../protocol/messages.js';

export function decodeTextFrame(text: string, maxN: number): ParseResult {
  return parseIntegerText(text, maxN);
}

/** The line the text protocol answers for an error, in the original's words where it had them. */
export function encodeTextError(code: ErrorCode, maxN: number): string {
  switch (code) {
    case 'OUT_OF_RANGE':
      return TextProtocol.outOfRange(maxN);
    case 'INVALID_NUMBER':
      return TextProtocol.notANumber;
    case 'RATE_LIMITED':
      return TextProtocol.rateLimited;
    case 'BUSY':
      return TextProtocol.busy;
    default:
      return TextProtocol.internal;
  }
}
