// The parent's side of the load generator: a few forked processes, commands and replies over IPC.
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ChildMessage, ChurnResult, ChurnSample, ConnectResult, HoldReport, HoldStatus, ParentMessage, TicksResult } from './protocol.js';

const CHILD = fileURLToPath(new URL('./child.ts', import.meta.url));

/** Sockets one load-generator process may hold (per-process open-files limit is 20,000). */
export const MAX_SOCKETS_PER_PROCESS = 15_000;

type Reply<T extends ChildMessage['type']> = Extract<ChildMessage, { type: T }>;

export class LoadGenerator {
  private readonly children: ChildProcess[] = [];
  private readonly waiters = new Map<ChildProcess, { type: string; resolve: (m: ChildMessage) => void; reject: (e: Error) => void }>();
  /** Called for every churn sample as it arrives. */
  onSample: (sample: ChurnSample) => void = () => undefined;

  constructor(readonly processes: number) {
    for (let i = 0; i < processes; i++) {
      const child = fork(CHILD, [], {
        execArgv: ['--import', 'tsx'],
        serialization: 'advanced',
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      });
      child.on('message', (message: ChildMessage) => {
        if (message.type === 'churnSample') {
          this.onSample(message);
          return;
        }
        const waiter = this.waiters.get(child);
        if (!waiter) return;
        if (message.type === 'error') {
          this.waiters.delete(child);
          waiter.reject(new Error(`load generator: ${message.message}`));
        } else if (message.type === waiter.type) {
          this.waiters.delete(child);
          waiter.resolve(message);
        }
      });
      child.on('exit', (code, signal) => {
        const waiter = this.waiters.get(child);
        this.waiters.delete(child);
        waiter?.reject(new Error(`load generator process exited (${code ?? signal})`));
      });
      this.children.push(child);
    }
  }

  private ask<T extends ChildMessage['type']>(child: ChildProcess, message: ParentMessage, replyType: T, timeoutMs: number): Promise<Reply<T>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(child);
        reject(new Error(`load generator: no '${replyType}' reply within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.set(child, {
        type: replyType,
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m as Reply<T>);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      child.send(message);
    });
  }

  get pids(): number[] {
    return this.children.map((c) => c.pid ?? 0).filter((pid) => pid > 0);
  }

  /** Opens `total` clients spread evenly over the processes; resolves when every one is welcomed or failed. */
  async connect(url: string, total: number, localAddresses: string[], ratePerSecond: number, timeoutMs = 30_000): Promise<ConnectResult> {
    const n = this.children.length;
    // The children's own connect deadline (max(2 min, 10× nominal)) plus the last handshakes' timeout.
    const budget = Math.max(120_000, (total / ratePerSecond) * 10_000) + timeoutMs + 20_000;
    const results = await Promise.all(
      this.children.map((child, i) => {
        const count = Math.floor(total / n) + (i < total % n ? 1 : 0);
        const firstIndex = i * Math.floor(total / n) + Math.min(i, total % n);
        return this.ask(
          child,
          { cmd: 'connect', url, count, firstIndex, localAddresses, ratePerSecond: ratePerSecond / n, maxInFlight: 256, timeoutMs },
          'connected',
          budget,
        );
      }),
    );
    const errors: Record<string, number> = {};
    for (const r of results) for (const [k, v] of Object.entries(r.errors)) errors[k] = (errors[k] ?? 0) + v;
    return {
      type: 'connected',
      ok: results.reduce((s, r) => s + r.ok, 0),
      failed: results.reduce((s, r) => s + r.failed, 0),
      errors,
      durationMs: Math.max(...results.map((r) => r.durationMs)),
      handshakeMs: Float64Array.from(results.flatMap((r) => Array.from(r.handshakeMs))),
    };
  }

  ticks(windowStart: number, windowEnd: number): Promise<TicksResult[]> {
    return Promise.all(this.children.map((child) => this.ask(child, { cmd: 'ticks', windowStart, windowEnd }, 'ticks', 60_000)));
  }

  async close(): Promise<number> {
    const replies = await Promise.all(this.children.map((child) => this.ask(child, { cmd: 'close' }, 'closed', 60_000)));
    return replies.reduce((s, r) => s + r.closed, 0);
  }

  churn(url: string, loops: number, seconds: number, localAddresses: string[], sampleEvery: number): Promise<ChurnResult[]> {
    const n = this.children.length;
    return Promise.all(
      this.children.map((child, i) => {
        const count = Math.floor(loops / n) + (i < loops % n ? 1 : 0);
        const firstIndex = i * Math.floor(loops / n) + Math.min(i, loops % n);
        return this.ask(
          child,
          { cmd: 'churn', url, loops: count, firstIndex, seconds, localAddresses, sampleEvery },
          'churn',
          seconds * 1000 + 60_000,
        );
      }),
    );
  }

  /** Opens `total` reconnecting PulseClients (users bench-0 …) spread over the processes; resolves with how many are open. */
  async hold(url: string, total: number, ratePerSecond: number, timeoutMs: number): Promise<{ ok: number; failed: number; durationMs: number }> {
    const n = this.children.length;
    const results = await Promise.all(
      this.children.map((child, i) => {
        const count = Math.floor(total / n) + (i < total % n ? 1 : 0);
        const firstIndex = i * Math.floor(total / n) + Math.min(i, total % n);
        return this.ask(child, { cmd: 'hold', url, count, firstIndex, ratePerSecond: ratePerSecond / n, timeoutMs }, 'holding', timeoutMs + 30_000);
      }),
    );
    return {
      ok: results.reduce((s, r) => s + r.ok, 0),
      failed: results.reduce((s, r) => s + r.failed, 0),
      durationMs: Math.max(...results.map((r) => r.durationMs)),
    };
  }

  /** How many of the held PulseClients are open now. */
  async holdStatus(): Promise<{ clients: number; open: number }> {
    const replies: HoldStatus[] = await Promise.all(this.children.map((child) => this.ask(child, { cmd: 'holdStatus' }, 'holdStatus', 10_000)));
    return { clients: replies.reduce((s, r) => s + r.clients, 0), open: replies.reduce((s, r) => s + r.open, 0) };
  }

  holdReports(): Promise<HoldReport[]> {
    return Promise.all(this.children.map((child) => this.ask(child, { cmd: 'holdReport' }, 'holdReport', 30_000)));
  }

  /** Ends every process (their sockets close with them). */
  async shutdown(): Promise<void> {
    await Promise.all(
      this.children.map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            const timer = setTimeout(() => {
              child.kill('SIGKILL');
              resolve();
            }, 5000);
            child.once('exit', () => {
              clearTimeout(timer);
              resolve();
            });
            if (child.connected) child.send({ cmd: 'exit' } satisfies ParentMessage);
            else child.kill('SIGTERM');
          }),
      ),
    );
  }
}
