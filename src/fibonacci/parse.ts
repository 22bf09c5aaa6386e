// Input rules of docs/design.md §3 for n. Pure and allocation-light: the gateway calls these on
// every Fibonacci request, and hostile input may be up to MAX_MESSAGE_BYTES of digits.

export type ParseResult =
  | { ok: true; n: number }
  | { ok: false; code: 'INVALID_NUMBER' | 'OUT_OF_RANGE'; message: string };

const INVALID: ParseResult = Object.freeze({ ok: false, code: 'INVALID_NUMBER', message: 'n must be an integer' });

// One frozen error per bound: maxN comes from configuration and never changes at run time,
// so this map holds one or two entries.
const outOfRangeByMax = new Map<number, ParseResult>();
function outOfRange(maxN: number): ParseResult {
  let result = outOfRangeByMax.get(maxN);
  if (result === undefined) {
    result = Object.freeze({ ok: false, code: 'OUT_OF_RANGE', message: `n must be between -${maxN} and ${maxN}` });
    outOfRangeByMax.set(maxN, result);
  }
  return result;
}

const PLUS = 0x2b;
const MINUS = 0x2d;
const DIGIT_0 = 0x30;
const DIGIT_9 = 0x39;

/** ASCII white space: tab, line feed, vertical tab, form feed, carriage return, space. */
function isAsciiSpace(code: number): boolean {
  return code === 0x20 || (code >= 0x09 && code <= 0x0d);
}

/**
 * Bare integer text: optional surrounding ASCII white space, optional sign, one or more
 * ASCII digits (leading zeros fine). Any well-formed integer beyond ±maxN is OUT_OF_RANGE,
 * however many digits it has; everything else is INVALID_NUMBER. One pass over the text and
 * no BigInt: accumulation stops growing once the value exceeds maxN, so it stays exact
 * (maxN is at most Number.MAX_SAFE_INTEGER / 10 in practice: FIB_MAX_N <= 10,000,000).
 */
export function parseIntegerText(text: string, maxN: number): ParseResult {
  let start = 0;
  let end = text.length;
  while (start < end && isAsciiSpace(text.charCodeAt(start))) start++;
  while (end > start && isAsciiSpace(text.charCodeAt(end - 1))) end--;
  if (start === end) return INVALID;

  let negative = false;
  const first = text.charCodeAt(start);
  if (first === PLUS || first === MINUS) {
    negative = first === MINUS;
    start++;
    if (start === end) return INVALID;
  }

  let value = 0;
  let tooLarge = false;
  for (let i = start; i < end; i++) {
    const code = text.charCodeAt(i);
    if (code < DIGIT_0 || code > DIGIT_9) return INVALID;
    if (!tooLarge) {
      value = value * 10 + (code - DIGIT_0);
      if (value > maxN) tooLarge = true;
    }
  }
  if (tooLarge) return outOfRange(maxN);
  // '-0' is 0, not the double -0 (which would print as "0" but compare oddly elsewhere).
  return { ok: true, n: negative && value !== 0 ? -value : value };
}

/**
 * The `n` field of a JSON message: a JSON number that is an integer. Strings (even "10"),
 * booleans, null, objects and fractions are INVALID_NUMBER; integers beyond ±maxN
 * (1e300 included) are OUT_OF_RANGE.
 */
export function checkJsonN(value: unknown, maxN: number): ParseResult {
  if (typeof value !== 'number') return INVALID;
  // JSON.parse turns an integer too long for a double (1e400, 400 digits) into ±Infinity: still an integer.
  if (value === Infinity || value === -Infinity) return outOfRange(maxN);
  if (!Number.isInteger(value)) return INVALID;
  if (value > maxN || value < -maxN) return outOfRange(maxN);
  return { ok: true, n: value === 0 ? 0 : value }; // normalises -0
}
