// The session writer on fake time and a fake database: batching, retries and their backoff, the
// bytes bound of the queue and the resync from memory that replaces it after an overflow.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Db, Queryable } from '../../../src/db/driver.js';
import type { LiveSession } from '../../../src/presence/live-sessions.js';
import { SessionWriter, type WriterMetrics } from '../../../src/presence/session-writer.js';
import { FakeClock, settle } from '../../helpers/fake-clock.js';
import { silentLogger } from '../../helpers/logger.js';

interface Call {
  kind: 'batch' | 'resync' | 'other';
  params: unknown[];
  /** Fake monotonic ms at which the statement was sent. */
  at: number;
  ok?: boolean;
}

/**
 * A database that records every statement sent to it. `failing`: statements fail at once
 * (connection refused); `holding`: they wait until the test calls release().
 */
function fakeDb(clock: FakeClock) {
  const calls: Call[] = [];
  const state = { failing: false, holding: false };
  const held: ((ok: boolean) => void)[] = [];
  const db: Db = {
    kind: 'pg',
    query<R>(sql: string, params: unknown[] = [], prepareAs?: string) {
      const kind = prepareAs === 'pulse_write_batch' ? 'batch' : sql.includes('WITH live AS') ? 'resync' : 'other';
      const call: Call = { kind, params, at: clock.monotonic() };
      calls.push(call);
      const settleCall = (ok: boolean) => {
        call.ok = ok;
        return ok ? Promise.resolve([] as R[]) : Promise.reject(new Error('connection refused'));
      };
      if (state.holding) return new Promise<R[]>((resolve, reject) => held.push((ok) => settleCall(ok).then(resolve, reject)));
      return settleCall(!state.failing);
    },
    transaction: <T>(fn: (tx: Queryable & { exec(sql: string): Promise<void> }) => Promise<T>) => fn({ ...db, exec: async () => undefined }),
    listen: async () => undefined,
    close: async () => undefined,
  };
  /** Answers the oldest held statement. */
  const release = async (ok: boolean) => {
    const next = held.shift();
    assert.ok(next, 'a statement is waiting');
    next(ok);
    await settle();
  };
  return { db, calls, state, release };
}

/** What the successful batches wrote, in order: "<id> open", "<id> open+close <code>" or "<id> close <code>". */
function written(calls: Call[]): string[] {
  const rows: string[] = [];
  for (const call of calls) {
    if (call.kind !== 'batch' || !call.ok) continue;
    for (const o of JSON.parse(call.params[1] as string) as { id: string; closed_at?: string; code?: number | null }[]) {
      rows.push(o.closed_at === undefined ? `${o.id} open` : `${o.id} open+close ${o.code}`);
    }
    for (const c of JSON.parse(call.params[2] as string) as { id: string; code: number | null }[]) rows.push(`${c.id} close ${c.code}`);
  }
  return rows;
}

function observed() {
  const seen = {
    written: 0,
    failed: 0,
    resyncs: [] as [string, number][],
    depth: [] as [events: number, bytes: number][],
    lag: [] as number[],
    errors: [] as string[],
  };
  const metrics: WriterMetrics = {
    batchSize: () => undefined,
    batchSeconds: () => undefined,
    eventLagSeconds: (s) => seen.lag.push(s),
    queueDepth: (events, bytes) => seen.depth.push([events, bytes]),
    written: (n) => (seen.written += n),
    failed: () => seen.failed++,
    resync: (reason, replaced) => seen.resyncs.push([reason, replaced]),
  };
  const log = { ...silentLogger, error: (_: object, msg: string) => void seen.errors.push(msg) };
  return { seen, metrics, log };
}

let nextId = 0;
const session = (userId: string, extra: Partial<LiveSession> = {}): LiveSession => ({
  id: `${userId}-${nextId++}`,
  userId,
  name: userId,
  protocol: 'json',
  remoteAddr: '127.0.0.1',
  userAgent: null,
  connectedAt: Date.UTC(2026, 0, 1),
  ...extra,
});

