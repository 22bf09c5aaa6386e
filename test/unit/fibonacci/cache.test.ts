import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StringLruCache } from '../../../src/fibonacci/cache.js';

test('keeps entries within the byte bound, evicting the least recently used', () => {
  const cache = new StringLruCache<number>(10);
  cache.set(1, 'aaaa');
  cache.set(2, 'bbbb');
  assert.equal(cache.bytes, 8);
  assert.equal(cache.get(1), 'aaaa'); // 1 is now the most recently used
  cache.set(3, 'cccc'); // 12 bytes would not fit: 2 goes
  assert.equal(cache.get(2), undefined);
  assert.equal(cache.get(1), 'aaaa');
  assert.equal(cache.get(3), 'cccc');
  assert.equal(cache.bytes, 8);
  assert.equal(cache.size, 2);
});

test('a value larger than the whole bound is not stored and evicts nothing', () => {
  const cache = new StringLruCache<number>(5);
  cache.set(1, 'abc');
  cache.set(2, 'abcdef');
  assert.equal(cache.has(2), false);
  assert.equal(cache.get(1), 'abc');
  assert.equal(cache.bytes, 3);
});

test('replacing a key accounts for the old value', () => {
  const cache = new StringLruCache<number>(10);
  cache.set(1, 'aaaaaaaa');
  cache.set(1, 'bb');
  assert.equal(cache.bytes, 2);
  assert.equal(cache.get(1), 'bb');
  cache.set(2, 'cccccccc');
  assert.equal(cache.bytes, 10);
  assert.equal(cache.size, 2);
});

test('a zero bound stores nothing; clear empties', () => {
  const off = new StringLruCache<number>(0);
  off.set(1, 'a');
  assert.equal(off.size, 0);
  const cache = new StringLruCache<number>(100);
  cache.set(1, 'abc');
  cache.clear();
  assert.equal(cache.size, 0);
  assert.equal(cache.bytes, 0);
  assert.equal(cache.get(1), undefined);
});

test('eviction may remove several entries to make room for one', () => {
  const cache = new StringLruCache<string>(10);
  for (const key of ['a', 'b', 'c', 'd', 'e']) cache.set(key, 'xx');
  cache.set('big', 'yyyyyyyy');
  assert.deepEqual(['a', 'b', 'c', 'd', 'e'].map((k) => cache.has(k)), [false, false, false, false, true]);
  assert.equal(cache.bytes, 10);
});
