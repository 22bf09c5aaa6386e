// The bench at CI size: correctness only (every answer right, no tick lost, the database exact
// after churn, every instance agreeing after presence-scale, nobody flickering in a rolling deploy),
// never speed. Runs Pulse (built into dist/ if needed) and the bare-ws reference.
// All three on PostgreSQL (TEST_DATABASE_URL: CI's, or the runner's throwaway one).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ensurePulseBuilt, type DbKind, type ServerKind } from '../../bench/lib/servers.js';
import { runChurn } from '../../bench/scenarios/churn.js';
import { deploySmokeOptions, runDeploy } from '../../bench/scenarios/deploy.js';
import { runFib } from '../../bench/scenarios/fib.js';
import { runPresenceScale } from '../../bench/scenarios/presence-scale.js';
import { runTicks } from '../../bench/scenarios/ticks.js';
import { TEST_DATABASE_URL } from '../helpers/database.js';

const db: DbKind = 'pg';
const pgAdminUrl = TEST_DATABASE_URL;
const servers: ServerKind[] = ['pulse', 'reference'];
const log = (): void => undefined;

test('bench smoke', { timeout: 600_000 }, async (t) => {
  ensurePulseBuilt(() => undefined);

  await t.test('ticks: 50 clients, 3 s: every tick arrives once', { timeout: 180_000 }, async () => {
    const report = await runTicks({ clients: 50, seconds: 3, workers: 1, db, pgAdminUrl, servers, connectRate: 500, log });
    for (const kind of servers) {
      const m = report.servers[kind];
      assert.ok(m, `${kind} measured`);
      assert.equal(m.connected, 50, `${kind}: all clients connected`);
      assert.ok(typeof m.ticksReceived === 'number' && m.ticksReceived > 0, `${kind}: ticks received`);
      assert.equal(m.ticksExpected, 150, `${kind}: 3 ticks expected per client`);
      assert.equal(m.ticksLost, 0, `${kind}: no tick lost`);
      assert.equal(m.ticksDuplicate, 0, `${kind}: no tick twice`);
    }
    assert.deepEqual(report.checks.failures, []);
  });

  await t.test('fib: 10 clients, 2 s: every answer right', { timeout: 180_000 }, async () => {
    const report = await runFib({ clients: 10, seconds: 2, largeSeconds: 2, largeCount: 3, db, pgAdminUrl, servers, log });
    for (const kind of servers) {
      const m = report.servers[kind];
      assert.ok(m, `${kind} measured`);
      assert.ok(typeof m.smallAnswers === 'number' && m.smallAnswers > 0, `${kind}: small-n answers`);
      assert.equal(m.smallWrong, 0, `${kind}: small-n answers right (${String(m.errorSample)})`);
      assert.equal(m.largeWrong, 0, `${kind}: big-n answers right (${String(m.errorSample)})`);
      assert.ok(typeof m.largeChecked === 'number' && m.largeChecked >= 5, `${kind}: big-n answers checked`);
      assert.equal(m.errors, 0, `${kind}: no error (${String(m.errorSample)})`);
    }
    assert.deepEqual(report.checks.failures, []);
  });

  await t.test('churn: 2 loops, 2 s: the database is exact afterwards', { timeout: 180_000 }, async () => {
    const report = await runChurn({ loops: 2, seconds: 2, pgAdminUrl, servers, log });
    const pulse = report.servers.pulse;
    assert.ok(pulse, 'pulse measured');
    assert.ok(typeof pulse.cycles === 'number' && pulse.cycles > 0, 'cycles completed');
    assert.equal(pulse.failures, 0, `no failed cycle ${JSON.stringify(pulse.errors)}`);
    assert.equal(pulse.duplicateWelcomeIds, 0, 'every welcome has its own sessionId');
    assert.equal(pulse.dbConnectedUsers, 0, 'connected_users is empty');
    assert.equal(pulse.dbMissing, 0, 'every welcomed session has its row');
    assert.equal(pulse.dbExtra, 0, 'no row for a session never welcomed');
    assert.equal(pulse.dbOpen, 0, 'every session row is closed');
    assert.equal(pulse.dbExact, true, 'database exact');
    const reference = report.servers.reference;
    assert.ok(reference && typeof reference.cycles === 'number' && reference.cycles > 0, 'reference cycles completed');
    assert.deepEqual(report.checks.failures, []);
  });

  await t.test('presence-scale: 2 instances, one step: every join seen on the other, both agree, the database exact', { timeout: 120_000 }, async () => {
    const report = await runPresenceScale({ instances: 2, sessions: 100, rates: [400], seconds: 2, warmupSeconds: 1, pgAdminUrl, log });
    const pulse = report.servers.pulse;
    const [step] = report.steps ?? [];
    assert.ok(pulse && step, 'one step measured');
    assert.ok(typeof step.absorbedPerSecond === 'number' && step.absorbedPerSecond > 0, 'events absorbed');
    assert.equal(step.failedBatches, 0, 'no failed batch');
    assert.equal(step.crossSeenPercent, 100, 'every probe join seen on the other instance');
    assert.equal(pulse.instancesAgree, true, 'both instances see every open session');
    assert.equal(pulse.dbExact, true, 'connected_users and the open sessions match memory');
    assert.deepEqual(report.checks.failures, []);
  });

  await t.test('deploy: 20 clients, 2 instances drained in turn: all back, no flicker, the database exact', { timeout: 120_000 }, async () => {
    const report = await runDeploy(deploySmokeOptions(pgAdminUrl, log));
    const pulse = report.servers.pulse;
    const reference = report.servers.reference;
    assert.ok(pulse && reference, 'both measured');
    for (const [kind, m] of [['pulse', pulse], ['reference', reference]] as const) {
      assert.equal(m.notBack, 0, `${kind}: every client back`);
      assert.ok(typeof m.drained === 'number' && m.drained >= 20, `${kind}: every client drained at least once (${String(m.drained)})`);
      assert.ok(typeof m.reconnectP99Ms === 'number' && m.reconnectP99Ms >= 0, `${kind}: reconnect time measured`);
    }
    assert.equal(pulse.flickers, 0, `no flicker (${String(pulse.flickerSample)})`);
    assert.equal(pulse.dbExact, true, String(pulse.dbChecks));
    assert.deepEqual(report.checks.failures, []);
  });
});
