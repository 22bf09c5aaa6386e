// The probes and the scrape path of deploy/kubernetes against a real Pulse with the pod's settings
// (the ConfigMap) on PostgreSQL: readiness follows the database, liveness does not, so a database
// outage takes pods out of the Service without restarting them.

import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { IServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor';
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import type { IConfigMap } from 'kubernetes-models/v1/ConfigMap';
import type { IProbe } from 'kubernetes-models/v1/Probe';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { loadManifests, only } from '../helpers/kubernetes.js';
import { startPulse, type RunningPulse } from '../helpers/pulse.js';

const manifests = loadManifests();
const container = only<IDeployment>(manifests, 'Deployment').spec!.template.spec!.containers[0]!;
const settings = only<IConfigMap>(manifests, 'ConfigMap').data ?? {};
const scrapePaths = (only<IServiceMonitor>(manifests, 'ServiceMonitor').spec.endpoints ?? []).map((endpoint) => endpoint.path ?? '/metrics');

// The pod's settings, on a free loopback port and with quiet logs.
function podSettings(databaseUrl: string): Record<string, string> {
  return { ...settings, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent', DATABASE_URL: databaseUrl };
}

function probePath(probe: IProbe | undefined, name: string): string {
  const path = probe?.httpGet?.path;
  assert.ok(path, `the ${name} probe is an HTTP GET`);
  return path;
}

/** What the kubelet would see: success is a status from 200 to 399. */
async function probe(server: RunningPulse, path: string): Promise<{ ok: boolean; status: number; body: string }> {
  const response = await fetch(`${server.baseUrl}${path}`, { signal: AbortSignal.timeout(5_000) });
  return { ok: response.status >= 200 && response.status < 400, status: response.status, body: await response.text() };
}

/** A loopback port with nothing listening: a database that does not answer. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('Kubernetes probes on a real Pulse', () => {
  let database: TestDatabase;
  let server: RunningPulse;

  before(async () => {
    database = await createTestDatabase('pulse_k8s');
    server = await startPulse(podSettings(database.url));
    await server.ready();
  });

  after(async () => {
    await server?.stop();
    await database?.drop();
  });

  test('with the database, the startup, readiness and liveness probes succeed and the scrape path serves metrics', async () => {
    for (const [name, spec] of [['startup', container.startupProbe], ['readiness', container.readinessProbe], ['liveness', container.livenessProbe]] as const) {
      const answer = await probe(server, probePath(spec, name));
      assert.ok(answer.ok, `${name} probe: ${answer.status} ${answer.body}`);
    }
    assert.ok(scrapePaths.length > 0);
    for (const path of scrapePaths) {
      const answer = await probe(server, path);
      assert.equal(answer.status, 200, path);
      assert.match(answer.body, /^# HELP pulse_connections /m);
    }
  });

  test('without the database, liveness still succeeds while readiness fails', async () => {
    const port = await closedPort();
    const cut = await startPulse(podSettings(`postgres://pulse:pulse@127.0.0.1:${port}/pulse`));
    try {
      const liveness = await probe(cut, probePath(container.livenessProbe, 'liveness'));
      assert.ok(liveness.ok, `liveness: ${liveness.status} ${liveness.body}`);
      const startup = await probe(cut, probePath(container.startupProbe, 'startup'));
      assert.ok(startup.ok, `startup: ${startup.status} ${startup.body}`);
      const readiness = await probe(cut, probePath(container.readinessProbe, 'readiness'));
      assert.equal(readiness.status, 503);
      assert.equal(JSON.parse(readiness.body).code, 'DATABASE_UNAVAILABLE');
    } finally {
      await cut.stop();
    }
  });
});
