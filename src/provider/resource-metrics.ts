/**
 * The kubelet's resource-metrics endpoint (`/metrics/resource`) for one kedge node: the
 * Prometheus text format, with the metric names, labels and per-sample timestamps the kubelet
 * uses, so a scraper of kubelets reads a device like any node.
 */
import type { NodeUsage } from '../common/cloudlink/usage.js';

/** One module's latest reading, with the pod container it is. */
export interface ContainerUsage {
  namespace: string;
  pod: string;
  container: string;
  /** When it was read, epoch ms. */
  atMs: number;
  cpuSecs: number;
  memoryWorkingSetBytes: number;
  /** When the module last started, epoch ms. */
  startedAtMs?: number;
}

/** What a node's resource metrics are made of. */
export interface ResourceUsage {
  node: NodeUsage;
  containers: ContainerUsage[];
}

/** The Prometheus text exposition format's content type. */
export const PROMETHEUS_TEXT = 'text/plain; version=0.0.4; charset=utf-8';

interface Family {
  name: string;
  help: string;
  type: 'counter' | 'gauge';
  samples: { labels: Record<string, string>; value: number; atMs?: number }[];
}

/** Renders a node's usage as the kubelet's `/metrics/resource` body. */
export function renderResourceMetrics(usage: ResourceUsage): string {
  const { node, containers } = usage;
  const pods = podTotals(containers);
  const ofContainer = (c: ContainerUsage): Record<string, string> => ({
    container: c.container,
    namespace: c.namespace,
    pod: c.pod,
  });
  const families: Family[] = [
    {
      name: 'container_cpu_usage_seconds_total',
      help: 'Cumulative CPU time consumed by the container in core-seconds',
      type: 'counter',
      samples: containers.map((c) => ({ labels: ofContainer(c), value: c.cpuSecs, atMs: c.atMs })),
    },
    {
      name: 'container_memory_working_set_bytes',
      help: 'Current working set of the container in bytes',
      type: 'gauge',
      samples: containers.map((c) => ({
        labels: ofContainer(c),
        value: c.memoryWorkingSetBytes,
        atMs: c.atMs,
      })),
    },
    {
      name: 'container_start_time_seconds',
      help: 'Start time of the container since unix epoch in seconds',
      type: 'gauge',
      samples: containers
        .filter((c) => c.startedAtMs !== undefined)
        .map((c) => ({ labels: ofContainer(c), value: c.startedAtMs! / 1000, atMs: c.atMs })),
    },
    {
      name: 'node_cpu_usage_seconds_total',
      help: 'Cumulative CPU time consumed by the node in core-seconds',
      type: 'counter',
      samples: [{ labels: {}, value: node.cpuSecs, atMs: node.atMs }],
    },
    {
      name: 'node_memory_working_set_bytes',
      help: 'Current working set of the node in bytes',
      type: 'gauge',
      samples: [{ labels: {}, value: node.memoryWorkingSetBytes, atMs: node.atMs }],
    },
    {
      name: 'pod_cpu_usage_seconds_total',
      help: 'Cumulative CPU time consumed by the pod in core-seconds',
      type: 'counter',
      samples: pods.map((p) => ({ labels: p.labels, value: p.cpuSecs, atMs: p.atMs })),
    },
    {
      name: 'pod_memory_working_set_bytes',
      help: 'Current working set of the pod in bytes',
      type: 'gauge',
      samples: pods.map((p) => ({ labels: p.labels, value: p.memoryBytes, atMs: p.atMs })),
    },
    {
      name: 'resource_scrape_error',
      help: '1 if there was an error while getting container metrics, 0 otherwise',
      type: 'gauge',
      samples: [{ labels: {}, value: 0 }],
    },
  ];
  return families.map(renderFamily).join('');
}

/** Sums each pod's containers; the pod's timestamp is its latest container reading. */
function podTotals(
  containers: ContainerUsage[],
): { labels: Record<string, string>; cpuSecs: number; memoryBytes: number; atMs: number }[] {
  const pods = new Map<
    string,
    { labels: Record<string, string>; cpuSecs: number; memoryBytes: number; atMs: number }
  >();
  for (const c of containers) {
    const key = `${c.namespace}/${c.pod}`;
    const pod = pods.get(key) ?? {
      labels: { namespace: c.namespace, pod: c.pod },
      cpuSecs: 0,
      memoryBytes: 0,
      atMs: 0,
    };
    pod.cpuSecs += c.cpuSecs;
    pod.memoryBytes += c.memoryWorkingSetBytes;
    pod.atMs = Math.max(pod.atMs, c.atMs);
    pods.set(key, pod);
  }
  return [...pods.values()];
}

function renderFamily(f: Family): string {
  const lines = [`# HELP ${f.name} ${f.help}`, `# TYPE ${f.name} ${f.type}`];
  for (const s of f.samples) {
    const labels = Object.entries(s.labels)
      .map(([k, v]) => `${k}="${escapeLabel(v)}"`)
      .join(',');
    const series = labels ? `${f.name}{${labels}}` : f.name;
    const at = s.atMs === undefined ? '' : ` ${Math.round(s.atMs)}`;
    lines.push(`${series} ${formatValue(s.value)}${at}`);
  }
  return `${lines.join('\n')}\n`;
}

/** Label values escape backslash, double quote and line feed. */
function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function formatValue(value: number): string {
  return Number.isFinite(value) ? String(value) : 'NaN';
}
