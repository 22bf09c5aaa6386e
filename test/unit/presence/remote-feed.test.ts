// The decisions Presence takes on the other instances' notifications, without a database:
// which batches apply, when an instance must be reloaded, what waits for a reload, what is
// forgotten and what is ignored.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseNotification, RemoteFeed, snapshotsOf, type FeedAction, type RemoteSnapshot } from '../../../src/presence/remote-feed.js';

const SELF = 'self';
const AT = Date.UTC(2026, 0, 1);

/** A batch notification of `instance`: users joining (+n) or leaving (-n), e.g. batch('a', 3, { bob: 1 }). */
function batch(instance: string, seq: number, deltas?: Record<string, number>, extra: Record<string, unknown> = {}): string {
  const d = deltas && Object.entries(deltas).map(([user, n]) => [user, user.toUpperCase(), n, AT]);
  return JSON.stringify({ i: instance, s: seq, ...(d ? { d } : {}), ...extra });
}

const snapshot = (seq: number, users: Record<string, number> = {}): RemoteSnapshot => ({
  seq,
  users: Object.entries(users).map(([userId, sessions]) => ({ userId, name: userId.toUpperCase(), sessions, sinceMs: AT })),
});

/** Actions as short lines: "apply a bob+1", "replace a bob=2", "forget a", "reload a gap", "resync-self", "malformed". */
function lines(actions: FeedAction[]): string[] {
  return actions.map((action) => {
    switch (action.type) {
      case 'apply':
        return `apply ${action.instance} ${action.deltas.map(([user, , n]) => `${user}${n > 0 ? '+' : ''}${n}`).join(',')}`;
      case 'replace':
        return `replace ${action.instance} ${action.users.map((u) => `${u.userId}=${u.sessions}`).join(',')}`.trimEnd();
      case 'forget':
        return `forget ${action.instance}`;
      case 'reload':
        return `reload ${action.instance} ${action.reason}`;
      default:
        return action.type;
    }
  });
}

/** A feed that already applied batches 1..`seq` of instance `a`. */
function feedAt(seq: number): RemoteFeed {
  const feed = new RemoteFeed(SELF);
  for (let s = 1; s <= seq; s++) assert.deepEqual(lines(feed.receive(batch('a', s, { [`u${s}`]: 1 }))), [`apply a u${s}+1`]);
  return feed;
}

test('batches in order are applied, from batch 1 of an instance not seen before', () => {
  const feed = new RemoteFeed(SELF);
  assert.deepEqual(lines(feed.receive(batch('a', 1, { bob: 1, carol: 2 }))), ['apply a bob+1,carol+2']);
  assert.deepEqual(lines(feed.receive(batch('a', 2, { bob: -1 }))), ['apply a bob-1']);
  assert.deepEqual(lines(feed.receive(batch('b', 1, { dave: 1 }))), ['apply b dave+1']);
  assert.deepEqual(lines(feed.receive(batch('a', 3, { erin: 1 }))), ['apply a erin+1']);
});

test('a missed batch number reloads that instance instead of applying past the gap', () => {
  const feed = feedAt(2);
  assert.deepEqual(lines(feed.receive(batch('a', 4, { bob: 1 }))), ['reload a gap']);
  // An instance first heard of after its batch 1 has earlier changes that were never seen.
  assert.deepEqual(lines(feed.receive(batch('b', 7, { bob: 1 }))), ['reload b gap']);
});

test('a reload hint (r:1, or a batch without deltas) reloads that instance', () => {
  const feed = feedAt(1);
  assert.deepEqual(lines(feed.receive(batch('a', 2, undefined, { r: 1 }))), ['reload a hint']);
  const other = feedAt(1);
  assert.deepEqual(lines(other.receive(batch('a', 2))), ['reload a hint']);
  // In order and with deltas, but flagged: still a reload (the batch was too big for NOTIFY).
  const flagged = feedAt(1);
  assert.deepEqual(lines(flagged.receive(batch('a', 2, { bob: 1 }, { r: 1 }))), ['reload a hint']);
});

