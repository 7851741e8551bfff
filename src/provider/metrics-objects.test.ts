import type { NodeUsage } from '../common/cloudlink/usage.js';
import { nodeMetricsOf, podMetricsOf } from './metrics-objects.js';
import type { ContainerUsage } from './resource-metrics.js';

const node = (atMs: number, cpuSecs: number): NodeUsage => ({
  atMs,
  cpuSecs,
  memoryWorkingSetBytes: 2 * 1024 * 1024,
  memoryBytes: 8 * 1024 * 1024,
  diskAvailableBytes: 1,
  diskBytes: 2,
});
const container = (pod: string, name: string, atMs: number, cpuSecs: number): ContainerUsage => ({
  namespace: 'ns',
  pod,
  container: name,
  atMs,
  cpuSecs,
  memoryWorkingSetBytes: 3 * 1024,
});

describe('metrics.k8s.io objects from two samples', () => {
  it('gives a node its CPU rate in nanocores and its memory in KiB over the window', () => {
    const m = nodeMetricsOf('n.ns.kedge', { a: 'b' }, node(10_000, 100), node(25_000, 107.5));
    expect(m).toMatchObject({
      kind: 'NodeMetrics',
      apiVersion: 'metrics.k8s.io/v1beta1',
      metadata: { name: 'n.ns.kedge', labels: { a: 'b' } },
      timestamp: '1970-01-01T00:00:25Z',
      window: '15s',
      usage: { cpu: '500000000n', memory: '2048Ki' },
    });
  });

  it('gives no rate when the counter went back or no time passed', () => {
    expect(nodeMetricsOf('n', {}, node(10_000, 100), node(20_000, 50))).toBeUndefined();
    expect(nodeMetricsOf('n', {}, node(10_000, 100), node(10_000, 101))).toBeUndefined();
  });

  it('lists a pod only when every container has a rate', () => {
    const pods = new Map<string, { labels: Record<string, string>; containers: number }>([
      ['ns/whole', { labels: { app: 'x' }, containers: 2 }],
      ['ns/partial', { labels: {}, containers: 2 }],
    ]);
    const before = [
      container('whole', 'a', 0, 1),
      container('whole', 'b', 0, 1),
      container('partial', 'a', 0, 1),
    ];
    const after = [
      container('whole', 'a', 2_000, 2),
      container('whole', 'b', 2_000, 1.5),
      container('partial', 'a', 2_000, 2),
      container('partial', 'b', 2_000, 2),
    ];
    const metrics = podMetricsOf(before, after, pods);
    expect(metrics).toHaveLength(1);
    expect(metrics[0]).toMatchObject({
      kind: 'PodMetrics',
      metadata: { name: 'whole', namespace: 'ns', labels: { app: 'x' } },
      window: '2s',
      containers: [
        { name: 'a', usage: { cpu: '500000000n', memory: '3Ki' } },
        { name: 'b', usage: { cpu: '250000000n', memory: '3Ki' } },
      ],
    });
  });
});
