// The client's view of who is online: a snapshot, then presence messages applied to it.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { OnlineList } from '../../../src/client/online-list.js';

const user = (id: string, name = id.toUpperCase()) => ({ id, name, sessions: 1, since: '2026-01-01T00:00:00.000Z' });
const ids = (list: OnlineList) => list.list.map((u) => u.id);

test('a snapshot, then joins and leaves, ordered by name', () => {
  const list = new OnlineList();
  assert.equal(list.complete, false);
  list.applySnapshot({ online: 2, users: [user('bob'), user('ada')] });
  assert.deepEqual(ids(list), ['ada', 'bob']);
  assert.equal(list.complete, true);
  list.applyPresence({ type: 'presence', online: 3, joined: [{ id: 'cy', name: 'Cy' }], left: [] });
  list.applyPresence({ type: 'presence', online: 2, joined: [], left: [{ id: 'ada', name: 'ADA' }] });
  assert.deepEqual(ids(list), ['bob', 'cy']);
  assert.equal(list.count, 2);
  assert.deepEqual(list.list[1], { id: 'cy', name: 'Cy' }, 'a joined user: no sessions or since until a snapshot');
});

test('presence messages before the snapshot are older than it and are ignored', () => {
  const list = new OnlineList();
  list.applyPresence({ type: 'presence', online: 1, joined: [{ id: 'ghost', name: 'G' }], left: [] });
  list.applySnapshot({ online: 1, users: [user('ada')] });
  assert.deepEqual(ids(list), ['ada']);
  list.expectSnapshot();
  list.applyPresence({ type: 'presence', online: 2, joined: [{ id: 'early', name: 'E' }], left: [] });
  assert.deepEqual(ids(list), ['ada'], 'waiting for the snapshot asked for');
});

test('a truncated message leaves the list partial and asks for a snapshot', () => {
  const list = new OnlineList();
  list.applySnapshot({ online: 1, users: [user('ada')] });
  const wantsSnapshot = list.applyPresence({ type: 'presence', online: 500, joined: [{ id: 'x', name: 'X' }], left: [], truncated: true, joinedCount: 499, leftCount: 0 });
  assert.equal(wantsSnapshot, true);
  assert.equal(list.complete, false);
  assert.equal(list.count, 500);
  list.applySnapshot({ online: 2, users: [user('ada'), user('x')], truncated: true });
  assert.equal(list.complete, false, 'a truncated users reply is partial too');
});

test('after a drop the list stays for display, marked partial, until the next snapshot', () => {
  const list = new OnlineList();
  list.applySnapshot({ online: 1, users: [user('ada')] });
  list.markStale();
  assert.deepEqual(ids(list), ['ada']);
  assert.equal(list.complete, false);
  list.applyPresence({ type: 'presence', online: 0, joined: [], left: [{ id: 'ada', name: 'A' }] });
  assert.deepEqual(ids(list), ['ada'], 'a message from before the new snapshot changes nothing');
});
