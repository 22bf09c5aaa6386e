// A client that takes a `users` snapshot and then applies the presence messages that follow must
// end up exact (docs/design.md §3), even when a user came and went, or went and came back, within the
// second of the snapshot: such a user must then appear in `left` (or `joined`), else the snapshot's
// ghost (or gap) would stay in the client's list for good.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { startPulse, type RunningPulse } from '../helpers/pulse.js';
import { connectClient, type PresenceMessage, type TestClient } from '../helpers/ws-client.js';

/** Runs `steps` right after a tick; true when no tick came in between (else the case did not happen within one second). */
async function withinOneSecond(observer: TestClient, steps: () => Promise<void>): Promise<number | undefined> {
  await observer.waitFor('time', () => true, { since: observer.mark(), timeoutMs: 5_000 });
  const mark = observer.mark();
  await steps();
  return observer.messages.slice(mark).some((m) => m.type === 'time') ? undefined : mark;
}

describe('users snapshot plus presence messages', { timeout: 90_000 }, () => {
  test('a user who came and went, or went and came back, within the snapshot second is reported', async () => {
    // Embedded database: presence here is in memory only; no PostgreSQL needed.
    let server: RunningPulse | undefined;
    const clients: TestClient[] = [];
    try {
      server = await startPulse({});
      await server.ready(); // the embedded database boots on the event loop: let it finish before timing ticks
      const srv = server;
      const on = async (name: string) => {
        const client = await connectClient(`${srv.wsUrl}?name=${name}&presence=0`);
        clients.push(client);
        return client;
      };
      const observer = await connectClient(`${srv.wsUrl}?name=observer`);
      clients.push(observer);
      let back = await on('back');

      // Came and went: the snapshot holds "flash", so a later message must say it left.
      let flashMark: number | undefined;
      for (let attempt = 0; attempt < 5 && flashMark === undefined; attempt++) {
        flashMark = await withinOneSecond(observer, async () => {
          const flash = await on('flash');
          await observer.trackPresence();
          assert.ok(observer.presenceView!.has('flash'), 'the snapshot holds flash');
          await flash.close(1000);
        });
      }
      assert.notEqual(flashMark, undefined, 'the steps fitted within one second in 5 attempts');
      const left = await observer.waitFor<PresenceMessage>('presence', (m) => m.left.some((u) => u.id === 'flash'), { since: flashMark, timeoutMs: 3_000 });
      assert.equal(left.online, 2);
      assert.deepEqual([...observer.presenceView!.keys()].sort(), ['back', 'observer'], 'no ghost after applying the presence message');

      // Went and came back: the snapshot misses "back", so a later message must say it joined.
      let backMark: number | undefined;
      for (let attempt = 0; attempt < 5 && backMark === undefined; attempt++) {
        backMark = await withinOneSecond(observer, async () => {
          await back.close(1000);
          await observer.trackPresence();
          assert.ok(!observer.presenceView!.has('back'), 'the snapshot misses back');
          back = await on('back');
        });
      }
      assert.notEqual(backMark, undefined, 'the steps fitted within one second in 5 attempts');
      await observer.waitFor<PresenceMessage>('presence', (m) => m.joined.some((u) => u.id === 'back'), { since: backMark, timeoutMs: 3_000 });
      assert.deepEqual([...observer.presenceView!.keys()].sort(), ['back', 'observer'], 'no gap after applying the presence message');
      const reply = await observer.users();
      assert.deepEqual(reply.users.map((u) => u.id), ['back', 'observer']);
    } finally {
      for (const client of clients) client.terminate();
      await server?.stop();
    }
  });
});
