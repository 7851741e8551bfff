// Resource usage end to end: a real `kedge node` (process runtime) samples its modules, the
// gateway passes the samples on, and the API server's node proxy reaches the controller's
// kubelet API for /metrics/resource, as a scraper of kubelets would. The Node's pressure
// conditions come from the same readings.
import { request } from 'node:https';
import { issueCertificate } from '../../src/common/pki.js';
import type { RunningController } from '../../src/controller/manager.js';
import { freePort } from '../../src/localcluster/ports.js';
import { eventually, startTestCluster, type TestCluster } from '../support/cluster.js';
import { startTestNats, type TestNats } from '../support/nats.js';
import { startNode, startTestController, type NodeProcess } from './support.js';

const DEVICE = 'devm';
const NODE = `${DEVICE}.default.kedge`;
const METRICS_PATH = `/api/v1/nodes/${NODE}/proxy/metrics/resource`;

/** A module that keeps a CPU busy part of the time, and one that only sleeps. */
const BUSY =
  'trap "exit 0" TERM; while :; do i=0; while [ $i -lt 10000 ]; do i=$((i+1)); done; sleep 0.05; done';
const IDLE = 'trap "exit 0" TERM; while :; do sleep 1; done';

const deployment = {
  apiVersion: 'kedge.io/v1alpha1',
  kind: 'EdgeDeployment',
  metadata: { name: 'usage', namespace: 'default' },
  spec: {
    selector: { matchLabels: { app: DEVICE } },
    modules: [
      { name: 'busy', image: 'none', command: ['/bin/sh', '-c', BUSY] },
      { name: 'idle', image: 'none', command: ['/bin/sh', '-c', IDLE] },
    ],
  },
};

interface Condition {
  type: string;
  status: string;
  reason: string;
  message: string;
}

interface Sample {
  value: number;
  atMs: number;
}

/** The samples of one metric family, by their label set (`container/namespace/pod`, or ''). */
function samples(text: string, name: string): Map<string, Sample> {
  const out = new Map<string, Sample>();
  for (const line of text.split('\n')) {
    const m = new RegExp(`^${name}(?:\\{([^}]*)\\})? (\\S+) (\\d+)$`).exec(line);
    if (!m) continue;
    const labels = Object.fromEntries(
      [...(m[1] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1], l[2]]),
    );
    const key = [labels.container, labels.namespace, labels.pod].filter(Boolean).join('/');
    out.set(key, { value: Number(m[2]), atMs: Number(m[3]) });
  }
  return out;
}

