import mqtt from 'mqtt';
import { startTestNats, type TestNats } from '../support/nats.js';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { bootstrapConfig } from '../../src/cli/device.js';
import { deviceTopic, deviceResourceUri } from '../../src/common/cloudlink/protocol.js';
import { createSasToken } from '../../src/common/iothub/index.js';
import { KubeClient } from '../../src/controller/kube/client.js';
import type { RunningController } from '../../src/controller/manager.js';
import { docker } from '../../src/localcluster/docker.js';
import { LOCAL_IMAGES } from '../../src/localcluster/images.js';
import { freePort } from '../../src/localcluster/ports.js';
import { eventually, startTestCluster, type TestCluster } from '../support/cluster.js';
import { startNode, startTestController, type NodeProcess } from './support.js';

const A = 'tenant-a';
const B = 'tenant-b';
const NODE = `edge-a.${A}.kedge`;
const PREFIX = 'e2e-edge-a-';

const device = (name: string, spec: Record<string, unknown> = {}) => ({
  apiVersion: 'kedge.io/v1alpha1',
  kind: 'EdgeDevice',
  metadata: { name, namespace: A, labels: { fleet: 'a' } },
  spec: { heartbeat: { intervalSecs: 2, offlineAfterSecs: 8 }, ...spec },
});
const sleeper = (name: string) => ({
  name,
  image: LOCAL_IMAGES.busybox,
  imagePullPolicy: 'Never',
  command: ['sh', '-c', 'trap "exit 0" TERM; while true; do sleep 1; done'],
});
const TOLERATE_ALL = [{ operator: 'Exists' }];

async function json(cluster: TestCluster, args: string[]): Promise<any> {
  return JSON.parse(await cluster.kubectlOk([...args, '-o', 'json']));
}

async function apply(cluster: TestCluster, obj: unknown): Promise<void> {
  await cluster.kubectlOk(['apply', '-f', '-'], JSON.stringify(obj));
}

/** The module container's state, or undefined when the device never created it. */
async function container(module: string): Promise<{ running: boolean; env: string[] } | undefined> {
  const out = await docker(['inspect', `${PREFIX}${module}`]).catch(() => undefined);
  if (!out) return undefined;
  const info = JSON.parse(out)[0];
  return { running: info.State.Running, env: info.Config.Env };
}

async function admittedCondition(cluster: TestCluster, ns: string, pod: string): Promise<any> {
  const p = await json(cluster, ['get', 'pod', pod, '-n', ns]);
  return p.status.conditions?.find((c: any) => c.type === 'kedge.io/Admitted');
}

async function eventReasons(cluster: TestCluster, ns: string, name: string): Promise<string> {
  return cluster.kubectlOk([
    'get',
    'events',
    '-n',
    ns,
    '--field-selector',
    `involvedObject.name=${name}`,
    '-o',
    'jsonpath={.items[*].reason}',
  ]);
}

async function deviceCondition(cluster: TestCluster, name: string, type: string): Promise<any> {
  const d = await json(cluster, ['get', 'edgedevice', name, '-n', A]);
  return d.status?.conditions?.find((c: any) => c.type === type);
}

async function secretValue(cluster: TestCluster, ns: string, name: string, key: string) {
  const res = await cluster.kubectl([
    'get',
    'secret',
    name,
    '-n',
    ns,
    '-o',
    `jsonpath={.data.${key}}`,
  ]);
  return res.code === 0 && res.stdout ? Buffer.from(res.stdout, 'base64').toString() : undefined;
}

/** Connects to the cloud hub as a device; resolves with the client or the refusal. */
function connectDevice(
  port: number,
  caPem: string,
  name: string,
  keyBase64: string,
): Promise<{ client?: mqtt.MqttClient; error?: string }> {
  const username = `${A}/${name}`;
  return new Promise((resolve) => {
    const client = mqtt.connect(`mqtts://localhost:${port}`, {
      clientId: username,
      username,
      password: createSasToken({ resource: deviceResourceUri(A, name), keyBase64 }),
      ca: caPem,
      reconnectPeriod: 0,
      connectTimeout: 5000,
    });
    client.on('connect', () => resolve({ client }));
    client.on('error', (err) => {
      client.end(true);
      resolve({ error: err.message });
    });
  });
}

