import { renderResourceMetrics } from './resource-metrics.js';

describe('renderResourceMetrics', () => {
  const text = renderResourceMetrics({
    node: {
      atMs: 1_700_000_000_123,
      cpuSecs: 1234.5,
      memoryWorkingSetBytes: 2_000_000,
      memoryBytes: 8_000_000,
      diskAvailableBytes: 1,
      diskBytes: 2,
    },
    containers: [
      {
        namespace: 'ns',
        pod: 'p1',
        container: 'a',
        atMs: 1_700_000_000_000,
        cpuSecs: 1.5,
        memoryWorkingSetBytes: 100,
        startedAtMs: 1_699_999_000_000,
      },
      {
        namespace: 'ns',
        pod: 'p1',
        container: 'b',
        atMs: 1_700_000_000_050,
        cpuSecs: 0.25,
        memoryWorkingSetBytes: 50,
      },
      {
        namespace: 'ns',
        pod: 'we"ird\\',
        container: 'c',
        atMs: 1,
        cpuSecs: 0,
        memoryWorkingSetBytes: 1,
      },
    ],
  });
  const lines = text.split('\n');

  it('writes the kubelet metric names with container, namespace and pod labels and timestamps', () => {
    expect(lines).toContain(
      'container_cpu_usage_seconds_total{container="a",namespace="ns",pod="p1"} 1.5 1700000000000',
    );
    expect(lines).toContain(
      'container_memory_working_set_bytes{container="b",namespace="ns",pod="p1"} 50 1700000000050',
    );
    expect(lines).toContain(
      'container_start_time_seconds{container="a",namespace="ns",pod="p1"} 1699999000 1700000000000',
    );
    expect(lines).toContain('node_cpu_usage_seconds_total 1234.5 1700000000123');
    expect(lines).toContain('node_memory_working_set_bytes 2000000 1700000000123');
    expect(lines).toContain('resource_scrape_error 0');
  });

  it('sums the containers of a pod, stamped with its latest reading', () => {
    expect(lines).toContain(
      'pod_cpu_usage_seconds_total{namespace="ns",pod="p1"} 1.75 1700000000050',
    );
    expect(lines).toContain(
      'pod_memory_working_set_bytes{namespace="ns",pod="p1"} 150 1700000000050',
    );
  });

  it('declares each family once, and escapes label values', () => {
    expect(
      lines.filter((l) => l === '# TYPE container_cpu_usage_seconds_total counter'),
    ).toHaveLength(1);
    expect(lines).toContain('# TYPE node_memory_working_set_bytes gauge');
    expect(text).toContain('pod="we\\"ird\\\\"');
    expect(text.endsWith('\n')).toBe(true);
  });
});