describe('kubelet resource metrics and pressure conditions from a real kedge node', () => {
  let cluster: TestCluster;
  let nats: TestNats;
  let controller: RunningController;
  let node: NodeProcess | undefined;
  let ports: { hub: number; kubelet: number };

  beforeAll(async () => {
    cluster = await startTestCluster('metrics');
    nats = await startTestNats('metrics');
    ports = { hub: await freePort(), kubelet: await freePort() };
    // No metrics-server here (no registry to pull it from): the controller serves metrics.k8s.io.
    controller = await startTestController(cluster, ports, nats.url, { metricsApi: true });
    await cluster.kubectlOk(
      ['apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'kedge.io/v1alpha1',
        kind: 'EdgeDevice',
        metadata: { name: DEVICE, namespace: 'default', labels: { app: DEVICE } },
        spec: { heartbeat: { intervalSecs: 2, offlineAfterSecs: 8 } },
      }),
    );
    node = await startNode(cluster, DEVICE, ports.hub, {
      config: { agent: { runtime: 'process', stopModulesOnExit: true, stopGraceSecs: 2 } },
      cloud: { usageSecs: 1, heartbeatSecs: 2 },
    });
    await cluster.kubectlOk(['apply', '-f', '-'], JSON.stringify(deployment));
  });

  afterAll(async () => {
    await node?.kill('SIGTERM');
    await controller?.stop();
    await nats?.stop();
    await cluster?.cp.stop();
  });

  it('serves each module as a pod container through the API server node proxy', async () => {
    const first = await eventually(
      'both modules in /metrics/resource',
      async () => {
        const res = await cluster.kubectl(['get', '--raw', METRICS_PATH]);
        if (res.code !== 0) return undefined;
        const cpu = samples(res.stdout, 'container_cpu_usage_seconds_total');
        return cpu.has('busy/default/usage-busy-devm') && cpu.has('idle/default/usage-idle-devm')
          ? res.stdout
          : undefined;
      },
      120_000,
    );
    const cpu = samples(first, 'container_cpu_usage_seconds_total');
    const memory = samples(first, 'container_memory_working_set_bytes');
    const podMemory = samples(first, 'pod_memory_working_set_bytes');
    const nodeCpu = samples(first, 'node_cpu_usage_seconds_total').get('')!;
    const nodeMemory = samples(first, 'node_memory_working_set_bytes').get('')!;
    for (const module of ['busy', 'idle']) {
      const key = `${module}/default/usage-${module}-devm`;
      expect(memory.get(key)!.value).toBeGreaterThan(0);
      expect(Math.abs(cpu.get(key)!.atMs - Date.now())).toBeLessThan(30_000);
      expect(podMemory.get(`default/usage-${module}-devm`)!.value).toBe(memory.get(key)!.value);
    }
    expect(samples(first, 'container_start_time_seconds').size).toBe(2);
    expect(nodeCpu.value).toBeGreaterThan(0);
    expect(nodeMemory.value).toBeGreaterThan(0);

    // The busy module's counter climbs from one sample to the next; the idle one barely moves.
    const busyKey = 'busy/default/usage-busy-devm';
    const later = await eventually(
      'a later sample of the busy module',
      async () => {
        const text = await cluster.kubectlOk(['get', '--raw', METRICS_PATH]);
        const s = samples(text, 'container_cpu_usage_seconds_total').get(busyKey);
        return s && s.atMs >= cpu.get(busyKey)!.atMs + 3_000 ? text : undefined;
      },
      30_000,
    );
    const busyThen = cpu.get(busyKey)!;
    const busyNow = samples(later, 'container_cpu_usage_seconds_total').get(busyKey)!;
    const idleKey = 'idle/default/usage-idle-devm';
    const idleNow = samples(later, 'container_cpu_usage_seconds_total').get(idleKey)!;
    const busyRate = (busyNow.value - busyThen.value) / ((busyNow.atMs - busyThen.atMs) / 1000);
    const idleRate =
      (idleNow.value - cpu.get(idleKey)!.value) / ((idleNow.atMs - cpu.get(idleKey)!.atMs) / 1000);
    process.stdout.write(
      `resource metrics: busy ${busyRate.toFixed(3)} cores, idle ${idleRate.toFixed(3)} cores, ` +
        `busy memory ${memory.get(busyKey)!.value} B, node memory ${nodeMemory.value} B\n`,
    );
    expect(busyNow.value).toBeGreaterThan(busyThen.value);
    expect(busyRate).toBeGreaterThan(0.02);
    expect(idleRate).toBeLessThan(busyRate);
  });

  it('sets the Node pressure conditions from the device readings', async () => {
    const conditions = await eventually(
      'pressure conditions from readings',
      async () => {
        const n = JSON.parse(await cluster.kubectlOk(['get', 'node', NODE, '-o', 'json']));
        const byType: Record<string, Condition | undefined> = Object.fromEntries(
          (n.status.conditions as Condition[]).map((c) => [c.type, c]),
        );
        return byType.MemoryPressure?.reason === 'DeviceHasSufficientMemory' ? byType : undefined;
      },
      30_000,
    );
    expect(conditions.MemoryPressure).toMatchObject({ status: 'False' });
    expect(conditions.MemoryPressure!.message).toMatch(/Mi of memory available/);
    expect(conditions.DiskPressure).toMatchObject({
      status: 'False',
      reason: 'DeviceHasNoDiskPressure',
    });
    expect(conditions.PIDPressure).toMatchObject({
      status: 'False',
      reason: 'DeviceHasSufficientPID',
    });
  });

  it('shows the modules in kubectl top pods and the device in kubectl top nodes', async () => {
    const top = await eventually(
      'kubectl top pods to list both module pods',
      async () => {
        const res = await cluster.kubectl(['top', 'pods', '--containers', '--no-headers']);
        if (res.code !== 0) throw new Error(res.stderr.trim());
        return /usage-busy-devm/.test(res.stdout) && /usage-idle-devm/.test(res.stdout)
          ? res.stdout
          : undefined;
      },
      90_000,
    );
    process.stdout.write(`kubectl top pods --containers:\n${top}`);
    // POD NAME CPU(cores) MEMORY(bytes)
    const rows = top
      .trim()
      .split('\n')
      .map((line) => line.trim().split(/\s+/));
    const busy = rows.find((r) => r[0] === 'usage-busy-devm')!;
    const idle = rows.find((r) => r[0] === 'usage-idle-devm')!;
    expect(busy[1]).toBe('busy');
    expect(Number(busy[2]!.replace(/m$/, ''))).toBeGreaterThan(0);
    for (const row of [busy, idle]) expect(Number(row[3]!.replace(/Mi$/, ''))).toBeGreaterThan(0);
    const selected = await cluster.kubectlOk(['top', 'pods', '-l', 'kedge.io/module=busy']);
    expect(selected).toContain('usage-busy-devm');
    expect(selected).not.toContain('usage-idle-devm');
    const nodes = await cluster.kubectlOk(['top', 'nodes', '--no-headers']);
    process.stdout.write(`kubectl top nodes:\n${nodes}`);
    // NAME CPU(cores) CPU(%) MEMORY(bytes) MEMORY(%)
    const row = nodes.trim().split(/\s+/);
    expect(row[0]).toBe(NODE);
    expect(Number(row[1]!.replace(/m$/, ''))).toBeGreaterThan(0);
    expect(Number(row[3]!.replace(/Mi$/, ''))).toBeGreaterThan(0);
    // Metrics are authorized for the end user, as any API.
    const denied = await cluster.kubectl(['top', 'pods', '--as', 'nobody']);
    expect(denied.code).not.toBe(0);
    expect(denied.stderr).toMatch(/forbidden/i);
  }, 150_000);

  it('refuses a direct scrape, which cannot say which node it means, naming the proxy path', async () => {
    // What metrics-server does: dial the node's kubelet endpoint with a client certificate.
    const client = issueCertificate(cluster.cp.ca, {
      commonName: 'metrics-scraper',
      organizations: ['system:masters'],
      usage: ['client'],
    });
    const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port: ports.kubelet,
          path: '/metrics/resource',
          cert: client.certPem,
          key: client.keyPem,
          rejectUnauthorized: false,
        },
        (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        },
      );
      req.on('error', reject);
      req.end();
    });
    expect(answer.status).toBe(400);
    expect(JSON.parse(answer.body)).toMatchObject({
      kind: 'Status',
      reason: 'BadRequest',
      message: expect.stringContaining('/api/v1/nodes/{node}/proxy/metrics/resource'),
    });
  });

  it('answers with a Kubernetes Status naming the reason when a node has no readings', async () => {
    await node!.kill('SIGTERM');
    node = undefined;
    const refused = await eventually(
      'the scrape of a disconnected device to fail',
      async () => {
        const res = await cluster.kubectl(['get', '--raw', METRICS_PATH]);
        return res.code !== 0 ? res.stderr : undefined;
      },
      60_000,
    );
    expect(refused).toMatch(/no recent resource readings/);
    const missing = await cluster.kubectl([
      'get',
      '--raw',
      '/api/v1/nodes/not-a-device/proxy/metrics/resource',
    ]);
    expect(missing.code).not.toBe(0);
  });
});
