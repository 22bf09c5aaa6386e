// The Kubernetes manifests of deploy/kubernetes, parsed, and their validation against the API
// schemas that kubernetes-models compiles from the Kubernetes OpenAPI document (offline: the
// schemas ship in the package).

import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import { Ingress } from 'kubernetes-models/networking.k8s.io/v1/Ingress';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Service } from 'kubernetes-models/v1/Service';
import { parseAllDocuments } from 'yaml';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const KUBERNETES_DIR = join(REPO_ROOT, 'deploy', 'kubernetes');

export interface Manifest {
  /** Relative to deploy/kubernetes. */
  file: string;
  doc: { apiVersion?: unknown; kind?: unknown; [key: string]: unknown };
}

/** Every *.yaml file under `dir`, sorted, relative to it. */
export function yamlFiles(dir: string): string[] {
  const walk = (folder: string): string[] =>
    readdirSync(folder)
      .sort()
      .flatMap((entry) => {
        const path = join(folder, entry);
        if (statSync(path).isDirectory()) return walk(path);
        return /\.ya?ml$/.test(entry) ? [relative(dir, path)] : [];
      });
  return walk(dir);
}

/** The documents of one YAML file; a syntax error throws, naming the file. */
export function readYaml(path: string): unknown[] {
  return parseAllDocuments(readFileSync(path, 'utf8')).map((document) => {
    if (document.errors.length > 0) throw new Error(`${path}: ${document.errors.map((error) => error.message).join('; ')}`);
    return document.toJS() as unknown;
  });
}

/** Every Kubernetes object under deploy/kubernetes (the kustomizations are not objects of the API). */
export function loadManifests(): Manifest[] {
  return yamlFiles(KUBERNETES_DIR)
    .filter((file) => !file.endsWith('kustomization.yaml'))
    .flatMap((file) => readYaml(join(KUBERNETES_DIR, file)).map((doc) => ({ file, doc: doc as Manifest['doc'] })));
}

/** The one object of this kind among the manifests, typed by the caller. */
export function only<T>(manifests: Manifest[], kind: string): T {
  const found = manifests.filter((manifest) => manifest.doc.kind === kind);
  if (found.length !== 1) throw new Error(`expected one ${kind} under deploy/kubernetes, found ${found.length}`);
  return found[0]!.doc as T;
}

type Validator = { prototype: { validate(this: unknown): void } };

// The kinds the manifests may use, by apiVersion/kind. The first six are built into every cluster;
// ServiceMonitor needs the Prometheus Operator's CRD.
const MODELS = new Map<string, Validator>([
  ['v1/ConfigMap', ConfigMap],
  ['v1/Secret', Secret],
  ['v1/Service', Service],
  ['apps/v1/Deployment', Deployment],
  ['policy/v1/PodDisruptionBudget', PodDisruptionBudget],
  ['autoscaling/v2/HorizontalPodAutoscaler', HorizontalPodAutoscaler],
  ['networking.k8s.io/v1/Ingress', Ingress],
  ['monitoring.coreos.com/v1/ServiceMonitor', ServiceMonitor],
]);

export const BUILT_IN_KINDS = new Set([...MODELS.keys()].filter((key) => !key.startsWith('monitoring.coreos.com/')));

// The compiled validators read exactly the properties their schema defines (and every entry of a
// map such as labels), so a property that no validator read is one the schema does not have: the
// unknown field that the API server's strict field validation (kubectl's default) rejects, and
// that a schema check alone lets through, the OpenAPI schemas not forbidding extra properties.
function tracked(value: unknown, path: string, read: Set<string>): unknown {
  if (value === null || typeof value !== 'object') return value;
  return new Proxy(value, {
    get(target, key, receiver) {
      if (typeof key === 'string' && Object.hasOwn(target, key)) {
        read.add(`${path}/${key}`);
        return tracked((target as Record<string, unknown>)[key], `${path}/${key}`, read);
      }
      return Reflect.get(target, key, receiver);
    },
  });
}

function unread(value: unknown, path: string, read: Set<string>, out: string[]): string[] {
  if (value === null || typeof value !== 'object') return out;
  for (const [key, child] of Object.entries(value)) {
    const childPath = `${path}/${key}`;
    if (read.has(childPath)) unread(child, childPath, read, out);
    else out.push(childPath);
  }
  return out;
}

/** What is wrong with one object against its API schema: [] when nothing is. */
export function schemaProblems(doc: unknown): string[] {
  const { apiVersion, kind } = (doc ?? {}) as Manifest['doc'];
  const model = MODELS.get(`${String(apiVersion)}/${String(kind)}`);
  if (!model) return [`no schema for apiVersion ${String(apiVersion)}, kind ${String(kind)}`];
  const read = new Set<string>();
  try {
    model.prototype.validate.call(tracked(doc, '', read));
  } catch (error) {
    return [(error as Error).message];
  }
  return unread(doc, '', read, []).map((path) => `unknown field ${path}`);
}

/** Kubernetes resource quantities (CPU "500m", "2"; memory "768Mi", "1Gi", "512M") as numbers of cores or bytes. */
export function quantity(value: string | number | undefined): number {
  if (value === undefined) throw new Error('quantity is missing');
  const match = /^(\d+(?:\.\d+)?)(m|k|M|G|T|Ki|Mi|Gi|Ti)?$/.exec(String(value));
  if (!match) throw new Error(`unsupported quantity ${String(value)}`);
  const factor: Record<string, number> = {
    '': 1, m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40,
  };
  return Number(match[1]) * factor[match[2] ?? '']!;
}
