// The two tick frames, serialised once per tick and shared by every socket of that protocol.

const pad = (n: number, width = 2) => String(n).padStart(width, '0');

/** JSON protocol: `{"type":"time","now":"…Z","epochMs":…}`. */
export function jsonTimeFrame(epochMs: number): Buffer {
  return Buffer.from(`{"type":"time","now":"${new Date(epochMs).toISOString()}","epochMs":${epochMs}}`);
}

/** Text protocol of the original: `Current time: YYYY-MM-DD HH:MM:SS` in the server's time zone (TZ). */
export function textTimeFrame(epochMs: number): Buffer {
  const d = new Date(epochMs);
  return Buffer.from(
    `Current time: ${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`,
  );
}
