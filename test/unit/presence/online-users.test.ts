import assert from 'node:assert/strict';
import { test } from 'node:test';
import { OnlineUsers } from '../../../src/presence/online-users.js';

test('a user is online while any session is open, on any instance', () => {
  const online = new OnlineUsers();
  online.apply('alice', 'alice', 1, 1000);
  online.applyRemote('i2', [['alice', 'alice', 1, 2000]]);
  assert.equal(online.get('alice')?.sessions, 2);
  online.apply('alice', 'alice', -1, 3000);
  assert.equal(online.count, 1, 'still online through the other instance');
  online.dropRemote('i2');
  assert.equal(online.count, 0);
});

test('changes report who joined and who left since the last call, not who came and went', () => {
  const online = new OnlineUsers();
  online.apply('bob', 'bob', 1, 0);
  assert.deepEqual(online.takeChanges(100), { online: 1, joined: [{ id: 'bob', name: 'bob' }], left: [], joinedCount: 1, leftCount: 0 });
  online.apply('flash', 'flash', 1, 0);
  online.apply('flash', 'flash', -1, 0);
  online.apply('bob', 'bob', 1, 0); // a second tab is not a join
  assert.equal(online.takeChanges(100), undefined);
  online.apply('bob', 'bob', -2, 0);
  assert.deepEqual(online.takeChanges(100), { online: 0, joined: [], left: [{ id: 'bob', name: 'bob' }], joinedCount: 0, leftCount: 1 });
});

test('changes are capped per list but counted in full', () => {
  const online = new OnlineUsers();
  for (let i = 0; i < 250; i++) online.apply(`u${i}`, `u${i}`, 1, 0);
  const changes = online.takeChanges(100)!;
  assert.equal(changes.joined.length, 100);
  assert.equal(changes.joinedCount, 250);
});

test('a snapshot replaces what was known of a remote instance', () => {
  const online = new OnlineUsers();
  online.applyRemote('i2', [['a', 'a', 2, 0], ['b', 'b', 1, 0]]);
  online.takeChanges(100);
  online.replaceRemote('i2', [{ userId: 'a', name: 'a', sessions: 1, sinceMs: 0 }, { userId: 'c', name: 'c', sessions: 1, sinceMs: 0 }]);
  assert.equal(online.get('a')?.sessions, 1);
  assert.equal(online.get('b'), undefined);
  const changes = online.takeChanges(100)!;
  assert.deepEqual(changes.joined.map((u) => u.id), ['c']);
  assert.deepEqual(changes.left.map((u) => u.id), ['b']);
});

test('a late or repeated remote close never drives a count below zero', () => {
  const online = new OnlineUsers();
  online.apply('a', 'a', 1, 0);
  online.applyRemote('i2', [['a', 'a', -1, 0]]);
  assert.equal(online.get('a')?.sessions, 1, 'the local session is untouched');
});

test('list is ordered by name and pages with an after cursor', () => {
  const online = new OnlineUsers();
  for (const name of ['delta', 'alpha', 'charlie', 'bravo']) online.apply(name, name, 1, 0);
  assert.deepEqual(online.list(2).users.map((u) => u.name), ['alpha', 'bravo']);
  assert.equal(online.list(2).truncated, true);
  assert.deepEqual(online.list(2, 'bravo').users.map((u) => u.name), ['charlie', 'delta']);
  assert.equal(online.list(2, 'bravo').truncated, false);
  online.apply('bravo', 'bravo', -1, 0);
  assert.deepEqual(online.list(10, 'bravo').users.map((u) => u.name), ['charlie', 'delta'], 'a cursor whose user left still pages');
});

test('leave grace: a user whose last session closed stays online until the grace ends, then leaves', () => {
  const online = new OnlineUsers(3_000);
  online.apply('ada', 'Ada', 1, 0);
  online.takeChanges(100, 0);
  online.apply('ada', 'Ada', -1, 1_000);
  assert.equal(online.takeChanges(100, 1_000), undefined, 'no left yet');
  assert.equal(online.count, 1);
  assert.deepEqual(online.list(10).users.map((u) => [u.id, u.sessions]), [['ada', 0]], 'listed with 0 sessions meanwhile');
  assert.equal(online.takeChanges(100, 3_999), undefined);
  assert.deepEqual(online.takeChanges(100, 4_000), { online: 0, joined: [], left: [{ id: 'ada', name: 'Ada' }], joinedCount: 0, leftCount: 1 });
  assert.equal(online.count, 0);
});

test('leave grace: coming back within it, on any instance, cancels the leave and sends no join', () => {
  const online = new OnlineUsers(3_000);
  online.apply('ada', 'Ada', 1, 0);
  online.applyRemote('b', [['bob', 'Bob', 1, 0]]);
  online.takeChanges(100, 0);
  // A rolling deploy: this instance's user and instance b's user drop, and reconnect elsewhere.
  online.apply('ada', 'Ada', -1, 1_000);
  online.dropRemote('b');
  online.applyRemote('c', [['ada', 'Ada', 1, 1_500], ['bob', 'Bob', 1, 1_600]]);
  assert.equal(online.takeChanges(100, 2_000), undefined);
  assert.equal(online.takeChanges(100, 10_000), undefined, 'no left later either');
  assert.deepEqual(online.list(10).users.map((u) => [u.id, u.sessions, u.sinceMs]), [['ada', 1, 0], ['bob', 1, 0]], 'online since the first time');
});

test('leave grace: users leave in the order they went, each after its own grace', () => {
  const online = new OnlineUsers(1_000);
  for (const id of ['a', 'b', 'c']) online.apply(id, id, 1, 0);
  online.takeChanges(100, 0);
  online.apply('a', 'a', -1, 100);
  online.apply('b', 'b', -1, 500);
  online.apply('a', 'a', 1, 600); // a is back
  online.apply('a', 'a', -1, 700); // and gone again: its grace starts over
  online.apply('c', 'c', -1, 800);
  assert.deepEqual(online.takeChanges(100, 1_500)?.left.map((u) => u.id), ['b']);
  assert.deepEqual(online.takeChanges(100, 1_750)?.left.map((u) => u.id), ['a']);
  assert.deepEqual(online.takeChanges(100, 1_800)?.left.map((u) => u.id), ['c']);
});

test('leave grace: a remote leave waits its grace from its arrival, whatever the other host stamped on it', () => {
  const online = new OnlineUsers(3_000);
  online.applyRemote('b', [['bob', 'Bob', 1, 0]], 0);
  online.takeChanges(100, 0);
  // Instance b's clock is 10 s behind ours (or its batch arrived late): the leave is stamped 0.
  online.applyRemote('b', [['bob', 'Bob', -1, 0]], 10_000);
  assert.equal(online.takeChanges(100, 10_000), undefined, 'still within the grace on arrival');
  assert.equal(online.takeChanges(100, 12_999), undefined);
  assert.deepEqual(online.takeChanges(100, 13_000)?.left, [{ id: 'bob', name: 'Bob' }]);
});

test('no leave grace (0): a user leaves at once, as before', () => {
  const online = new OnlineUsers(0);
  online.apply('ada', 'Ada', 1, 0);
  online.takeChanges(100, 0);
  online.apply('ada', 'Ada', -1, 1);
  assert.deepEqual(online.takeChanges(100, 1)?.left, [{ id: 'ada', name: 'Ada' }]);
});
