import { randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { gunzipSync } from 'node:zlib';
import mqtt from 'mqtt';
import { request } from 'node:https';
import { createSasToken } from '../../src/common/iothub/index.js';
import { deviceResourceUri } from '../../src/common/cloudlink/protocol.js';
import type { RunningController } from '../../src/controller/manager.js';
import { docker } from '../../src/localcluster/docker.js';
import { LOCAL_IMAGES } from '../../src/localcluster/images.js';
import { freePort } from '../../src/localcluster/ports.js';
import { eventually, startTestCluster, type TestCluster } from '../support/cluster.js';
import { startTestNats, type TestNats } from '../support/nats.js';
import {
  configureWebhook,
  startTelemetryConsumer,
  startNode,
  startTestController,
  startWebhook,
  type NodeProcess,
  runKedge,
} from './support.js';

const NODE = 'dev1.default.kedge';
const PREFIX = 'e2e-dev1-';

const device = (name: string) => ({
  apiVersion: 'kedge.io/v1alpha1',
  kind: 'EdgeDevice',
  metadata: { name, namespace: 'default', labels: { app: 'temperature', site: 'lab' } },
  spec: { nodeLabels: { zone: 'bench' }, heartbeat: { intervalSecs: 2, offlineAfterSecs: 8 } },
});

const moduleImage = { image: LOCAL_IMAGES.node, imagePullPolicy: 'Never' };
const deployment = (threshold: string) => ({
  apiVersion: 'kedge.io/v1alpha1',
  kind: 'EdgeDeployment',
  metadata: { name: 'telemetry', namespace: 'default' },
  spec: {
    selector: { matchLabels: { app: 'temperature' } },
    modules: [
      {
        name: 'sensor',
        ...moduleImage,
        command: ['node', '/app/modules/sensor.mjs'],
        env: [{ name: 'SEND_INTERVAL_MS', value: '500' }],
        startupOrder: 1,
      },
      {
        name: 'filter',
        ...moduleImage,
        command: ['node', '/app/modules/filter.mjs'],
        env: [{ name: 'THRESHOLD', value: threshold }],
        startupOrder: 2,
      },
    ],
    routes: [
      {
        name: 'sensor-to-filter',
        route:
          'FROM /messages/modules/sensor/outputs/temperatureOutput INTO BrokeredEndpoint("/modules/filter/inputs/input1")',
      },
    ],
  },
});
const upstreamRoute = {
  apiVersion: 'kedge.io/v1alpha1',
  kind: 'Route',
  metadata: { name: 'filtered-upstream', namespace: 'default' },
  spec: {
    deviceSelector: { matchLabels: { app: 'temperature' } },
    from: '/messages/modules/filter/outputs/*',
    condition: '$body.temperature > 25',
    to: '$upstream',
  },
};

async function json(cluster: TestCluster, args: string[]): Promise<any> {
  return JSON.parse(await cluster.kubectlOk([...args, '-o', 'json']));
}

async function container(
  module: string,
): Promise<{ id: string; startedAt: string; env: string[]; running: boolean }> {
  const info = JSON.parse(await docker(['inspect', `${PREFIX}${module}`]))[0];
  return {
    id: info.Id,
    startedAt: info.State.StartedAt,
    env: info.Config.Env,
    running: info.State.Running,
  };
}

describe('kedge end to end: controller, virtual node, kedge node, real dockerd', () => {
  let cluster: TestCluster;
  let controller: RunningController;
  let node: NodeProcess;
  let ports: { hub: number; kubelet: number };
  let webhook: Awaited<ReturnType<typeof startWebhook>>;
  let nats: TestNats;
  let consumer: { stop(): Promise<void> } | undefined;
  const received: { temperature: number; seq: number; enqueuedAt: string }[] = [];
  /** The real `kedge` CLI against this cluster. */
  const kedge = (args: string[]) => runKedge(args, cluster.cp.kubeconfigPath);

  beforeAll(async () => {
    cluster = await startTestCluster('e2e', {
      nodeMonitorGracePeriodSecs: 10,
      defaultTolerationSecs: 10,
    });
    ports = { hub: await freePort(), kubelet: await freePort() };
    webhook = await startWebhook();
    nats = await startTestNats('e2e');
    controller = await startTestController(cluster, ports, nats.url);
  });

  afterAll(async () => {
    await consumer?.stop();
    await node?.kill('SIGTERM');
    await controller?.stop();
    await nats?.stop();
    webhook?.server.close();
    const ids = await docker(['ps', '-aq', '--filter', `name=${PREFIX}`]).catch(() => '');
    if (ids) await docker(['rm', '-f', ...ids.split('\n')]).catch(() => undefined);
    await cluster?.cp.stop();
  });

  it('shows a bootstrapped device as a Ready node with its labels, taint, capacity and nodeInfo', async () => {
    await cluster.kubectlOk(['apply', '-f', '-'], JSON.stringify(device('dev1')));
    node = await startNode(cluster, 'dev1', ports.hub);
    const ready = await eventually(
      'the device node to be Ready',
      async () => {
        const res = await cluster.kubectl(['get', 'node', NODE, '-o', 'json']);
        if (res.code !== 0) return undefined;
        const n = JSON.parse(res.stdout);
        return n.status.conditions?.find((c: any) => c.type === 'Ready')?.status === 'True' &&
          n.status.nodeInfo.containerRuntimeVersion
          ? n
          : undefined;
      },
      90_000,
    );
    expect(ready.metadata.labels).toMatchObject({
      app: 'temperature',
      zone: 'bench',
      'kubernetes.io/role': 'edge',
      type: 'virtual-kubelet',
      'kedge.io/device': 'dev1',
    });
    expect(ready.spec.taints).toContainEqual({
      key: 'kedge.io/edge',
      value: 'true',
      effect: 'NoSchedule',
    });
    expect(Number(ready.status.capacity.cpu)).toBeGreaterThan(0);
    expect(ready.status.nodeInfo).toMatchObject({
      kubeletVersion: 'v0.1.0',
      operatingSystem: 'linux',
      architecture: 'amd64',
    });
    expect(ready.status.nodeInfo.containerRuntimeVersion).toMatch(/^docker:\/\//);
    expect(ready.status.nodeInfo.osImage).toMatch(/\S/);
    expect(ready.status.daemonEndpoints.kubeletEndpoint.Port).toBe(ports.kubelet);
    const table = await cluster.kubectlOk(['get', 'edgedevices']);
    expect(table).toMatch(/dev1\s+Connected\s+dev1\.default\.kedge/);
    const nodes = await cluster.kubectlOk(['get', 'nodes']);
    expect(nodes).toMatch(/dev1\.default\.kedge\s+Ready\s+edge/);
  });

  it('runs a deployment: pods Running, 1/1 successful, filtered telemetry to a durable consumer and the signed webhook', async () => {
    consumer = await startTelemetryConsumer(nats.url, 'default', ({ message: m }) =>
      received.push({
        ...JSON.parse(Buffer.from(m.body, 'base64').toString()),
        enqueuedAt: m.enqueuedAt,
      }),
    );
    await configureWebhook(cluster, 'default', webhook);
    await cluster.kubectlOk(['apply', '-f', '-'], JSON.stringify(deployment('25')));
    await cluster.kubectlOk(['apply', '-f', '-'], JSON.stringify(upstreamRoute));
    await eventually(
      'both module pods Running',
      async () => {
        const pods = await json(cluster, ['get', 'pods', '-l', 'kedge.io/deployment=telemetry']);
        return pods.items.length === 2 &&
          pods.items.every(
            (p: any) => p.status.phase === 'Running' && p.status.containerStatuses?.[0]?.ready,
          )
          ? true
          : undefined;
      },
      120_000,
    );
    await eventually('the deployment to report 1/1 successful', async () => {
      const d = await json(cluster, ['get', 'edgedeployment', 'telemetry']);
      return d.status?.targetedCount === 1 && d.status?.reportedSuccessfulCount === 1
        ? true
        : undefined;
    });
    await eventually(
      'filtered telemetry at the durable consumer',
      async () => (received.length >= 3 ? true : undefined),
      60_000,
    );
    expect(received.every((m) => m.temperature > 25)).toBe(true);
    await eventually('telemetry at the webhook', async () =>
      webhook.bodies.length > 0 ? true : undefined,
    );
    const batch = webhook.bodies[0] as any;
    expect(batch).toMatchObject({ namespace: 'default', device: 'dev1' });
    expect(webhook.badSignatures).toBe(0);
    // The filter reports its threshold: the module twin reaches the cluster through the service API.
    const twin = await eventually('the filter module twin through the service API', async () => {
      const res = await cluster.kubectl([
        'get',
        '--raw',
        '/apis/api.kedge.io/v1alpha1/namespaces/default/edgedevices/dev1/twin?moduleId=filter',
      ]);
      return res.code === 0 ? JSON.parse(res.stdout) : undefined;
    });
    expect(twin).toMatchObject({
      kind: 'ModuleTwin',
      moduleId: 'filter',
      properties: { reported: { threshold: 25 } },
    });
    const route = await json(cluster, ['get', 'routes.kedge.io', 'filtered-upstream']);
    expect(route.status.conditions.find((c: any) => c.type === 'Valid').status).toBe('True');
  });

  it('after reconcile, kubectl diff of every user object is empty (nothing fights Git)', async () => {
    // The objects were applied with kubectl apply, so the diff is kubectl's client-side one.
    const objects = [device('dev1'), deployment('25'), upstreamRoute];
    for (const object of objects) {
      const diff = await cluster.kubectl(['diff', '-f', '-'], JSON.stringify(object));
      expect({ kind: object.kind, code: diff.code, out: diff.stdout, err: diff.stderr }).toEqual({
        kind: object.kind,
        code: 0,
        out: '',
        err: '',
      });
    }
  });

  it('serves kubectl logs and kubectl logs -f from the device', async () => {
    const pod = 'telemetry-filter-dev1';
    const logs = await cluster.kubectlOk(['logs', pod, '-c', 'filter']);
    expect(logs).toContain('filter filter connected');
    const tail = await cluster.kubectlOk(['logs', pod, '-c', 'filter', '--tail=1']);
    expect(tail.trim().split('\n')).toHaveLength(1);
    const follow = spawn(`${cluster.cp.binDir}/kubectl`, [
      `--kubeconfig=${cluster.cp.kubeconfigPath}`,
      'logs',
      '-f',
      pod,
      '-c',
      'filter',
      '--tail=0',
    ]);
    let streamed = '';
    follow.stdout.on('data', (c: Buffer) => (streamed += c.toString()));
    await eventually(
      'new log lines streamed by kubectl logs -f',
      async () => ((streamed.match(/forwarded/g) ?? []).length >= 2 ? true : undefined),
      30_000,
    );
    follow.kill();
  });

  it("serves the containers' CPU and memory on /metrics/resource through the node proxy", async () => {
    const path = `/api/v1/nodes/${NODE}/proxy/metrics/resource`;
    const text = await eventually(
      'both containers in the resource metrics',
      async () => {
        const res = await cluster.kubectl(['get', '--raw', path]);
        return res.code === 0 && res.stdout.includes('container="filter"') ? res.stdout : undefined;
      },
      60_000,
    );
    for (const module of ['sensor', 'filter']) {
      const labels = `{container="${module}",namespace="default",pod="telemetry-${module}-dev1"}`;
      const memory = new RegExp(`^container_memory_working_set_bytes${labels} (\\S+) \\d+$`, 'm');
      const cpu = new RegExp(`^container_cpu_usage_seconds_total${labels} (\\S+) \\d+$`, 'm');
      expect(Number(memory.exec(text)?.[1])).toBeGreaterThan(0);
      expect(Number(cpu.exec(text)?.[1])).toBeGreaterThan(0);
    }
    expect(text).toMatch(/^node_memory_working_set_bytes \S+ \d+$/m);
  });

  it('replaces only the changed module when its env changes', async () => {
    const sensorBefore = await container('sensor');
    const filterBefore = await container('filter');
    await cluster.kubectlOk(['apply', '-f', '-'], JSON.stringify(deployment('26')));
    const filterAfter = await eventually(
      'the filter to be recreated with THRESHOLD=26',
      async () => {
        const c = await container('filter').catch(() => undefined);
        return c?.running && c.env.includes('THRESHOLD=26') ? c : undefined;
      },
      90_000,
    );
    expect(filterAfter.id).not.toBe(filterBefore.id);
    const sensorAfter = await container('sensor');
    expect(sensorAfter.id).toBe(sensorBefore.id);
    expect(sensorAfter.startedAt).toBe(sensorBefore.startedAt);
  });

  it('keeps modules running while the link is cut: NotReady, no eviction, telemetry and status resync after', async () => {
    await eventually(
      'pods Running again',
      async () => {
        const pods = await json(cluster, ['get', 'pods', '-l', 'kedge.io/deployment=telemetry']);
        return pods.items.length === 2 && pods.items.every((p: any) => p.status.phase === 'Running')
          ? true
          : undefined;
      },
      60_000,
    );
    const podsBefore = (
      await json(cluster, ['get', 'pods', '-l', 'kedge.io/deployment=telemetry'])
    ).items
      .map((p: any) => p.metadata.uid)
      .sort();
    const containersBefore = [await container('sensor'), await container('filter')];
    await controller.stop();
    const cutAt = new Date();
    await eventually(
      'the node to go NotReady',
      async () => {
        const n = await json(cluster, ['get', 'node', NODE]);
        return n.status.conditions.find((c: any) => c.type === 'Ready').status !== 'True'
          ? true
          : undefined;
      },
      60_000,
    );
    // Past the grace period plus the default not-ready toleration (10 s + 10 s here).
    await new Promise((r) => setTimeout(r, 15_000));
    const podsDuring = (await json(cluster, ['get', 'pods', '-l', 'kedge.io/deployment=telemetry']))
      .items;
    expect(podsDuring.map((p: any) => p.metadata.uid).sort()).toEqual(podsBefore);
    expect(podsDuring.every((p: any) => !p.metadata.deletionTimestamp)).toBe(true);
    controller = await startTestController(cluster, ports, nats.url);
    await eventually(
      'the node to be Ready again',
      async () => {
        const n = await json(cluster, ['get', 'node', NODE]);
        return n.status.conditions.find((c: any) => c.type === 'Ready').status === 'True'
          ? true
          : undefined;
      },
      90_000,
    );
    await eventually(
      'telemetry sent during the outage to arrive',
      async () =>
        received.some(
          (m) =>
            Date.parse(m.enqueuedAt) > cutAt.getTime() + 5_000 &&
            Date.parse(m.enqueuedAt) < cutAt.getTime() + 25_000,
        )
          ? true
          : undefined,
      60_000,
    );
    const containersAfter = [await container('sensor'), await container('filter')];
    expect(containersAfter.map((c) => [c.id, c.startedAt])).toEqual(
      containersBefore.map((c) => [c.id, c.startedAt]),
    );
    const podsAfter = await json(cluster, ['get', 'pods', '-l', 'kedge.io/deployment=telemetry']);
    expect(podsAfter.items.map((p: any) => p.metadata.uid).sort()).toEqual(podsBefore);
    expect(
      podsAfter.items.every((p: any) => p.status.containerStatuses[0].restartCount === 0),
    ).toBe(true);
  }, 300_000);

  it('shows CrashLoopBackOff for a crashing module and ErrImagePull/ImagePullBackOff for a bad image', async () => {
    const broken = {
      apiVersion: 'kedge.io/v1alpha1',
      kind: 'EdgeDeployment',
      metadata: { name: 'broken', namespace: 'default' },
      spec: {
        selector: { matchLabels: { app: 'temperature' } },
        modules: [
          {
            name: 'crasher',
            image: LOCAL_IMAGES.busybox,
            imagePullPolicy: 'Never',
            command: ['sh', '-c', 'echo boom; exit 3'],
          },
          { name: 'badimage', image: 'localhost:1/kedge/missing:1' },
        ],
      },
    };
    await cluster.kubectlOk(['apply', '-f', '-'], JSON.stringify(broken));
    await eventually(
      'CrashLoopBackOff and an image pull error in kubectl get pods',
      async () => {
        const table = await cluster.kubectlOk(['get', 'pods', '-l', 'kedge.io/deployment=broken']);
        return /broken-crasher-dev1\s+0\/1\s+CrashLoopBackOff/.test(table) &&
          /broken-badimage-dev1\s+0\/1\s+(ErrImagePull|ImagePullBackOff)/.test(table)
          ? true
          : undefined;
      },
      90_000,
    );
    await eventually(
      'lifecycle Events in kubectl describe pod',
      async () => {
        const crasher = await cluster.kubectlOk(['describe', 'pod', 'broken-crasher-dev1']);
        const badImage = await cluster.kubectlOk(['describe', 'pod', 'broken-badimage-dev1']);
        return /Normal\s+Created\s.*Created container crasher/.test(crasher) &&
          /Normal\s+Started\s.*Started container crasher/.test(crasher) &&
          /Warning\s+BackOff\s.*Back-off restarting failed container crasher/.test(crasher) &&
          /Normal\s+Pulling\s.*Pulling image "localhost:1\/kedge\/missing:1"/.test(badImage) &&
          /Warning\s+Failed\s.*Failed to pull image "localhost:1\/kedge\/missing:1"/.test(badImage)
          ? true
          : undefined;
      },
      60_000,
    );
    const d = await json(cluster, ['get', 'edgedeployment', 'broken']);
    await eventually('the deployment to count the failure', async () => {
      const dep = await json(cluster, ['get', 'edgedeployment', 'broken']);
      return dep.status?.reportedFailedCount === 1 ? true : undefined;
    });
    expect(d.metadata.name).toBe('broken');
    await cluster.kubectlOk(['delete', 'edgedeployment', 'broken', '--wait=false']);
  });

  it('records Disconnected and Connected Events when the device drops off and comes back', async () => {
    const presenceCount = async (reason: string): Promise<number> =>
      (
        await json(cluster, [
          'get',
          'events',
          '--field-selector',
          `involvedObject.kind=EdgeDevice,involvedObject.name=dev1,reason=${reason}`,
        ])
      ).items.reduce((n: number, e: any) => n + (e.count ?? 1), 0);
    const disconnects = await presenceCount('Disconnected');
    const connects = await presenceCount('Connected');
    // A frozen agent stops heartbeating, as a device that lost power would.
    node.child.kill('SIGSTOP');
    try {
      await eventually(
        'a Disconnected Event',
        async () => ((await presenceCount('Disconnected')) > disconnects ? true : undefined),
        60_000,
      );
    } finally {
      node.child.kill('SIGCONT');
    }
    await eventually(
      'a Connected Event after it',
      async () => ((await presenceCount('Connected')) > connects ? true : undefined),
      60_000,
    );
    const table = await cluster.kubectlOk([
      'get',
      'events',
      '--field-selector',
      'involvedObject.name=dev1',
    ]);
    expect(table).toMatch(
      /Warning\s+Disconnected\s+edgedevice\/dev1\s+device lost its gateway connection/,
    );
    expect(table).toMatch(/Normal\s+Connected\s+edgedevice\/dev1\s+device connected to a gateway/);
  }, 150_000);

  it('schedules a plain Deployment with a nodeSelector and the kedge toleration onto the virtual node', async () => {
    const plain = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'plain', namespace: 'default' },
      spec: {
        replicas: 1,
        selector: { matchLabels: { app: 'plain' } },
        template: {
          metadata: { labels: { app: 'plain' } },
          spec: {
            nodeSelector: { 'kedge.io/device': 'dev1' },
            tolerations: [{ key: 'kedge.io/edge', operator: 'Exists', effect: 'NoSchedule' }],
            containers: [
              {
                name: 'plain',
                image: LOCAL_IMAGES.busybox,
                imagePullPolicy: 'Never',
                command: ['sh', '-c', 'while true; do echo alive; sleep 2; done'],
              },
            ],
          },
        },
      },
    };
    await cluster.kubectlOk(['apply', '-f', '-'], JSON.stringify(plain));
    const pod = await eventually(
      'the plain pod to run on the device',
      async () => {
        const pods = await json(cluster, ['get', 'pods', '-l', 'app=plain']);
        const p = pods.items[0];
        return p?.spec.nodeName === NODE && p.status.phase === 'Running' ? p : undefined;
      },
      90_000,
    );
    expect(pod.spec.nodeName).toBe(NODE);
    expect((await container('plain')).running).toBe(true);
    await cluster.kubectlOk(['delete', 'deployment', 'plain']);
  });

  it('reports pod features a device cannot honour, module-name clashes and invalid routes', async () => {
    const pod = (name: string, container: string, extra: Record<string, unknown> = {}) => ({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace: 'default' },
      spec: {
        nodeName: NODE,
        tolerations: [{ key: 'kedge.io/edge', operator: 'Exists' }],
        containers: [
          {
            name: container,
            image: LOCAL_IMAGES.busybox,
            imagePullPolicy: 'Never',
            command: ['sleep', '3600'],
            ...extra,
          },
        ],
        ...(extra.volumeMounts ? { volumes: [{ name: 'scratch', emptyDir: {} }] } : {}),
      },
    });
    await cluster.kubectlOk(
      ['apply', '-f', '-'],
      JSON.stringify(
        pod('uses-volume', 'scratchpad', {
          volumeMounts: [{ name: 'scratch', mountPath: '/scratch' }],
        }),
      ),
    );
    await cluster.kubectlOk(['apply', '-f', '-'], JSON.stringify(pod('steals-sensor', 'sensor')));
    const unsupported = await eventually(
      'the unsupported-feature condition',
      async () => {
        const p = await json(cluster, ['get', 'pod', 'uses-volume']);
        return p.status.conditions?.find((c: any) => c.type === 'kedge.io/UnsupportedFeatures');
      },
      60_000,
    );
    expect(unsupported.message).toContain('volume scratch is not supported');
    const events = await cluster.kubectlOk([
      'get',
      'events',
      '--field-selector',
      'involvedObject.name=uses-volume',
      '-o',
      'jsonpath={.items[*].reason}',
    ]);
    expect(events).toContain('UnsupportedPodFeatures');
    const clash = await eventually(
      'the clashing pod to fail',
      async () => {
        const p = await json(cluster, ['get', 'pod', 'steals-sensor']);
        return p.status.phase === 'Failed' ? p.status : undefined;
      },
      60_000,
    );
    expect(clash.reason).toBe('ModuleNameConflict');
    expect(clash.message).toContain(
      'module sensor already runs on this device for pod telemetry-sensor-dev1',
    );
    await cluster.kubectlOk(['delete', 'pod', 'uses-volume', 'steals-sensor', '--wait=false']);
    const bad = {
      ...upstreamRoute,
      metadata: { name: 'broken-route', namespace: 'default' },
      spec: { deviceSelector: {}, route: 'FROM /messages/* WHERE $body.x >> 1 INTO $upstream' },
    };
    await cluster.kubectlOk(['apply', '-f', '-'], JSON.stringify(bad));
    const valid = await eventually('the Valid condition to be False', async () => {
      const r = await json(cluster, ['get', 'routes.kedge.io', 'broken-route']);
      return r.status?.conditions?.find((c: any) => c.type === 'Valid' && c.status === 'False')
        ? r.status
        : undefined;
    });
    expect(valid.error.position).toBeGreaterThan(20);
    expect(valid.conditions.find((c: any) => c.type === 'Valid').message).toMatch(
      /at position \d+/,
    );
    await cluster.kubectlOk(['delete', 'routes.kedge.io', 'broken-route']);
  });

  it('calls a direct method on a module with kedge invoke', async () => {
    const run = (args: string[]) => kedge(['invoke', ...args]);
    const ok = await run(['default/dev1/filter', 'ping', '{"hello":1}']);
    expect({ code: ok.code, stderr: ok.stderr }).toEqual({ code: 0, stderr: '' });
    expect(JSON.parse(ok.stdout)).toEqual({ pong: true, payload: { hello: 1 } });
    const missing = await run(['default/dev1/filter', 'noSuchMethod', '--timeout', '3']);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr.trim().split('\n')).toHaveLength(1);
    expect(missing.stderr).toMatch(/^kedge: /);
  });

  it('answers $edgeAgent ping, GetModuleLogs and RestartModule, and kedge restart', async () => {
    const agent = 'default/dev1/$edgeAgent';
    const ping = await kedge(['invoke', agent, 'ping']);
    expect({ code: ping.code, stdout: ping.stdout.trim() }).toEqual({ code: 0, stdout: 'null' });

    const request = (encoding: string) =>
      JSON.stringify({
        schemaVersion: '1.0',
        items: [{ id: 'sen.*', filter: { tail: 2, regex: 'sent' } }],
        encoding,
        contentType: 'text',
      });
    const logs = await kedge(['invoke', agent, 'GetModuleLogs', request('none')]);
    expect(logs.code).toBe(0);
    const [item] = JSON.parse(logs.stdout) as { id: string; payload: string }[];
    expect(item!.id).toBe('sensor');
    expect(item!.payload.split('\n')).toHaveLength(2);
    expect(item!.payload).toMatch(/^sent \{/);
    const zipped = await kedge(['invoke', agent, 'GetModuleLogs', request('gzip')]);
    const [packed] = JSON.parse(zipped.stdout) as { id: string; payloadBytes: string }[];
    expect(gunzipSync(Buffer.from(packed!.payloadBytes, 'base64')).toString()).toMatch(/^sent \{/);
    const bad = await kedge(['invoke', agent, 'GetModuleLogs', '{"items": "all"}']);
    expect(bad.code).not.toBe(0);
    expect(JSON.parse(bad.stdout).message).toMatch(/"items" lists at least one/);

    const before = await container('filter');
    const restarted = await kedge(['restart', 'default/dev1/filter']);
    expect({ code: restarted.code, stdout: restarted.stdout.trim() }).toEqual({
      code: 0,
      stdout: 'restarted default/dev1/filter',
    });
    const after = await container('filter');
    expect(after.id).toBe(before.id);
    expect(after.startedAt).not.toBe(before.startedAt);
    expect(after.running).toBe(true);
    await eventually('the restart counted in pod status', async () => {
      const pod = await json(cluster, ['get', 'pod', 'telemetry-filter-dev1']);
      return pod.status.containerStatuses[0].restartCount >= 1 ? true : undefined;
    });
    const unknown = await kedge(['restart', 'default/dev1/nosuch']);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toMatch(
      /^kedge: restarting default\/dev1\/nosuch failed \(404\): module nosuch is not deployed\n$/,
    );
  });

  it('refuses another device token, a wrong key and anonymous kubelet API calls', async () => {
    await cluster.kubectlOk(['apply', '-f', '-'], JSON.stringify(device('dev2')));
    const key = await eventually('dev2 key', async () => {
      const res = await cluster.kubectl([
        'get',
        'secret',
        'dev2-kedge-key',
        '-o',
        'jsonpath={.data.primaryKey}',
      ]);
      return res.code === 0 && res.stdout
        ? Buffer.from(res.stdout, 'base64').toString()
        : undefined;
    });
    const tryConnect = (username: string, password: string): Promise<string> =>
      new Promise((resolve) => {
        const c = mqtt.connect(`mqtts://localhost:${ports.hub}`, {
          clientId: username,
          username,
          password,
          ca: controller.caPem,
          reconnectPeriod: 0,
          connectTimeout: 5000,
        });
        c.on('connect', () => {
          c.end(true);
          resolve('connected');
        });
        c.on('error', (err) => {
          c.end(true);
          resolve(err.message);
        });
      });
    const dev2Token = createSasToken({
      resource: deviceResourceUri('default', 'dev2'),
      keyBase64: key,
    });
    expect(await tryConnect('default/dev2', dev2Token)).toBe('connected');
    expect(await tryConnect('default/dev1', dev2Token)).toMatch(
      /Bad username or password|Not authorized/i,
    );
    const wrongKey = createSasToken({
      resource: deviceResourceUri('default', 'dev1'),
      keyBase64: Buffer.from('not the key').toString('base64'),
    });
    expect(await tryConnect('default/dev1', wrongKey)).toMatch(
      /Bad username or password|Not authorized/i,
    );
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port: ports.kubelet,
          path: '/containerLogs/default/telemetry-filter-dev1/filter',
          rejectUnauthorized: false,
        },
        (res) => resolve(res.statusCode ?? 0),
      );
      req.on('error', reject);
      req.end();
    });
    expect([401, 403]).toContain(status);
  });

  it('ends a live session within 5 s when the key in its Secret is rotated', async () => {
    const secretKey = async (): Promise<string> =>
      Buffer.from(
        await cluster.kubectlOk([
          'get',
          'secret',
          'dev2-kedge-key',
          '-o',
          'jsonpath={.data.primaryKey}',
        ]),
        'base64',
      ).toString();
    const token = createSasToken({
      resource: deviceResourceUri('default', 'dev2'),
      keyBase64: await secretKey(),
    });
    const client = mqtt.connect(`mqtts://localhost:${ports.hub}`, {
      clientId: 'default/dev2',
      username: 'default/dev2',
      password: token,
      ca: controller.caPem,
      reconnectPeriod: 0,
    });
    await new Promise((resolve, reject) => {
      client.once('connect', resolve);
      client.once('error', reject);
    });
    const closed = new Promise<number>((resolve) =>
      client.once('close', () => resolve(Date.now())),
    );
    const rotated = Buffer.from(randomBytes(32).toString('base64')).toString('base64');
    const started = Date.now();
    await cluster.kubectlOk([
      'patch',
      'secret',
      'dev2-kedge-key',
      '--type',
      'merge',
      '-p',
      JSON.stringify({ data: { primaryKey: rotated } }),
    ]);
    const ms = (await closed) - started;
    console.log(`session with the old key closed ${ms} ms after the key Secret was patched`);
    expect(ms).toBeLessThan(5_000);
    client.end(true);
  });

  it('removes modules and pods with the EdgeDeployment, and the Node and Lease with the EdgeDevice', async () => {
    await cluster.kubectlOk(['delete', 'edgedeployment', 'telemetry', '--wait=false']);
    await eventually(
      'the module pods to be gone',
      async () => {
        const pods = await json(cluster, ['get', 'pods', '-l', 'kedge.io/deployment=telemetry']);
        return pods.items.length === 0 ? true : undefined;
      },
      90_000,
    );
    await eventually(
      'the module containers to be removed',
      async () =>
        (await docker(['ps', '-aq', '--filter', `name=${PREFIX}sensor`])) === '' ? true : undefined,
      60_000,
    );
    const key = Buffer.from(
      await cluster.kubectlOk([
        'get',
        'secret',
        'dev1-kedge-key',
        '-o',
        'jsonpath={.data.primaryKey}',
      ]),
      'base64',
    ).toString();
    await cluster.kubectlOk(['delete', 'edgedevice', 'dev1', '--wait=true', '--timeout=60s']);
    const token = createSasToken({
      resource: deviceResourceUri('default', 'dev1'),
      keyBase64: key,
    });
    const revoked = await new Promise<string>((resolve) => {
      const c = mqtt.connect(`mqtts://localhost:${ports.hub}`, {
        clientId: 'default/dev1',
        username: 'default/dev1',
        password: token,
        ca: controller.caPem,
        reconnectPeriod: 0,
      });
      c.on('connect', () => resolve('connected'));
      c.on('error', (err) => resolve(err.message));
    });
    expect(revoked).toMatch(/Bad username or password|Not authorized/i);
    await eventually('Node and Lease to be deleted', async () => {
      const n = await cluster.kubectl(['get', 'node', NODE]);
      const l = await cluster.kubectl(['get', 'lease', '-n', 'kube-node-lease', NODE]);
      return n.code !== 0 && l.code !== 0 ? true : undefined;
    });
  });
});