test('notifications arriving during a reload wait for it and are replayed after its snapshot', () => {
  const feed = feedAt(2);
  assert.deepEqual(lines(feed.receive(batch('a', 5, { x: 1 }))), ['reload a gap']);
  assert.deepEqual(lines(feed.receive(batch('a', 6, { y: 1 }))), [], 'waits for the reload');
  assert.deepEqual(lines(feed.receive(batch('a', 7, { z: 1 }))), []);
  assert.deepEqual(lines(feed.receive(batch('b', 1, { dave: 1 }))), ['apply b dave+1'], 'other instances are not held up');
  // The snapshot already includes batch 6: only 7 is applied on top of it.
  assert.deepEqual(lines(feed.reloaded('a', snapshot(6, { x: 1, y: 1 }))), ['replace a x=1,y=1', 'apply a z+1']);
  assert.deepEqual(lines(feed.receive(batch('a', 8, { w: 1 }))), ['apply a w+1']);
});

test('a notification replayed after a reload that leaves a gap reloads again', () => {
  const feed = feedAt(1);
  feed.receive(batch('a', 3, { x: 1 }));
  feed.receive(batch('a', 9, { y: 1 }));
  assert.deepEqual(lines(feed.reloaded('a', snapshot(4, { x: 1 }))), ['replace a x=1', 'reload a gap']);
});

test('late and duplicate batch numbers are ignored', () => {
  const feed = feedAt(3);
  assert.deepEqual(lines(feed.receive(batch('a', 3, { u3: 1 }))), [], 'a duplicate');
  assert.deepEqual(lines(feed.receive(batch('a', 2, { u2: -1 }))), [], 'a late one');
  assert.deepEqual(lines(feed.receive(batch('a', 3, undefined, { r: 1 }))), [], 'a late hint');
  assert.deepEqual(lines(feed.receive(batch('a', 4, { u4: 1 }))), ['apply a u4+1']);
});

test('this instance’s own batches are ignored', () => {
  const feed = new RemoteFeed(SELF);
  assert.deepEqual(lines(feed.receive(batch(SELF, 1, { me: 1 }))), []);
  assert.deepEqual(lines(feed.receive(batch(SELF, 9, undefined, { r: 1 }))), []);
});

test('swept naming this instance asks for a resync; swept or stopped naming another forgets its users', () => {
  const feed = feedAt(2);
  feed.receive(batch('b', 1, { dave: 1 }));
  feed.receive(batch('c', 1, { erin: 1 }));
  assert.deepEqual(lines(feed.receive(JSON.stringify({ swept: [SELF] }))), ['resync-self']);
  assert.deepEqual(lines(feed.receive(JSON.stringify({ swept: ['a', SELF, 'b'] }))), ['forget a', 'resync-self', 'forget b']);
  assert.deepEqual(lines(feed.receive(JSON.stringify({ stopped: 'c' }))), ['forget c']);
  assert.deepEqual(lines(feed.receive(JSON.stringify({ stopped: SELF }))), [], 'its own stop is no news');
  assert.deepEqual(lines(feed.receive(JSON.stringify({ stopped: 'unknown' }))), [], 'nothing held, nothing to forget');
  // A forgotten instance that speaks again is reloaded, not patched from nothing.
  assert.deepEqual(lines(feed.receive(batch('a', 3, { u3: 1 }))), ['reload a gap']);
});

test('a stop or sweep of an instance being reloaded waits for that reload, so its snapshot cannot bring its users back', () => {
  const feed = feedAt(2);
  feed.receive(batch('a', 4, { x: 1 }));
  assert.deepEqual(lines(feed.receive(JSON.stringify({ stopped: 'a' }))), []);
  // The snapshot may predate the stop: it is applied, then the stop.
  assert.deepEqual(lines(feed.reloaded('a', snapshot(4, { x: 1 }))), ['replace a x=1', 'forget a']);

  const swept = feedAt(2);
  swept.receive(batch('a', 4, { x: 1 }));
  assert.deepEqual(lines(swept.receive(JSON.stringify({ swept: ['a', SELF] }))), ['resync-self'], 'this instance’s own part is not held up');
  assert.deepEqual(lines(swept.reloaded('a', snapshot(4, { x: 1 }))), ['replace a x=1', 'forget a']);
});

test('a reload that overlapped a full reload does not roll back the newer snapshot', () => {
  const feed = feedAt(1);
  assert.deepEqual(lines(feed.receive(batch('a', 3, { x: 1 }))), ['reload a gap']);
  feed.subscribed();
  assert.deepEqual(lines(feed.reloadedAll(new Map([['a', snapshot(5, { x: 1, y: 1 })]]))), ['replace a x=1,y=1']);
  assert.deepEqual(lines(feed.reloaded('a', snapshot(3, { x: 1 }))), [], 'older than what is held');
  assert.deepEqual(lines(feed.receive(batch('a', 6, { z: 1 }))), ['apply a z+1']);
});

