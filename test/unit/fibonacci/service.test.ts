import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { fibonacci } from '../../../src/fibonacci/core.js';
import { FibonacciService, type FibonacciAnswer, type FibonacciPath } from '../../../src/fibonacci/service.js';

const services: FibonacciService[] = [];
function service(options: ConstructorParameters<typeof FibonacciService>[0]): FibonacciService {
  const created = new FibonacciService({ maxThreads: 1, ...options });
  services.push(created);
  return created;
}
after(async () => {
  await Promise.all(services.map((s) => s.close()));
});

function expected(n: number): FibonacciAnswer {
  const value = fibonacci(n).toString();
  return { n, value, digits: value.replace('-', '').length };
}

function recorder(): { paths: FibonacciPath[]; observe: (path: FibonacciPath, seconds: number, n: number) => void } {
  const paths: FibonacciPath[] = [];
  return {
    paths,
    observe: (path, seconds) => {
      assert.ok(Number.isFinite(seconds) && seconds >= 0);
      paths.push(path);
    },
  };
}

// One worker-only pool shared by the tests below: each pool start loads tsx in its thread,
// which is slow on a busy machine. Tests read counters as differences.
const workerPaths: FibonacciPath[] = [];
const viaWorker = service({ cacheBytes: 0, inlineMaxN: 0, observe: (path) => workerPaths.push(path) });

const SAMPLE = [0, 1, -1, 2, -2, 10, -10, 93, -93, 94, -94, 95, -95, 1000, -1000, 4999, 5000, -5000, 5001, -5001, 12_345, -12_345, -12_346];

test('|n| <= 93 answers synchronously from the table', () => {
  const rec = recorder();
  const fib = service({ cacheBytes: 0, observe: rec.observe });
  for (let n = -93; n <= 93; n++) {
    const answer = fib.compute(n);
    assert.ok(!(answer instanceof Promise), `F(${n}) is synchronous`);
    assert.deepEqual({ ...answer }, expected(n));
  }
  assert.deepEqual({ ...(fib.compute(10) as FibonacciAnswer) }, { n: 10, value: '55', digits: 2 });
  assert.deepEqual({ ...(fib.compute(-10) as FibonacciAnswer) }, { n: -10, value: '-55', digits: 2 });
  assert.ok(rec.paths.every((p) => p === 'table'));
});

test('inline, worker and table paths all give the values of core.fibonacci', async () => {
  const inlineRec = recorder();
  const inline = service({ cacheBytes: 0, inlineMaxN: 1_000_000, observe: inlineRec.observe });
  workerPaths.length = 0;
  const tasksBefore = viaWorker.stats.workerTasks;
  for (const n of SAMPLE) {
    const a = inline.compute(n);
    assert.ok(!(a instanceof Promise), `inline F(${n}) is synchronous`);
    assert.deepEqual({ ...a }, expected(n), `inline F(${n})`);
    const pending = viaWorker.compute(n);
    if (Math.abs(n) > 93) assert.ok(pending instanceof Promise, `worker F(${n}) is a Promise`);
    assert.deepEqual({ ...(await pending) }, expected(n), `worker F(${n})`);
  }
  const big = SAMPLE.filter((n) => Math.abs(n) > 93).length;
  assert.equal(inlineRec.paths.filter((p) => p === 'inline').length, big);
  assert.equal(workerPaths.filter((p) => p === 'worker').length, big);
  assert.equal(viaWorker.stats.workerTasks - tasksBefore, big);
});

test('the default threshold keeps small n inline and sends large n to a worker', async () => {
  const rec = recorder();
  const fib = service({ cacheBytes: 0, observe: rec.observe });
  const small = fib.compute(1000);
  assert.ok(!(small instanceof Promise));
  const large = fib.compute(100_000);
  assert.ok(large instanceof Promise);
  assert.deepEqual({ ...(await large) }, expected(100_000));
  assert.deepEqual(rec.paths, ['inline', 'worker']);
});

