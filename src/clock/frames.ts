// The two tick payloads, serialised once per tick; the gateway frames each once and writes the
// same bytes to every socket of that protocol.

const pad = (n: number, width = 2) => String(n).padStart(width, '0');

/** JSON protocol: `{"type":"time","now":"…Z","epochMs":…}`. */
export function jsonTimeFrame(epochMs: number): string {
  return `{"type":"time","now":"${new Date(epochMs).toISOString()}","epochMs":${epochMs}}`;
}

/** Text protocol of the original: `Current time: YYYY-MM-DD HH:MM:SS` in the server's time zone (TZ). */
export function textTimeFrame(epochMs: number): string {
  const d = new Date(epochMs);
  return `Current time: ${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}
