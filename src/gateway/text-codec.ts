// Text protocol of the original project (`/ws/{clientId}`): one integer per frame in, one line out.

import { parseIntegerText, type ParseResult } from '../fibonacci/parse.js';
import { TextProtocol } from './protocol.js';

export function decodeTextFrame(text: string, maxN: number): ParseResult {
  return parseIntegerText(text, maxN);
}

/** The original's error line for a refused input. */
export function encodeTextError(result: Extract<ParseResult, { ok: false }>, maxN: number): string {
  return result.code === 'OUT_OF_RANGE' ? TextProtocol.outOfRange(maxN) : TextProtocol.notANumber;
}
