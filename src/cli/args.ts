// Command-line arguments of pulse-client → typed options. Pure: no I/O, no process globals.

export const DEFAULT_URL = 'ws://localhost:8000/ws';

export type Mode = 'interactive' | 'fib' | 'users' | 'help' | 'version';

export interface CliOptions {
  mode: Mode;
  /** Normalised WebSocket URL of the JSON protocol endpoint (without name/token/presence). */
  url: string;
  name?: string;
  token?: string;
  /** The raw text given to --fib (validated by the server, not here). */
  fib?: string;
  json: boolean;
}

export type ParseOutcome = { ok: true; options: CliOptions } | { ok: false; error: string };

export const USAGE = `Usage: pulse-client [options]

Connects to a Pulse server's JSON protocol (/ws).

Without --fib or --users: interactive. Shows a live clock, who joins and leaves,
and answers what you type:
  10          Fibonacci(10)             /users   who is online
  {...}       send a raw JSON frame     /help    this list
  /quit       exit (also Ctrl-C, Ctrl-D)
Reconnects automatically, with jittered backoff, when the connection drops.

Options:
  --url URL       server endpoint (default: $PULSE_URL or ${DEFAULT_URL});
                  http(s):// is accepted, a bare host:port gets /ws
  --name NAME     display name (1-32 letters, digits, space, . _ -)
  --token JWT     token when the server requires one (default: $PULSE_TOKEN);
                  sent as ?token= in the URL, as browsers do; never printed
  --fib N         print F(N) (digits only) and exit
  --users         print online users, one per line: name<TAB>id<TAB>sessions
  --json          print the server's frames as they arrive, one JSON per line
  -h, --help      show this help
  -v, --version   print the version

Exit status: 0 ok, 1 the server answered with an error, 2 could not connect or
connection lost, 64 bad usage.
`;

const VALUE_OPTIONS = new Set(['--url', '--name', '--token', '--fib']);
const FLAG_OPTIONS = new Set(['--users', '--json', '--help', '-h', '--version', '-v']);

/**
 * Parses argv (without node and the script path). Options taking a value accept
 * `--opt value` and `--opt=value`; the value may start with one `-` (`--fib -5`).
 */
export function parseArgs(argv: readonly string[], env: Readonly<Record<string, string | undefined>> = {}): ParseOutcome {
  const values = new Map<string, string>();
  const flags = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const eq = arg.startsWith('--') ? arg.indexOf('=') : -1;
    const key = eq > 0 ? arg.slice(0, eq) : arg;
    if (VALUE_OPTIONS.has(key)) {
      let value: string | undefined;
      if (eq > 0) value = arg.slice(eq + 1);
      else {
        value = argv[i + 1];
        i++;
        if (value?.startsWith('--')) value = undefined;
      }
      if (value === undefined) return { ok: false, error: `${key} needs a value` };
      if (values.has(key)) return { ok: false, error: `${key} given twice` };
      values.set(key, value);
    } else if (FLAG_OPTIONS.has(key) && eq < 0) {
      flags.add(key === '-h' ? '--help' : key === '-v' ? '--version' : key);
    } else if (arg.startsWith('-')) {
      return { ok: false, error: `unknown option ${key}` };
    } else {
      return { ok: false, error: `unexpected argument ${JSON.stringify(arg)}` };
    }
  }

  const json = flags.has('--json');
  if (flags.has('--help')) return { ok: true, options: { mode: 'help', url: DEFAULT_URL, json } };
  if (flags.has('--version')) return { ok: true, options: { mode: 'version', url: DEFAULT_URL, json } };

  const fib = values.get('--fib');
  if (fib !== undefined && flags.has('--users')) return { ok: false, error: '--fib and --users cannot be combined' };

  const rawUrl = values.get('--url') ?? nonEmpty(env.PULSE_URL) ?? DEFAULT_URL;
  const url = normaliseUrl(rawUrl);
  if (!url.ok) return { ok: false, error: url.error };

  const name = values.get('--name');
  if (name !== undefined && name.length === 0) return { ok: false, error: '--name must not be empty' };
  const token = values.get('--token') ?? nonEmpty(env.PULSE_TOKEN);
  if (token !== undefined && token.length === 0) return { ok: false, error: '--token must not be empty' };

  const options: CliOptions = { mode: fib !== undefined ? 'fib' : flags.has('--users') ? 'users' : 'interactive', url: url.url, json };
  if (name !== undefined) options.name = name;
  if (token !== undefined) options.token = token;
  if (fib !== undefined) options.fib = fib;
  return { ok: true, options };
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

/**
 * ws:// and wss:// as given; http(s):// becomes ws(s)://; `host:port` alone gets ws:// .
 * An empty path becomes /ws, the JSON protocol endpoint.
 */
export function normaliseUrl(raw: string): { ok: true; url: string } | { ok: false; error: string } {
  let text = raw.trim();
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) text = `ws://${text}`;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return { ok: false, error: `invalid URL ${JSON.stringify(raw)}` };
  }
  if (url.protocol === 'http:') url.protocol = 'ws:';
  else if (url.protocol === 'https:') url.protocol = 'wss:';
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') {
    return { ok: false, error: `unsupported URL scheme ${url.protocol} (use ws:// or wss://)` };
  }
  if (url.pathname === '/' || url.pathname === '') url.pathname = '/ws';
  url.hash = '';
  return { ok: true, url: url.toString() };
}