test('negative n through the worker carries the sign of (-1)^(n+1)', async () => {
  const even = await viaWorker.compute(-20_000);
  const odd = await viaWorker.compute(-20_001);
  assert.deepEqual({ ...even }, expected(-20_000));
  assert.ok(even.value.startsWith('-'));
  assert.equal(even.digits, even.value.length - 1);
  assert.deepEqual({ ...odd }, expected(-20_001));
  assert.ok(!odd.value.startsWith('-'));
});

test('a worker result is cached by |n| and later answered synchronously, with either sign', async () => {
  const rec = recorder();
  const fib = service({ cacheBytes: 1_000_000, inlineMaxN: 100, observe: rec.observe });
  const first = await fib.compute(30_000);
  assert.equal(fib.stats.cacheEntries, 1);
  assert.equal(fib.stats.cacheBytes, first.digits);
  const again = fib.compute(30_000);
  assert.ok(!(again instanceof Promise), 'a cache hit is synchronous');
  assert.deepEqual({ ...again }, expected(30_000));
  const negative = fib.compute(-30_000);
  assert.ok(!(negative instanceof Promise));
  assert.deepEqual({ ...negative }, expected(-30_000));
  assert.deepEqual(rec.paths, ['worker', 'cache', 'cache']);
  assert.equal(fib.stats.workerTasks, 1);
  // Inline results are cheap to recompute and are not cached.
  fib.compute(500);
  assert.equal(fib.stats.cacheEntries, 1);
});

test('the cache stays within its byte bound', async () => {
  // Room for F(20000) (4,180 digits) but not also F(20001).
  const fib = service({ cacheBytes: 5000, inlineMaxN: 0 });
  await fib.compute(20_000);
  await fib.compute(20_001);
  assert.equal(fib.stats.cacheEntries, 1);
  assert.ok(fib.stats.cacheBytes <= 5000);
  assert.ok(!(fib.compute(20_001) instanceof Promise), 'the most recent result stayed');
  assert.ok(fib.compute(20_000) instanceof Promise, 'the older one was evicted');
});

test('cacheBytes 0 disables the cache', async () => {
  await viaWorker.compute(10_000);
  const again = viaWorker.compute(10_000);
  assert.ok(again instanceof Promise);
  await again;
  assert.equal(viaWorker.stats.cacheEntries, 0);
});

test('concurrent requests for the same |n| share one worker task', async () => {
  workerPaths.length = 0;
  const before = viaWorker.stats.workerTasks;
  const requests = [50_000, -50_000, 50_000, -50_000, 50_000].map((n) => viaWorker.compute(n));
  assert.equal(viaWorker.stats.workerTasks - before, 1);
  assert.equal(viaWorker.stats.inFlight, 1);
  const answers = await Promise.all(requests);
  assert.deepEqual(answers.map((a) => ({ ...a })), [50_000, -50_000, 50_000, -50_000, 50_000].map(expected));
  assert.equal(viaWorker.stats.workerTasks - before, 1);
  assert.equal(viaWorker.stats.inFlight, 0);
  assert.deepEqual(workerPaths, ['worker', 'worker', 'worker', 'worker', 'worker']);
  // Once settled, the next request (no cache here) is a new task.
  await viaWorker.compute(50_000);
  assert.equal(viaWorker.stats.workerTasks - before, 2);
});

test('F(1,000,000) through the service: 208,988 digits, equal to core', async () => {
  const answer = await viaWorker.compute(-1_000_000);
  assert.equal(answer.digits, 208_988);
  assert.equal(answer.value, fibonacci(-1_000_000).toString());
});

test('close() releases the pool; later worker requests reject, cheap paths still answer', async () => {
  const fib = new FibonacciService({ cacheBytes: 1_000_000, inlineMaxN: 100, maxThreads: 1 });
  await fib.compute(1_000);
  await fib.close();
  await fib.close(); // idempotent
  await assert.rejects(Promise.resolve(fib.compute(2_000)), /closed/);
  assert.deepEqual({ ...(fib.compute(10) as FibonacciAnswer) }, expected(10));
  assert.equal(fib.stats.inFlight, 0);
  // If the pool kept a thread alive, this test file would never exit and the runner would fail it.
});
