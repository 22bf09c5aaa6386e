// Multi-process mode (PULSE_WORKERS > 1): the primary forks N workers that share the port
// through node:cluster. Each worker is a full Pulse and a presence instance of its own. The
// primary restarts a worker that dies and drains them all on SIGTERM/SIGINT.

import cluster, { type Worker } from 'node:cluster';
import type { Config } from './config.js';

/** A worker that keeps crashing is restarted at most this often. */
const RESTART_MIN_INTERVAL_MS = 1_000;

export function runPrimary(config: Config): void {
  const log = (level: 'info' | 'warn' | 'error', msg: string, extra: object = {}) => {
    process.stdout.write(`${JSON.stringify({ level, time: Date.now(), pid: process.pid, role: 'primary', msg, ...extra })}\n`);
  };
  let stopping = false;
  const lastStart = new Map<number, number>();

  const fork = (slot: number) => {
    const worker = cluster.fork({ PULSE_WORKER_SLOT: String(slot) });
    lastStart.set(slot, Date.now());
    worker.on('exit', (code, signal) => {
      if (stopping) return;
      log('error', 'worker died; restarting', { slot, workerPid: worker.process.pid, code, signal });
      const wait = Math.max(0, RESTART_MIN_INTERVAL_MS - (Date.now() - (lastStart.get(slot) ?? 0)));
      setTimeout(() => !stopping && fork(slot), wait);
    });
  };
  for (let slot = 0; slot < config.workers; slot++) fork(slot);
  log('info', 'primary started', { workers: config.workers, port: config.port });

  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    log('info', 'draining workers', { signal });
    const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined);
    let alive = workers.length;
    if (alive === 0) process.exit(0);
    let failed = false;
    for (const worker of workers) {
      worker.once('exit', (code) => {
        if (code !== 0) failed = true;
        if (--alive === 0) process.exit(failed ? 1 : 0);
      });
      worker.process.kill('SIGTERM');
    }
    setTimeout(() => {
      log('error', 'workers did not stop in time; exiting');
      process.exit(1);
    }, config.shutdownTimeoutMs + 1_500).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
