import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Db, Queryable } from '../../../src/db/driver.js';
import type { LiveSession } from '../../../src/presence/live-sessions.js';
import { SessionWriter, type WriterMetrics } from '../../../src/presence/session-writer.js';

interface Call {
  sql: string;
  params: unknown[];
}

/** A database that records statements and can be made to fail. */
function fakeDb() {
  const calls: Call[] = [];
  const state = { failing: false };
  const db: Db = {
    kind: 'pg',
    async query<R>(sql: string, params: unknown[] = []) {
      if (state.failing) throw new Error('connection refused');
      calls.push({ sql, params });
      return [] as R[];
    },
    transaction: <T>(fn: (tx: Queryable & { exec(sql: string): Promise<void> }) => Promise<T>) => fn({ ...db, exec: async () => undefined }),
    listen: async () => undefined,
    close: async () => undefined,
  };
  return { db, calls, state };
}

function counters() {
  const seen = { written: 0, failed: 0, resyncs: [] as string[], replaced: 0 };
  const metrics: WriterMetrics = {
    batchSize: () => undefined,
    batchSeconds: () => undefined,
    eventLagSeconds: () => undefined,
    queueDepth: () => undefined,
    written: (n) => (seen.written += n),
    failed: () => seen.failed++,
    resync: (reason, replaced) => {
      seen.resyncs.push(reason);
      seen.replaced += replaced;
    },
  };
  return { seen, metrics };
}

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
const session = (id: string, userId = 'alice'): LiveSession => ({
  id,
  userId,
  name: userId,
  protocol: 'json',
  remoteAddr: '127.0.0.1',
  userAgent: null,
  connectedAt: Date.now(),
});
const settle = (ms = 60) => new Promise((resolve) => setTimeout(resolve, ms));
const batches = (calls: Call[]) => calls.filter((c) => c.sql.includes('INSERT INTO sessions') && !c.sql.includes('live AS'));

test('many events become one statement; an open and close in one batch become one closed row', async () => {
  const { db, calls } = fakeDb();
  const { seen, metrics } = counters();
  const live = new Map<string, LiveSession>();
  const writer = new SessionWriter({ instance: { id: 'i', hostname: 'h', pid: 1 }, liveSessions: () => live.values(), metrics, log: quiet, maxQueueBytes: 1e6 });
  writer.attach(db);
  const a = session('a');
  const b = session('b');
  writer.opened(a);
  writer.opened(b);
  writer.closed(b, Date.now(), 1000, 'bye');
  await settle();
  assert.equal(batches(calls).length, 1);
  const opens = JSON.parse(batches(calls)[0]!.params[1] as string) as { id: string; closed_at?: string; code?: number }[];
  assert.deepEqual(opens.map((o) => [o.id, o.code ?? null]), [['a', null], ['b', 1000]]);
  assert.equal(seen.written, 2);
  writer.stop();
});

test('a failed batch is retried with what arrived meanwhile, nothing lost', async () => {
  const { db, calls, state } = fakeDb();
  const { seen, metrics } = counters();
  const writer = new SessionWriter({ instance: { id: 'i', hostname: 'h', pid: 1 }, liveSessions: () => [], metrics, log: quiet, maxQueueBytes: 1e6 });
  writer.attach(db);
  state.failing = true;
  const a = session('a');
  writer.opened(a);
  await settle(30);
  writer.closed(a, Date.now(), 4000, null);
  assert.ok(seen.failed >= 1);
  state.failing = false;
  await settle(1_200);
  const written = batches(calls).flatMap((c) => JSON.parse(c.params[1] as string) as { id: string; code?: number }[]);
  assert.deepEqual(written.map((o) => [o.id, o.code]), [['a', 4000]], 'the open and the later close land together');
  assert.equal(writer.queuedEvents, 0);
  writer.stop();
});

test('an overflowing queue is replaced by a rewrite of the open sessions from memory', async () => {
  const { db, calls, state } = fakeDb();
  const { seen, metrics } = counters();
  const live = new Map<string, LiveSession>();
  const writer = new SessionWriter({ instance: { id: 'i', hostname: 'h', pid: 1 }, liveSessions: () => live.values(), metrics, log: quiet, maxQueueBytes: 2_000 });
  writer.attach(db);
  state.failing = true;
  for (let i = 0; i < 50; i++) {
    const s = session(`s${i}`, `u${i}`);
    writer.opened(s);
    if (i % 2 === 0) live.set(s.id, s);
    else writer.closed(s, Date.now(), 1000, null);
  }
  state.failing = false;
  await settle(1_200);
  const resync = calls.find((c) => c.sql.includes('live AS'));
  assert.ok(resync, 'a resync statement was written');
  const rows = JSON.parse(resync.params[1] as string) as { id: string }[];
  assert.deepEqual(rows.map((r) => r.id).sort(), [...live.keys()].sort());
  assert.deepEqual(seen.resyncs, ['overflow']);
  assert.ok(seen.replaced > 0, 'the superseded events are counted');
  writer.stop();
});