/** A writer on a fake clock, attached to a fake database a moment ago; `live` is its sessions in memory. */
async function setup(options: { maxQueueBytes?: number; maxBatch?: number; attach?: boolean } = {}) {
  const clock = new FakeClock();
  const fake = fakeDb(clock);
  const { seen, metrics, log } = observed();
  const live = new Map<string, LiveSession>();
  const writer = new SessionWriter({
    instance: { id: 'i', hostname: 'h', pid: 1 },
    liveSessions: () => live.values(),
    metrics,
    log,
    maxQueueBytes: options.maxQueueBytes ?? 1e6,
    maxBatch: options.maxBatch ?? 2_000,
    flushDelayMs: 10,
    clock,
  });
  if (options.attach ?? true) {
    writer.attach(fake.db);
    await clock.advance(1); // the flush that attach() starts, with nothing to write yet
  }
  /** Opens (and keeps in memory) or closes a session, as Presence does. */
  const open = (s: LiveSession) => {
    live.set(s.id, s);
    writer.opened(s);
    return s;
  };
  const close = (s: LiveSession, code: number | null = 1000, reason: string | null = null) => {
    live.delete(s.id);
    writer.closed(s, clock.now(), code, reason);
  };
  return { clock, ...fake, seen, live, writer, open, close };
}

/** Gaps between consecutive statements, in fake ms. */
const gaps = (calls: Call[]) => calls.slice(1).map((c, i) => c.at - calls[i]!.at);

test('events wait the flush delay, then share one statement; an open and close in one batch become one closed row', async () => {
  const { clock, calls, seen, writer, open, close } = await setup();
  const a = open(session('alice'));
  const b = open(session('bob'));
  close(b, 1000, 'bye');
  await clock.advance(9);
  assert.deepEqual(calls, [], 'nothing before the flush delay');
  await clock.advance(1);
  assert.equal(calls.length, 1);
  assert.deepEqual(written(calls), [`${a.id} open`, `${b.id} open+close 1000`]);
  assert.equal(seen.written, 2);
  assert.deepEqual(seen.depth.at(-1), [0, 0]);
  writer.stop();
});

test('events queued before the database is attached are written as soon as it is', async () => {
  const { clock, db, calls, writer, open } = await setup({ attach: false });
  const a = open(session('alice'));
  await clock.advance(1_000);
  assert.deepEqual(calls, []);
  writer.attach(db);
  await clock.advance(1);
  assert.deepEqual(written(calls), [`${a.id} open`]);
  writer.stop();
});

test('a failed batch is retried with what arrived meanwhile, nothing lost', async () => {
  const { clock, calls, state, seen, writer, open, close } = await setup();
  state.failing = true;
  const a = open(session('alice'));
  await clock.advance(10);
  assert.equal(seen.failed, 1);
  close(a, 4000);
  state.failing = false;
  await clock.advance(100);
  assert.deepEqual(written(calls), [`${a.id} open+close 4000`], 'the open and the later close land together');
  assert.equal(writer.queuedEvents, 0);
  writer.stop();
});

test('a failed batch goes back in front of the events that arrived while it was in flight', async () => {
  const { clock, calls, state, release, writer, open, close } = await setup({ maxBatch: 2 });
  state.holding = true;
  const a = open(session('a'));
  const b = open(session('b')); // a full batch: sent at once
  await clock.advance(1);
  assert.equal(calls.length, 1);
  close(a, 4001);
  const c = open(session('c'));
  const d = open(session('d'));
  await release(false);
  state.holding = false;
  await clock.advance(200);
  assert.deepEqual(
    written(calls),
    [`${a.id} open+close 4001`, `${b.id} open`, `${c.id} open`, `${d.id} open`],
    'the older events first (the close merged into its open), then the newer',
  );
  assert.deepEqual(
    calls.filter((call) => call.ok).map((call) => written([call]).map((row) => row.split(' ')[0])),
    [[a.id, b.id], [c.id, d.id]],
  );
  writer.stop();
});

test('retries back off from 100 ms, doubling up to 1 s, and start again from 100 ms after a success', async () => {
  const { clock, calls, state, writer, open } = await setup();
  state.failing = true;
  open(session('a'));
  await clock.advance(10 + 100 + 200 + 400 + 800 + 1000 + 1000);
  assert.deepEqual(gaps(calls), [100, 200, 400, 800, 1000, 1000]);
  state.failing = false;
  await clock.advance(1000);
  assert.equal(calls.at(-1)!.ok, true, 'written at the first retry after the database returned');

  state.failing = true;
  calls.length = 0;
  open(session('b'));
  await clock.advance(10 + 100 + 200);
  assert.deepEqual(gaps(calls), [100, 200]);
  writer.stop();
});