test('a failed reload keeps what is held and reloads on that instance’s next notification; a gone instance is forgotten', () => {
  const feed = feedAt(2);
  feed.receive(batch('a', 4, { x: 1 }));
  assert.deepEqual(lines(feed.reloaded('a', 'failed')), []);
  assert.deepEqual(lines(feed.receive(batch('a', 5, { y: 1 }))), ['reload a gap'], 'the batch number is unknown now');
  assert.deepEqual(lines(feed.reloaded('a', 'gone')), ['forget a']);
  assert.deepEqual(lines(feed.reloaded('a', 'gone')), [], 'forgotten once');
});

test('a (re)subscription reloads every remote instance; everything arriving meanwhile waits for it', () => {
  const feed = feedAt(2);
  feed.receive(batch('b', 1, { dave: 1 }));
  assert.equal(feed.subscribed(), true);
  assert.equal(feed.subscribed(), false, 'one full reload at a time');
  assert.deepEqual(lines(feed.receive(batch('a', 3, { x: 1 }))), []);
  assert.deepEqual(lines(feed.receive(batch('c', 4, { y: 1 }))), []);
  assert.deepEqual(lines(feed.receive(JSON.stringify({ swept: [SELF] }))), []);
  // b is gone from the database, a and c are loaded; then the waiting notifications, by their batch numbers.
  assert.deepEqual(lines(feed.reloadedAll(new Map([['a', snapshot(3, { u1: 1, x: 1 })], ['c', snapshot(3, { erin: 1 })]]))), [
    'forget b',
    'replace a u1=1,x=1',
    'replace c erin=1',
    'apply c y+1',
    'resync-self',
  ]);
  assert.equal(feed.subscribed(), true);
});

test('a failed full reload replays what waited for it and can be tried again', () => {
  const feed = feedAt(1);
  feed.subscribed();
  feed.receive(batch('a', 2, { x: 1 }));
  assert.deepEqual(lines(feed.reloadedAll('failed')), ['apply a x+1']);
  assert.equal(feed.subscribed(), true);
});

test('malformed payloads are reported and change nothing', () => {
  const malformed = [
    'not json',
    'null',
    '5',
    '"text"',
    '[1,2]',
    '{}',
    '{"i":5,"s":1}',
    '{"i":"a"}',
    '{"i":"a","s":-1}',
    '{"i":"a","s":1.5}',
    '{"i":"a","s":"2"}',
    '{"i":"a","s":2,"d":5}',
    '{"i":"a","s":2,"d":[[1]]}',
    '{"i":"a","s":2,"d":[["bob","BOB","1",0]]}',
    '{"i":"a","s":2,"d":[["bob","BOB",1,"yesterday"]]}',
    '{"swept":"a"}',
    '{"swept":[1]}',
    '{"stopped":5}',
  ];
  const feed = feedAt(1);
  for (const payload of malformed) {
    assert.equal(parseNotification(payload), undefined, payload);
    assert.deepEqual(lines(feed.receive(payload)), ['malformed'], payload);
  }
  assert.deepEqual(lines(feed.receive(batch('a', 2, { bob: 1 }))), ['apply a bob+1'], 'the next batch is still in order');
});

test('snapshotsOf groups rows per instance, an instance without sessions included', () => {
  const since = new Date(AT);
  const snapshots = snapshotsOf(
    [
      { instance_id: 'a', seq: 4, user_id: 'bob', name: 'Bob', sessions: 2, since },
      { instance_id: 'b', seq: 9, user_id: null, name: null, sessions: 0, since: null },
      { instance_id: 'a', seq: 4, user_id: 'carol', name: null, sessions: 1, since: null },
    ],
    AT + 5,
  );
  assert.deepEqual(Object.fromEntries(snapshots), {
    a: {
      seq: 4,
      users: [
        { userId: 'bob', name: 'Bob', sessions: 2, sinceMs: AT },
        { userId: 'carol', name: 'carol', sessions: 1, sinceMs: AT + 5 },
      ],
    },
    b: { seq: 9, users: [] },
  });
});
