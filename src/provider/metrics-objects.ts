/**
 * `metrics.k8s.io/v1beta1` NodeMetrics and PodMetrics from two consecutive usage samples of a
 * device: CPU as the rate between them (cores), memory as the latest working set, as
 * metrics-server serves them to `kubectl top`.
 */
import type { NodeUsage } from '../common/cloudlink/usage.js';
import type { ContainerUsage } from './resource-metrics.js';

export const METRICS_GROUP = 'metrics.k8s.io';
export const METRICS_VERSION = 'v1beta1';
const API_VERSION = `${METRICS_GROUP}/${METRICS_VERSION}`;

const NANO = 1e9;
const KIB = 1024;

export interface ResourceList {
  cpu: string;
  memory: string;
}

export interface NodeMetrics {
  kind: 'NodeMetrics';
  apiVersion: string;
  metadata: { name: string; labels: Record<string, string>; creationTimestamp: string };
  timestamp: string;
  window: string;
  usage: ResourceList;
}

export interface PodMetrics {
  kind: 'PodMetrics';
  apiVersion: string;
  metadata: {
    name: string;
    namespace: string;
    labels: Record<string, string>;
    creationTimestamp: string;
  };
  timestamp: string;
  window: string;
  containers: { name: string; usage: ResourceList }[];
}

/** A Kubernetes Time: RFC 3339, whole seconds. */
function time(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** A duration as Go writes it: `15.012s`. */
function window(ms: number): string {
  return `${Math.round(ms) / 1000}s`;
}

/** CPU in nanocores and memory in KiB; undefined when the counter went back (a restart). */
function usageOf(
  before: { atMs: number; cpuSecs: number },
  after: { atMs: number; cpuSecs: number; memoryWorkingSetBytes: number },
): ResourceList | undefined {
  const secs = (after.atMs - before.atMs) / 1000;
  const cpu = after.cpuSecs - before.cpuSecs;
  if (secs <= 0 || cpu < 0) return undefined;
  return {
    cpu: `${Math.round((cpu / secs) * NANO)}n`,
    memory: `${Math.round(after.memoryWorkingSetBytes / KIB)}Ki`,
  };
}

/** A node's metrics between two samples; undefined when they give no rate. */
export function nodeMetricsOf(
  name: string,
  labels: Record<string, string>,
  before: NodeUsage,
  after: NodeUsage,
): NodeMetrics | undefined {
  const usage = usageOf(before, after);
  if (!usage) return undefined;
  return {
    kind: 'NodeMetrics',
    apiVersion: API_VERSION,
    metadata: { name, labels, creationTimestamp: time(Date.now()) },
    timestamp: time(after.atMs),
    window: window(after.atMs - before.atMs),
    usage,
  };
}

/**
 * Each pod's metrics between two samples of its node. A pod is left out unless every one of its
 * containers has a rate, as metrics-server does: a partial sum would understate it.
 */
export function podMetricsOf(
  before: readonly ContainerUsage[],
  after: readonly ContainerUsage[],
  pods: ReadonlyMap<string, { labels: Record<string, string>; containers: number }>,
): PodMetrics[] {
  const earlier = new Map(before.map((c) => [`${c.namespace}/${c.pod}/${c.container}`, c]));
  const byPod = new Map<string, PodMetrics>();
  for (const c of after) {
    const key = `${c.namespace}/${c.pod}`;
    const previous = earlier.get(`${key}/${c.container}`);
    const usage = previous && usageOf(previous, c);
    const pod = pods.get(key);
    if (!usage || !pod) continue;
    const metrics = byPod.get(key) ?? {
      kind: 'PodMetrics' as const,
      apiVersion: API_VERSION,
      metadata: {
        name: c.pod,
        namespace: c.namespace,
        labels: pod.labels,
        creationTimestamp: time(Date.now()),
      },
      timestamp: time(c.atMs),
      window: window(c.atMs - previous.atMs),
      containers: [],
    };
    metrics.containers.push({ name: c.container, usage });
    byPod.set(key, metrics);
  }
  return [...byPod.entries()]
    .filter(([key, m]) => m.containers.length === pods.get(key)!.containers)
    .map(([, m]) => m);
}