test('the backoff holds while a full batch keeps growing during an outage', async () => {
  const { clock, calls, state, writer, open } = await setup({ maxBatch: 3 });
  state.failing = true;
  for (let i = 0; i < 3; i++) open(session(`early${i}`));
  await clock.advance(1);
  assert.equal(calls.length, 1, 'a full batch is sent at once');
  for (let i = 0; i < 70; i++) {
    open(session(`late${i}`)); // one event every 10 ms, each one leaving a full batch queued
    await clock.advance(10);
  }
  assert.deepEqual(gaps(calls), [100, 200, 400], 'new events do not cut the wait short');
  writer.stop();
});

test('the queue counts bytes per event, variable-length fields included, and is back to zero once written', async () => {
  const { clock, state, seen, writer, open, close } = await setup();
  state.failing = true;
  const plain = open(session('u'));
  const [, plainBytes] = seen.depth.at(-1)!;
  const agent = open(session('v', { userAgent: 'x'.repeat(500) }));
  const [events, both] = seen.depth.at(-1)!;
  assert.equal(events, 2);
  assert.ok(plainBytes > 0 && both - plainBytes >= plainBytes + 500, `the user agent counts: ${plainBytes}, then ${both}`);
  close(plain, 4000, 'r'.repeat(300));
  const [eventsAfterClose, withClose] = seen.depth.at(-1)!;
  assert.equal(eventsAfterClose, 2, 'a close joins its session’s open');
  assert.ok(withClose - both >= 300, 'the close reason counts');
  await clock.advance(10); // fails: the batch is restored
  close(agent, 1000);
  state.failing = false;
  await clock.advance(100);
  assert.deepEqual(seen.depth.at(-1), [0, 0], 'nothing left over after a failure, a restore and a merge');
  writer.stop();
});

test('an overflow replaces the whole queue by one resync of the live sessions when the database returns', async () => {
  const maxQueueBytes = 2_000;
  const { clock, calls, state, seen, live, writer, open, close } = await setup({ maxQueueBytes });
  state.failing = true;
  const before: LiveSession[] = [];
  while (seen.errors.length === 0 && before.length < 1_000) before.push(open(session(`user${before.length}`)));
  assert.equal(seen.errors.length, 1, 'the queue overflowed');
  const beforeOverflow = seen.depth.at(-2)!;
  assert.ok(beforeOverflow[1] <= maxQueueBytes, 'the queue never held more than its bound');
  assert.equal(beforeOverflow[0], before.length - 1, 'the event that crossed the bound overflowed it');
  assert.ok(Math.max(...seen.depth.map(([, bytes]) => bytes)) <= maxQueueBytes);
  assert.deepEqual(seen.depth.at(-1), [0, 0], 'the queue is emptied');
  assert.equal(seen.errors.length, 1, 'the overflow is logged once');

  // During the rest of the outage: two new sessions, one of them closed again, and an old one closed.
  const x = open(session('x'));
  const y = open(session('y'));
  close(x, 4003);
  close(before[0]!, 4004);
  assert.deepEqual(seen.depth.at(-1), [0, 0], 'events after the overflow are not queued');
  assert.equal(seen.errors.length, 1);
  await clock.advance(2_000);
  assert.ok(calls.length > 1 && calls.every((c) => !c.ok));

  state.failing = false;
  await clock.advance(1_000);
  const resyncs = calls.filter((c) => c.kind === 'resync' && c.ok);
  assert.equal(resyncs.length, 1);
  const rows = JSON.parse(resyncs[0]!.params[1] as string) as { id: string }[];
  assert.deepEqual(rows.map((r) => r.id).sort(), [...live.keys()].sort(), 'exactly the sessions open in memory');
  assert.ok(rows.some((r) => r.id === y.id) && !rows.some((r) => r.id === x.id || r.id === before[0]!.id));
  assert.deepEqual(written(calls), [], 'no superseded event is written');
  assert.deepEqual(seen.resyncs, [['overflow', before.length + 4]], 'every superseded event is counted');

  // Back to normal: the next events are queued and written again.
  const z = open(session('z'));
  await clock.advance(10);
  assert.deepEqual(written(calls), [`${z.id} open`]);
  writer.stop();
});

test('events queued before a resync that fails are still counted as superseded when it succeeds', async () => {
  const { clock, calls, state, seen, writer, open } = await setup();
  state.failing = true;
  open(session('a'));
  open(session('b'));
  await clock.advance(10);
  writer.requestResync('swept');
  await clock.advance(100); // the resync fails; a and b are in no statement
  assert.equal(calls.at(-1)!.kind, 'resync');
  open(session('c'));
  state.failing = false;
  await clock.advance(200);
  assert.deepEqual(seen.resyncs, [['swept', 3]]);
  assert.deepEqual(written(calls), []);
  writer.stop();
});

