// deploy/kubernetes: every object valid against the Kubernetes API schema, the kustomizations
// complete, and the rules the manifests must keep with Pulse itself (its configuration, its
// shutdown, its image's user, its proxy settings). The probes are checked against a running Pulse
// in kubernetes-probes.test.ts.

import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, test } from 'node:test';
import type { IServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor';
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import type { IHorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import type { IIngress } from 'kubernetes-models/networking.k8s.io/v1/Ingress';
import type { IPodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import type { IConfigMap } from 'kubernetes-models/v1/ConfigMap';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { ISecret } from 'kubernetes-models/v1/Secret';
import type { IService } from 'kubernetes-models/v1/Service';
import { loadConfig } from '../../src/config.js';
import {
  BUILT_IN_KINDS,
  KUBERNETES_DIR,
  REPO_ROOT,
  loadManifests,
  only,
  quantity,
  readYaml,
  schemaProblems,
  yamlFiles,
} from '../helpers/kubernetes.js';

const manifests = loadManifests();
const deployment = only<IDeployment>(manifests, 'Deployment');
const podSpec = deployment.spec!.template.spec!;
const podLabels = deployment.spec!.template.metadata!.labels!;
const configMap = only<IConfigMap>(manifests, 'ConfigMap');
const secret = only<ISecret>(manifests, 'Secret');
const service = only<IService>(manifests, 'Service');

function pulseContainer(): IContainer {
  assert.equal(podSpec.containers.length, 1, 'one container per pod');
  return podSpec.containers[0]!;
}

function matches(selector: Record<string, string> | undefined, labels: Record<string, string>): boolean {
  return selector !== undefined && Object.keys(selector).length > 0 && Object.entries(selector).every(([key, value]) => labels[key] === value);
}

/** The environment a pod gets: the ConfigMap, then the container's env with the example Secret's values. */
function podEnvironment(): Record<string, string> {
  const container = pulseContainer();
  const env: Record<string, string> = {};
  for (const source of container.envFrom ?? []) {
    assert.equal(source.configMapRef?.name, configMap.metadata!.name, 'envFrom names the ConfigMap of the base');
    Object.assign(env, configMap.data);
  }
  for (const entry of container.env ?? []) {
    if (entry.value !== undefined) env[entry.name] = entry.value;
    const ref = entry.valueFrom?.secretKeyRef;
    if (ref === undefined) continue;
    assert.equal(ref.name, secret.metadata!.name, `${entry.name} comes from the Secret of examples/secret.yaml`);
    const value = secret.stringData?.[ref.key] ?? secret.data?.[ref.key];
    if (value !== undefined) env[entry.name] = value;
    else assert.equal(ref.optional, true, `${entry.name}: key ${ref.key} is missing from the example Secret`);
  }
  return env;
}

/** The names loadConfig reads from the environment. */
function variablesPulseReads(): Set<string> {
  const read = new Set<string>();
  loadConfig(
    new Proxy({} as Record<string, string | undefined>, {
      get(_target, key) {
        if (typeof key === 'string') read.add(key);
        return undefined;
      },
    }),
  );
  return read;
}

/** uid and gid of the Dockerfile's runtime user (its last stage's USER). */
function imageUser(): { uid: number; gid: number } {
  let from = '';
  let user = '';
  for (const line of readFileSync(join(REPO_ROOT, 'Dockerfile'), 'utf8').split('\n')) {
    const stage = /^FROM\s+(\S+)/i.exec(line);
    if (stage) [from, user] = [stage[1]!, ''];
    const directive = /^USER\s+(\S+)/i.exec(line);
    if (directive) user = directive[1]!;
  }
  const numeric = /^(\d+)(?::(\d+))?$/.exec(user);
  if (numeric) return { uid: Number(numeric[1]), gid: Number(numeric[2] ?? numeric[1]) };
  // The official node images create the user and group node as 1000:1000.
  if (/^node(:node)?$/.test(user) && /^node:/.test(from)) return { uid: 1000, gid: 1000 };
  throw new Error(`the Dockerfile's runtime stage (FROM ${from}) runs as USER ${JSON.stringify(user)}: its uid is unknown to this test`);
}

/** Seconds the preStop hook keeps the container up: `sleep N` in exec form, or the sleep handler. */
function preStopSeconds(container: IContainer): number {
  const hook = container.lifecycle?.preStop;
  if (hook?.sleep) return hook.sleep.seconds;
  const command = hook?.exec?.command ?? [];
  if (command.length === 2 && /(^|\/)sleep$/.test(command[0]!) && /^\d+$/.test(command[1]!)) return Number(command[1]);
  throw new Error(`preStop is not a sleep: ${JSON.stringify(hook)}`);
}

describe('Kubernetes manifests', () => {
  test('every object is valid against its API schema, with no field the schema lacks', () => {
    assert.ok(manifests.length >= 8, `found ${manifests.length} objects`);
    for (const { file, doc } of manifests) {
      assert.deepEqual(schemaProblems(doc), [], `${file} (${String(doc.kind)})`);
    }
  });

  test('the schema check fails on a wrong type, an unknown field and an unknown kind', () => {
    const typo = structuredClone(deployment) as unknown as { spec: { template: { spec: { containers: Record<string, unknown>[] } } } };
    typo.spec.template.spec.containers[0]!.readinesProbe = { httpGet: { path: '/readyz', port: 'http' } };
    assert.deepEqual(schemaProblems(typo), ['unknown field /spec/template/spec/containers/0/readinesProbe']);

    const wrongType = structuredClone(deployment) as unknown as { spec: Record<string, unknown> };
    wrongType.spec.minReadySeconds = 'ten';
    assert.match(schemaProblems(wrongType).join(), /minReadySeconds must be integer/);

    const monitor = structuredClone(only<IServiceMonitor>(manifests, 'ServiceMonitor')) as unknown as { spec: { endpoints: Record<string, unknown>[] } };
    monitor.spec.endpoints[0]!.scrapeEvery = '15s';
    assert.deepEqual(schemaProblems(monitor), ['unknown field /spec/endpoints/0/scrapeEvery']);

    assert.match(schemaProblems({ apiVersion: 'apps/v1', kind: 'Deploymnet' }).join(), /no schema/);
  });

  test('each kustomization lists files that exist, and every manifest beside it', () => {
    const kustomizations = yamlFiles(KUBERNETES_DIR).filter((file) => file.endsWith('kustomization.yaml'));
    assert.ok(kustomizations.includes('kustomization.yaml'), 'the base has a kustomization');
    for (const file of kustomizations) {
      const dir = dirname(join(KUBERNETES_DIR, file));
      const [kustomization] = readYaml(join(KUBERNETES_DIR, file)) as { apiVersion: string; kind: string; resources?: string[] }[];
      assert.equal(kustomization!.apiVersion, 'kustomize.config.k8s.io/v1beta1', file);
      assert.equal(kustomization!.kind, 'Kustomization', file);
      const resources = kustomization!.resources ?? [];
      for (const resource of resources) {
        const path = join(dir, resource);
        assert.ok(existsSync(path) && statSync(path).isFile(), `${file} lists ${resource}, which does not exist`);
      }
      const beside = yamlFiles(dir).filter((name) => !name.includes('/') && name !== 'kustomization.yaml');
      assert.deepEqual(beside.filter((name) => !resources.includes(name)), [], `${file} leaves out manifests beside it`);
    }
  });

  test('the base applies on a cluster with no CRD and holds no Secret', () => {
    const [kustomization] = readYaml(join(KUBERNETES_DIR, 'kustomization.yaml')) as { resources: string[] }[];
    for (const resource of kustomization!.resources) {
      for (const doc of readYaml(join(KUBERNETES_DIR, resource)) as { apiVersion: string; kind: string }[]) {
        assert.ok(BUILT_IN_KINDS.has(`${doc.apiVersion}/${doc.kind}`), `${resource}: ${doc.kind} is not built into Kubernetes`);
        assert.notEqual(doc.kind, 'Secret', `${resource}: a password does not belong in the repository`);
      }
    }
  });

  test("the kustomization's image replaces the container's image", () => {
    const [kustomization] = readYaml(join(KUBERNETES_DIR, 'kustomization.yaml')) as { images?: { name: string }[] }[];
    const image = pulseContainer().image!.replace(/[:@].*$/, '');
    assert.ok(kustomization!.images?.some((entry) => entry.name === image), `no images entry named ${image}`);
  });

  test("the pod runs as the image's non-root user, read-only, unprivileged, with no capability", () => {
    const { uid, gid } = imageUser();
    const pod = podSpec.securityContext!;
    const container = pulseContainer().securityContext!;
    assert.notEqual(uid, 0);
    assert.equal(pod.runAsNonRoot, true);
    assert.equal(container.runAsUser ?? pod.runAsUser, uid, "runAsUser is the Dockerfile's USER");
    assert.equal(container.runAsGroup ?? pod.runAsGroup, gid, "runAsGroup is the Dockerfile's USER's group");
    assert.equal(pod.fsGroup, gid);
    assert.equal(container.readOnlyRootFilesystem, true);
    assert.equal(container.allowPrivilegeEscalation, false);
    assert.notEqual(container.privileged, true);
    assert.deepEqual(container.capabilities?.drop, ['ALL']);
    assert.deepEqual(container.capabilities?.add ?? [], []);
    assert.equal((container.seccompProfile ?? pod.seccompProfile)?.type, 'RuntimeDefault');
  });

  test('the pod gets only settings Pulse reads, DATABASE_URL from the Secret, and a configuration Pulse accepts', () => {
    const reads = variablesPulseReads();
    const container = pulseContainer();
    assert.deepEqual(Object.keys(configMap.data ?? {}).filter((name) => !reads.has(name)), [], 'ConfigMap keys that Pulse never reads');
    assert.deepEqual((container.env ?? []).map((entry) => entry.name).filter((name) => !reads.has(name)), [], 'env names that Pulse never reads');
    assert.ok(!('DATABASE_URL' in (configMap.data ?? {})), 'DATABASE_URL is a secret');
    const database = container.env?.find((entry) => entry.name === 'DATABASE_URL');
    assert.ok(database?.valueFrom?.secretKeyRef, 'DATABASE_URL comes from a Secret');
    assert.equal(database.valueFrom.secretKeyRef.key, 'DATABASE_URL');
    assert.notEqual(database.valueFrom.secretKeyRef.optional, true, 'without a database URL Pulse would fall back to PGlite');

    const config = loadConfig(podEnvironment());
    assert.ok(config.databaseUrl, 'Pulse runs on PostgreSQL');
    assert.equal(config.workers, 1, 'one process per pod: scale with replicas');
  });

  test('the container port, the Service and the probes use the port Pulse listens on', () => {
    const config = loadConfig(podEnvironment());
    const ports = pulseContainer().ports ?? [];
    const named = (port: string | number | undefined) => (typeof port === 'number' ? port : ports.find((entry) => entry.name === port)?.containerPort);
    assert.deepEqual(ports.map((port) => port.containerPort), [config.port]);
    const container = pulseContainer();
    for (const probe of [container.startupProbe, container.readinessProbe, container.livenessProbe]) {
      assert.equal(named(probe?.httpGet?.port), config.port);
    }
    assert.equal(container.readinessProbe?.httpGet?.path, '/readyz');
    assert.equal(container.livenessProbe?.httpGet?.path, '/healthz', 'liveness must not depend on the database');
    assert.ok(matches(service.spec!.selector, podLabels), 'the Service selects the pods');
    for (const port of service.spec!.ports ?? []) assert.equal(named(port.targetPort), config.port);
  });

  test('the grace period outlasts the preStop sleep and the whole drain', () => {
    const config = loadConfig(podEnvironment());
    const preStop = preStopSeconds(pulseContainer());
    assert.ok(preStop >= 5, `a preStop of ${preStop} s may end before the endpoint is gone everywhere`);
    // src/main.ts exits at the latest 1.5 s after SHUTDOWN_TIMEOUT_MS, should the drain hang.
    const needed = preStop + (config.shutdownTimeoutMs + 1_500) / 1000;
    const grace = podSpec.terminationGracePeriodSeconds ?? 30;
    assert.ok(grace > needed, `terminationGracePeriodSeconds ${grace} does not exceed ${needed} s (preStop ${preStop} s + drain)`);
  });

  test('requests and limits are set, and the memory limit holds MAX_CONNECTIONS', () => {
    const config = loadConfig(podEnvironment());
    const { requests = {}, limits = {} } = pulseContainer().resources ?? {};
    for (const resource of ['cpu', 'memory']) {
      assert.ok(quantity(requests[resource]) > 0, `requests.${resource}`);
      assert.ok(quantity(limits[resource]) >= quantity(requests[resource]), `limits.${resource} below its request`);
    }
    // Measured: 6.6-7.6 KiB resident per connection (README, Benchmarks) and about 100 MiB per
    // process at rest on PostgreSQL; the Fibonacci result cache comes on top.
    const perProcess = 128 * 2 ** 20 + config.fibCacheBytes + config.maxConnections * 7.6 * 1024;
    const needed = config.workers * perProcess;
    assert.ok(
      needed <= quantity(limits.memory),
      `${config.workers} × ${config.maxConnections} connections need about ${Math.round(needed / 2 ** 20)} MiB, over the limit ${limits.memory}`,
    );
  });

  test('3 replicas, at least 3 kept by the autoscaler, which scales down slowly; drains evict one at a time', () => {
    const hpa = only<IHorizontalPodAutoscaler>(manifests, 'HorizontalPodAutoscaler');
    assert.deepEqual(hpa.spec!.scaleTargetRef, { apiVersion: 'apps/v1', kind: 'Deployment', name: deployment.metadata!.name });
    assert.equal(hpa.spec!.minReplicas, 3);
    assert.ok(hpa.spec!.maxReplicas >= 3);
    assert.equal(deployment.spec!.replicas, 3);
    assert.ok(hpa.spec!.metrics?.some((metric) => metric.resource?.name === 'cpu'));
    // Kubernetes' default is 300 s; a removed pod sends all its clients to the others at once.
    assert.ok((hpa.spec!.behavior?.scaleDown?.stabilizationWindowSeconds ?? 300) > 300);
    assert.ok(matches(deployment.spec!.selector.matchLabels, podLabels), 'the Deployment selects its pods');

    const pdb = only<IPodDisruptionBudget>(manifests, 'PodDisruptionBudget');
    assert.ok(matches(pdb.spec!.selector?.matchLabels, podLabels), 'the PodDisruptionBudget selects the pods');
    assert.equal(pdb.spec!.maxUnavailable, 1);
  });

  test('the Ingress reaches the Service, with the idle timeouts of deploy/nginx, and Pulse trusts its X-Forwarded-For', () => {
    const ingress = only<IIngress>(manifests, 'Ingress');
    const servicePorts = (service.spec!.ports ?? []).map((port) => port.name);
    for (const rule of ingress.spec!.rules ?? []) {
      for (const path of rule.http?.paths ?? []) {
        assert.equal(path.backend.service?.name, service.metadata!.name);
        assert.ok(servicePorts.includes(path.backend.service?.port?.name), `port ${path.backend.service?.port?.name} is not on the Service`);
      }
    }
    const nginx = readFileSync(join(REPO_ROOT, 'deploy', 'nginx', 'nginx.conf'), 'utf8');
    for (const direction of ['read', 'send']) {
      const reference = Number(new RegExp(`proxy_${direction}_timeout (\\d+)s;`).exec(nginx)?.[1]);
      assert.ok(reference >= 75, `nginx.conf proxy_${direction}_timeout`);
      const annotation = Number(ingress.metadata!.annotations?.[`nginx.ingress.kubernetes.io/proxy-${direction}-timeout`]);
      assert.ok(annotation >= reference, `proxy-${direction}-timeout ${annotation} s is below nginx.conf's ${reference} s`);
    }
    assert.equal(loadConfig(podEnvironment()).trustProxy, true, 'behind the Ingress every client would share the per-address cap');
  });

  test("the ServiceMonitor scrapes the Service's pods on a port it has", () => {
    const monitor = only<IServiceMonitor>(manifests, 'ServiceMonitor');
    assert.ok(matches(monitor.spec.selector.matchLabels, service.metadata!.labels ?? {}), 'the ServiceMonitor selects the Service');
    const ports = (service.spec!.ports ?? []).map((port) => port.name);
    for (const endpoint of monitor.spec.endpoints ?? []) assert.ok(ports.includes(endpoint.port), `port ${endpoint.port}`);
  });
});
