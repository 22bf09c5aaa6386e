// Pulse as a child process (`node --import tsx src/main.ts`), for tests that kill it, signal it or
// need it on its own event loop. Waits for /healthz (and /readyz unless told not to).

import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { dirname, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface PulseProcess {
  child: ChildProcess;
  pid: number;
  port: number;
  baseUrl: string;
  wsUrl: string;
  /** Output lines so far (pino JSON lines on stdout, anything else on stderr). */
  stdout: string[];
  stderr: string[];
  /** Resolves when the process has exited: its code, or the signal that ended it. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  kill(signal?: NodeJS.Signals): void;
  /** Parsed JSON log lines whose msg contains `text`. */
  logs(text: string): Record<string, unknown>[];
  /** SIGKILL if still running, then waits for the exit. */
  stop(): Promise<void>;
}

export interface PulseProcessOptions {
  /** Wait for /readyz 200 too (default true). */
  waitReady?: boolean;
  timeoutMs?: number;
}

/** A port that was free a moment ago. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', () => done()));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  await new Promise<void>((done) => server.close(() => done()));
  return port;
}

export async function startPulseProcess(env: Record<string, string>, options: PulseProcessOptions = {}): Promise<PulseProcess> {
  const port = env.PORT !== undefined && env.PORT !== '0' ? Number(env.PORT) : await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      TZ: process.env.TZ ?? 'UTC',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
      // Presence tests time the moment a user leaves: announced at once unless a test asks for a grace.
      PRESENCE_LEAVE_GRACE_MS: '0',
      ...env,
      PORT: String(port),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const stdout: string[] = [];
  const stderr: string[] = [];
  createInterface({ input: child.stdout! }).on('line', (line) => stdout.push(line));
  createInterface({ input: child.stderr! }).on('line', (line) => stderr.push(line));
  let exitInfo: PulseProcess['exitInfo'];
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) => {
    child.once('exit', (code, signal) => {
      exitInfo = { code, signal };
      done(exitInfo);
    });
  });
  const baseUrl = `http://127.0.0.1:${port}`;
  const proc: PulseProcess = {
    child,
    pid: child.pid ?? 0,
    port,
    baseUrl,
    wsUrl: `ws://127.0.0.1:${port}/ws`,
    stdout,
    stderr,
    exited,
    get exitInfo() {
      return exitInfo;
    },
    kill(signal: NodeJS.Signals = 'SIGTERM') {
      child.kill(signal);
    },
    logs(text: string) {
      const found: Record<string, unknown>[] = [];
      for (const line of stdout) {
        if (!line.includes(text)) continue;
        try {
          const entry = JSON.parse(line) as Record<string, unknown>;
          if (typeof entry.msg === 'string' && entry.msg.includes(text)) found.push(entry);
        } catch {
          // not a log line
        }
      }
      return found;
    },
    async stop() {
      if (!exitInfo) child.kill('SIGKILL');
      await exited;
    },
  };

  const timeoutMs = options.timeoutMs ?? 45_000;
  const deadline = Date.now() + timeoutMs;
  const waitFor = async (path: string) => {
    for (;;) {
      if (exitInfo) {
        throw new Error(`pulse exited (${JSON.stringify(exitInfo)}) before ${path} answered 200:\n${[...stderr, ...stdout].slice(-20).join('\n')}`);
      }
      try {
        const res = await fetch(`${baseUrl}${path}`, { signal: AbortSignal.timeout(2_000) });
        await res.arrayBuffer();
        if (res.status === 200) return;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) {
        await proc.stop();
        throw new Error(`pulse did not answer 200 on ${path} within ${timeoutMs} ms:\n${[...stderr, ...stdout].slice(-20).join('\n')}`);
      }
      await new Promise((done) => setTimeout(done, 100));
    }
  };
  await waitFor('/healthz');
  if (options.waitReady ?? true) await waitFor('/readyz');
  return proc;
}