test('an overflow while a resync is in flight is counted by the resync that follows it', async () => {
  const { clock, calls, state, release, seen, live, writer, open } = await setup({ maxQueueBytes: 1_000 });
  state.holding = true;
  writer.requestResync('requested');
  await clock.advance(1);
  assert.equal(calls.at(-1)!.kind, 'resync');
  let events = 0;
  while (seen.errors.length === 0 && events < 1_000) open(session(`user${events++}`)); // queued behind the snapshot, then overflowing
  open(session('after'));
  await release(true);
  state.holding = false;
  await clock.advance(1);
  assert.deepEqual(seen.resyncs, [['requested', 0], ['overflow', events + 1]]);
  const rows = JSON.parse(calls.at(-1)!.params[1] as string) as { id: string }[];
  assert.deepEqual(rows.map((r) => r.id).sort(), [...live.keys()].sort());
  writer.stop();
});

test('the lag figure runs on the monotonic clock and includes the wait through an outage', async () => {
  const { clock, state, seen, writer, open } = await setup();
  state.failing = true;
  open(session('a'));
  clock.stepWall(-60_000); // a wall-clock step changes no duration
  await clock.advance(10 + 100 + 200);
  state.failing = false;
  await clock.advance(400);
  assert.deepEqual(seen.lag, [0.71]);
  writer.stop();
});

test('while the database keeps up, each batch fits one notification and the rest follows at once; a backlog after a failure goes whole', async () => {
  const { clock, calls, state, writer, open } = await setup();
  const long = (i: number) => `a-user-with-a-rather-long-id-${String(i).padStart(6, '0')}`;
  for (let i = 0; i < 300; i++) open(session(long(i)));
  await clock.advance(50);
  const batches = calls.filter((c) => c.kind === 'batch');
  assert.ok(batches.length > 1, `split into ${batches.length} batches`);
  assert.deepEqual(gaps(batches), batches.slice(1).map(() => 1), 'each next batch at once (a zero delay is 1 ms here)');
  for (const call of batches) {
    const rows = JSON.parse(call.params[1] as string) as { user_id: string; name: string; at: string }[];
    // What the statement would announce for these rows, envelope included.
    const payload = JSON.stringify({ i: '00000000-0000-4000-8000-000000000000', s: 1e9, d: rows.map((r) => [r.user_id, r.name, 1, Date.parse(r.at)]) });
    assert.ok(Buffer.byteLength(payload) <= 7_900, `payload of ${rows.length} rows: ${Buffer.byteLength(payload)} bytes`);
  }
  assert.equal(written(calls).length, 300);

  state.failing = true;
  for (let i = 300; i < 600; i++) open(session(long(i)));
  await clock.advance(10);
  const failedAt = calls.length;
  state.failing = false;
  await clock.advance(100);
  const retried = calls.slice(failedAt).filter((c) => c.kind === 'batch' && c.ok);
  assert.equal((JSON.parse(retried[0]!.params[1] as string) as unknown[]).length, 300, 'the backlog in one batch, announced by a reload hint');
  writer.stop();
});

test('a resync after a reconnection keeps what is queued: sessions still closing stay open for their close, which keeps its code', async () => {
  const { clock, calls, seen, writer, open, close } = await setup();
  const a = open(session('alice'));
  const b = open(session('bob'));
  await clock.advance(10);
  close(b, 4001, 'bye');
  const c = open(session('carol'));
  writer.requestResync('reconnected');
  await clock.advance(1);
  const resync = calls.at(-1)!;
  assert.equal(resync.kind, 'resync');
  assert.deepEqual((JSON.parse(resync.params[1] as string) as { id: string }[]).map((r) => r.id).sort(), [a.id, c.id].sort());
  assert.deepEqual(resync.params[4], [b.id], 'bob is not closed by the snapshot');
  await clock.advance(10);
  assert.deepEqual(written(calls).slice(-2).sort(), [`${b.id} close 4001`, `${c.id} open`].sort(), "then what was queued");
  assert.deepEqual(seen.resyncs, [['reconnected', 0]]);
  // A resync with a known cause takes the place of a precautionary one not yet written.
  writer.requestResync('reconnected');
  writer.requestResync('swept');
  await clock.advance(1);
  assert.deepEqual(seen.resyncs.at(-1), ['swept', 0]);
  writer.stop();
});