/** A kubeconfig for a ServiceAccount of the test cluster. */
async function serviceAccountConfig(cluster: TestCluster, ns: string, sa: string) {
  const token = (await cluster.kubectlOk(['create', 'token', sa, '-n', ns])).trim();
  const admin = await json(cluster, ['config', 'view', '--raw', '--minify']);
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'local', cluster: admin.clusters[0].cluster }],
    users: [{ name: sa, user: { token } }],
    contexts: [{ name: sa, context: { cluster: 'local', user: sa } }],
    'current-context': sa,
  };
  const file = path.join(await mkdtemp(path.join(tmpdir(), 'kedge-sa-')), 'kubeconfig');
  await writeFile(file, stringify(config), { mode: 0o600 });
  return file;
}

describe('tenancy: devices run only what their namespace and they allow', () => {
  let cluster: TestCluster;
  let controller: RunningController;
  let nats: TestNats;
  let node: NodeProcess;
  let ports: { hub: number; kubelet: number };
  const clients: mqtt.MqttClient[] = [];

  beforeAll(async () => {
    cluster = await startTestCluster('tenancy');
    ports = { hub: await freePort(), kubelet: await freePort() };
    nats = await startTestNats('tenancy');
    controller = await startTestController(cluster, ports, nats.url);
    for (const [ns, value] of [
      [A, 'from-tenant-a'],
      [B, 'from-tenant-b'],
    ] as const) {
      await cluster.kubectlOk(['create', 'namespace', ns]);
      await cluster.kubectlOk([
        'create',
        'secret',
        'generic',
        'app-config',
        '-n',
        ns,
        `--from-literal=value=${value}`,
      ]);
    }
    await apply(cluster, device('edge-a'));
    node = await startNode(cluster, `${A}/edge-a`, ports.hub);
    await eventually(
      'the device node to be Ready',
      async () => {
        const n = await json(cluster, ['get', 'node', NODE]);
        const ready = n.status.conditions?.find((c: any) => c.type === 'Ready')?.status;
        return ready === 'True' && n.status.nodeInfo.containerRuntimeVersion ? true : undefined;
      },
      90_000,
    );
  }, 180_000);

  afterAll(async () => {
    clients.forEach((c) => c.end(true));
    await node?.kill('SIGTERM');
    await controller?.stop();
    await nats?.stop();
    const ids = await docker(['ps', '-aq', '--filter', `name=${PREFIX}`]).catch(() => '');
    if (ids) await docker(['rm', '-f', ...ids.split('\n')]).catch(() => undefined);
    await cluster?.cp.stop();
  });

  it("advertises only the controller's address on the device Node, never the device's hostname", async () => {
    const n = await json(cluster, ['get', 'node', NODE]);
    expect(n.status.addresses).toEqual([
      { type: 'InternalIP', address: controller.ctx.kubelet.address },
      { type: 'Hostname', address: controller.ctx.kubelet.address },
    ]);
  });

  it("refuses a pod of another namespace bound to the device; once allowed, its Secrets come from the pod's own namespace", async () => {
    const intruder = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'intruder', namespace: B },
      spec: {
        nodeName: NODE,
        tolerations: TOLERATE_ALL,
        containers: [
          {
            ...sleeper('guest'),
            env: [
              {
                name: 'SECRET',
                valueFrom: { secretKeyRef: { name: 'app-config', key: 'value' } },
              },
              {
                name: 'DEVICE_KEY',
                valueFrom: {
                  secretKeyRef: { name: 'edge-a-kedge-key', key: 'primaryKey', optional: true },
                },
              },
            ],
          },
        ],
      },
    };
    const resident = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'resident', namespace: A },
      spec: { nodeName: NODE, tolerations: TOLERATE_ALL, containers: [sleeper('resident')] },
    };
    await apply(cluster, intruder);
    await apply(cluster, resident);
    // The device applied a desired state after the intruder existed: it must run only the resident.
    await eventually(
      'the resident pod Running',
      async () => ((await container('resident'))?.running ? true : undefined),
      90_000,
    );
    expect(await container('guest')).toBeUndefined();
    const status = (await json(cluster, ['get', 'edgedevice', 'edge-a', '-n', A])).status;
    expect(status.modules.map((m: any) => m.name)).not.toContain('guest');
    const refused = await eventually('the intruder to be refused', () =>
      admittedCondition(cluster, B, 'intruder'),
    );
    expect(refused).toMatchObject({ status: 'False', reason: 'NamespaceNotAllowed' });
    expect(refused.message).toContain(
      `EdgeDevice ${A}/edge-a does not run pods from namespace ${B}`,
    );
    expect(await eventReasons(cluster, B, 'intruder')).toContain('NamespaceNotAllowed');

    await cluster.kubectlOk([
      'patch',
      'edgedevice',
      'edge-a',
      '-n',
      A,
      '--type=merge',
      '-p',
      JSON.stringify({ spec: { tenancy: { allowPodsFromNamespaces: [B] } } }),
    ]);
    const guest = await eventually(
      'the allowed guest container to run',
      async () => {
        const c = await container('guest');
        return c?.running ? c : undefined;
      },
      90_000,
    );
    expect(guest.env).toContain('SECRET=from-tenant-b');
    expect(guest.env.filter((e) => e.startsWith('DEVICE_KEY='))).toEqual([]);
    await cluster.kubectlOk(['delete', 'pod', 'intruder', '-n', B, '--wait=false']);
  }, 240_000);

  it('does not run DaemonSet pods on the device unless the DaemonSet opts in', async () => {
    const daemonSet = (annotations: Record<string, string>) => ({
      apiVersion: 'apps/v1',
      kind: 'DaemonSet',
      metadata: { name: 'node-agent', namespace: A },
      spec: {
        selector: { matchLabels: { app: 'node-agent' } },
        template: {
          metadata: { labels: { app: 'node-agent' }, annotations },
          spec: { tolerations: TOLERATE_ALL, containers: [sleeper('agent')] },
        },
      },
    });
    await apply(cluster, daemonSet({}));
    const pod = await eventually(
      'the DaemonSet pod to be refused',
      async () => {
        const pods = await json(cluster, ['get', 'pods', '-n', A, '-l', 'app=node-agent']);
        const p = pods.items.find((i: any) => i.spec.nodeName === NODE);
        const c = p?.status.conditions?.find((x: any) => x.type === 'kedge.io/Admitted');
        return c ? { name: p.metadata.name, condition: c } : undefined;
      },
      90_000,
    );
    expect(pod.condition).toMatchObject({ status: 'False', reason: 'DaemonSetNotAllowed' });
    expect(pod.condition.message).toContain('kedge.io/allow-daemonset');
    expect(await eventReasons(cluster, A, pod.name)).toContain('DaemonSetNotAllowed');
    expect(await container('agent')).toBeUndefined();

    await apply(cluster, daemonSet({ 'kedge.io/allow-daemonset': 'true' }));
    await eventually(
      'the opted-in DaemonSet pod to run',
      async () => ((await container('agent'))?.running ? true : undefined),
      120_000,
    );
    await cluster.kubectlOk(['delete', 'daemonset', 'node-agent', '-n', A, '--wait=false']);
  }, 240_000);

  it("refuses host access in createOptions unless the namespace's Pod Security level and the device both allow it", async () => {
    await cluster.kubectlOk([
      'patch',
      'edgedevice',
      'edge-a',
      '-n',
      A,
      '--type=merge',
      '-p',
      JSON.stringify({ spec: { hostAccess: { hostPaths: ['/tmp'] } } }),
    ]);
    await apply(cluster, {
      apiVersion: 'kedge.io/v1alpha1',
      kind: 'EdgeDeployment',
      metadata: { name: 'hosty', namespace: A },
      spec: {
        selector: { matchLabels: { fleet: 'a' } },
        modules: [
          { ...sleeper('mounter'), createOptions: { HostConfig: { Binds: ['/tmp:/host-tmp'] } } },
          {
            ...sleeper('rooter'),
            createOptions: { HostConfig: { Privileged: true, Binds: ['/:/host'] } },
          },
        ],
      },
    });
    const mounter = await eventually('the mounter to be refused', () =>
      admittedCondition(cluster, A, 'hosty-mounter-edge-a'),
    );
    expect(mounter).toMatchObject({ status: 'False', reason: 'HostAccessDenied' });
    expect(mounter.message).toContain('HostConfig.Binds /tmp');
    expect(mounter.message).toContain(`namespace ${A} enforces Pod Security "baseline"`);
    const rooter = await eventually('the rooter to be refused', () =>
      admittedCondition(cluster, A, 'hosty-rooter-edge-a'),
    );
    expect(rooter.message).toContain('HostConfig.Privileged');
    expect(rooter.message).toContain('HostConfig.Binds /');
    expect(await eventReasons(cluster, A, 'hosty-rooter-edge-a')).toContain('HostAccessDenied');

    await cluster.kubectlOk([
      'label',
      'namespace',
      A,
      'pod-security.kubernetes.io/enforce=privileged',
    ]);
    await eventually(
      'the mounter, now allowed by both, to run',
      async () => ((await container('mounter'))?.running ? true : undefined),
      90_000,
    );
    const still = await admittedCondition(cluster, A, 'hosty-rooter-edge-a');
    expect(still.message).toContain(
      `EdgeDevice ${A}/edge-a does not allow it in spec.hostAccess.privileged`,
    );
    expect(await container('rooter')).toBeUndefined();
    await cluster.kubectlOk(['label', 'namespace', A, 'pod-security.kubernetes.io/enforce-']);
    await cluster.kubectlOk(['delete', 'edgedeployment', 'hosty', '-n', A, '--wait=false']);
  }, 240_000);

  it("drops a malformed device report with a metric, and the namespace's deployment status still moves", async () => {
    await apply(cluster, device('mute'));
    const key = await eventually('the mute device key', () =>
      secretValue(cluster, A, 'mute-kedge-key', 'primaryKey'),
    );
    const { client, error } = await connectDevice(ports.hub, controller.caPem, 'mute', key);
    expect(error).toBeUndefined();
    clients.push(client!);
    await client!.publishAsync(
      deviceTopic(A, 'mute', 'reported'),
      JSON.stringify({ modules: 5, facts: 'none' }),
      { qos: 1 },
    );
    await eventually('the rejected report to be counted', async () => {
      const res = await fetch(`http://127.0.0.1:${controller.metricsPort}/metrics`);
      const line = (await res.text()).match(/^kedge_controller_reports_rejected_total (\d+)/m);
      return Number(line?.[1] ?? 0) >= 1 ? true : undefined;
    });
    await apply(cluster, {
      apiVersion: 'kedge.io/v1alpha1',
      kind: 'EdgeDeployment',
      metadata: { name: 'after', namespace: A },
      spec: { selector: { matchLabels: { fleet: 'a' } }, modules: [sleeper('late')] },
    });
    await eventually(
      'the deployment to count edge-a successful despite the bad report',
      async () => {
        const s = (await json(cluster, ['get', 'edgedeployment', 'after', '-n', A])).status;
        return s?.targetedCount === 2 && s?.reportedSuccessfulCount === 1 ? true : undefined;
      },
      90_000,
    );
    const mute = await json(cluster, ['get', 'edgedevice', 'mute', '-n', A]);
    expect(mute.status.phase).toBe('Connected');
    await cluster.kubectlOk(['delete', 'edgedeployment', 'after', '-n', A, '--wait=false']);
  }, 180_000);

  it('never adopts or deletes a Secret the device does not own, and refuses keys that decode to nothing', async () => {
    await apply(cluster, {
      ...device('borrower', { authentication: { symmetricKey: { secretName: 'app-config' } } }),
    });
    const notOwned = await eventually('the borrower to be refused its key', async () => {
      const c = await deviceCondition(cluster, 'borrower', 'Ready');
      return c?.reason === 'KeySecretNotOwned' ? c : undefined;
    });
    expect(notOwned.status).toBe('False');
    expect(notOwned.message).toContain('kedge.io/device-key-for=borrower');
    await cluster.kubectlOk(['delete', 'edgedevice', 'borrower', '-n', A, '--timeout=60s']);
    expect(await secretValue(cluster, A, 'app-config', 'value')).toBe('from-tenant-a');

    await apply(cluster, {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'weak-key', namespace: A, labels: { 'kedge.io/device-key-for': 'weak' } },
      stringData: { primaryKey: '!!!!' },
    });
    await apply(
      cluster,
      device('weak', { authentication: { symmetricKey: { secretName: 'weak-key' } } }),
    );
    const invalid = await eventually('the weak key to be refused', async () => {
      const c = await deviceCondition(cluster, 'weak', 'Credentials');
      return c?.reason === 'InvalidKey' ? c : undefined;
    });
    expect(invalid.message).toContain('primaryKey: the key is not base64');
    // '!!!!' decodes to an empty HMAC key: a token signed with the empty key must not connect.
    const forged = await connectDevice(ports.hub, controller.caPem, 'weak', '');
    forged.client?.end(true);
    expect(forged.error).toMatch(/Bad username or password|Not authorized/i);
  }, 120_000);

  it('publishes the CA certificate in a ConfigMap: enrolment works without any access to the CA Secret', async () => {
    const cm = await json(cluster, ['get', 'configmap', 'kedge-ca', '-n', 'kedge-system']);
    expect(cm.data['ca.crt']).toBe(controller.caPem);
    await cluster.kubectlOk(['create', 'serviceaccount', 'enroller', '-n', A]);
    await cluster.kubectlOk([
      'create',
      'role',
      'enroller',
      '-n',
      A,
      '--verb=get',
      '--resource=edgedevices.kedge.io,secrets',
    ]);
    await cluster.kubectlOk([
      'create',
      'rolebinding',
      'enroller',
      '-n',
      A,
      '--role=enroller',
      `--serviceaccount=${A}:enroller`,
    ]);
    const as = `--as=system:serviceaccount:${A}:enroller`;
    const canRead = await cluster.kubectl([
      'auth',
      'can-i',
      'get',
      'secret/kedge-ca',
      '-n',
      'kedge-system',
      as,
    ]);
    expect(canRead.stdout.trim()).toBe('no');
    const client = KubeClient.fromConfig(await serviceAccountConfig(cluster, A, 'enroller'));
    const config = await bootstrapConfig(client, 'edge-a', {
      namespace: A,
      hubUrl: `mqtts://localhost:${ports.hub}`,
      controllerNamespace: 'kedge-system',
      dataDir: '/var/lib/kedge',
      runtime: 'docker',
    });
    expect((config.cloud as { caPem: string }).caPem).toBe(controller.caPem);
  });

  it('rejects EdgeDevice nodeLabels with reserved prefixes in the API server, naming the field', async () => {
    for (const key of [
      'node-role.kubernetes.io/control-plane',
      'node-restriction.kubernetes.io/trusted',
      'kubernetes.io/hostname',
      'k8s.io/anything',
    ]) {
      const res = await cluster.kubectl(
        ['apply', '-f', '-'],
        JSON.stringify(device('claimer', { nodeLabels: { [key]: 'x' } })),
      );
      expect({ key, code: res.code }).toEqual({ key, code: 1 });
      expect(res.stderr).toContain('spec.nodeLabels');
      expect(res.stderr).toContain('nodeLabels may not use the reserved prefixes');
    }
    await apply(
      cluster,
      device('claimer', { nodeLabels: { 'topology.kubernetes.io/zone': 'z1' } }),
    );
    await cluster.kubectlOk(['delete', 'edgedevice', 'claimer', '-n', A, '--timeout=60s']);
  });

  it('neither patches nor deletes a Node of the device name that is not its own', async () => {
    await apply(cluster, {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name: `squat.${A}.kedge`, labels: { owner: 'someone-else' } },
    });
    await apply(cluster, device('squat'));
    const refused = await eventually('the squat device to report the foreign Node', async () => {
      const c = await deviceCondition(cluster, 'squat', 'NodeOwned');
      return c?.status === 'False' ? c : undefined;
    });
    expect(refused.reason).toBe('NodeNotOwned');
    expect(await eventReasons(cluster, A, 'squat')).toContain('NodeNotOwned');
    const n = await json(cluster, ['get', 'node', `squat.${A}.kedge`]);
    expect(n.metadata.labels).toEqual({ owner: 'someone-else' });
    await cluster.kubectlOk(['delete', 'edgedevice', 'squat', '-n', A, '--timeout=60s']);
    const after = await cluster.kubectl(['get', 'node', `squat.${A}.kedge`]);
    expect(after.code).toBe(0);
  });
});
