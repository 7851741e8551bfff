import { readFile, writeFile, mkdtemp } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { connect } from 'node:tls';
import { createCa, issueCertificate, type KeyPair } from '../../src/common/pki.js';
import type { RunningController } from '../../src/controller/manager.js';
import { docker } from '../../src/localcluster/docker.js';
import { kubeconfigFor } from '../../src/localcluster/control-plane.js';
import { LOCAL_IMAGES } from '../../src/localcluster/images.js';
import { freePort } from '../../src/localcluster/ports.js';
import { eventually, startTestCluster, type TestCluster } from '../support/cluster.js';
import { startTestNats, type TestNats } from '../support/nats.js';
import {
  startNode,
  startTestController,
  type NodeProcess,
  runKedge,
  type CliRun,
} from './support.js';

// Tenant A runs a device with a module; tenant B has a device of its own, with no modules.
const A = { namespace: 'tenant-a', device: 'dev-a', node: 'dev-a.tenant-a.kedge' };
const B = { namespace: 'tenant-b', device: 'dev-b', node: 'dev-b.tenant-b.kedge' };
const PREFIX = `e2e-${A.device}-`;
/** Short-lived serving certificates, so the test outlives the first ones. */
const CERT_VALIDITY_SECS = 30;
const CERT_RENEW_BEFORE_SECS = 15;

const device = (where: typeof A) => ({
  apiVersion: 'kedge.io/v1alpha1',
  kind: 'EdgeDevice',
  metadata: { name: where.device, namespace: where.namespace, labels: { app: where.device } },
  spec: { heartbeat: { intervalSecs: 2, offlineAfterSecs: 8 } },
});

/** The filter module; it reports the `threshold` its desired properties set. */
const filterModule = (desiredProperties: Record<string, unknown>) => ({
  name: 'filter',
  image: LOCAL_IMAGES.node,
  imagePullPolicy: 'Never',
  command: ['node', '/app/modules/filter.mjs'],
  desiredProperties,
});

const deployment = {
  apiVersion: 'kedge.io/v1alpha1',
  kind: 'EdgeDeployment',
  metadata: { name: 'methods', namespace: A.namespace },
  spec: {
    selector: { matchLabels: { app: A.device } },
    modules: [filterModule({ threshold: 30, label: 'first' })],
  },
};

/**
 * RBAC: alice may invoke methods, read twins and patch them in tenant A; carol may only read A's
 * twins; mallory has nodes/proxy on B's node only.
 */
const aliceIn = (role: string) => ({
  apiVersion: 'rbac.authorization.k8s.io/v1',
  kind: 'RoleBinding',
  metadata: { name: `alice-${role}`, namespace: A.namespace },
  roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: `kedge-${role}` },
  subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'alice' }],
});
const rbac = [
  aliceIn('edgedevice-invoke'),
  aliceIn('edgedevice-twin-reader'),
  {
    ...aliceIn('edgedevice-twin-reader'),
    metadata: { name: 'carol-twin-reader', namespace: A.namespace },
    subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'carol' }],
  },
  {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRole',
    metadata: { name: 'node-b-proxy' },
    rules: [
      {
        apiGroups: [''],
        resources: ['nodes/proxy'],
        resourceNames: [B.node],
        verbs: ['get', 'create'],
      },
    ],
  },
  {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: { name: 'mallory-node-b-proxy' },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'node-b-proxy' },
    subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'mallory' }],
  },
];

const invokePath = (where: typeof A) =>
  `/apis/api.kedge.io/v1alpha1/namespaces/${where.namespace}/edgedevices/${where.device}/invoke`;
const ping = JSON.stringify({ moduleId: 'filter', methodName: 'ping', payload: { n: 1 } });
const twinPath = (where: typeof A) =>
  `/apis/api.kedge.io/v1alpha1/namespaces/${where.namespace}/edgedevices/${where.device}/twin?moduleId=filter`;

/** Runs the built `kedge` CLI. */
const kedge = (args: string[]): Promise<CliRun> => runKedge(args);

/** A kubeconfig for user alice, with a client certificate from the cluster CA. */
async function aliceKubeconfig(cluster: TestCluster): Promise<string> {
  const alice = issueCertificate(cluster.cp.ca, { commonName: 'alice', usage: ['client'] });
  const dir = await mkdtemp(path.join(tmpdir(), 'kedge-alice-'));
  const kubeconfig = path.join(dir, 'kubeconfig');
  await writeFile(kubeconfig, kubeconfigFor(cluster.cp.server, cluster.cp.ca.certPem, alice));
  return kubeconfig;
}

/** The filter module's container on the device: its id, start time and restart count. */
async function filterContainer(): Promise<{ id: string; startedAt: string; restarts: number }> {
  const ids = await docker([
    'ps',
    '-q',
    '--no-trunc',
    '--filter',
    `name=${PREFIX}`,
    '--filter',
    'label=io.kedge.module=filter',
  ]);
  expect(ids.split('\n')).toHaveLength(1);
  const [startedAt, restarts] = (
    await docker(['inspect', '--format', '{{.State.StartedAt}} {{.RestartCount}}', ids])
  ).split(' ');
  return { id: ids, startedAt: startedAt!, restarts: Number(restarts) };
}

/** The desired-properties events the filter module's SDK client logged, oldest first. */
async function desiredEvents(
  cluster: TestCluster,
  pod: string,
): Promise<Record<string, unknown>[]> {
  const logs = await cluster.kubectlOk(['logs', '-n', A.namespace, pod, '-c', 'filter']);
  return logs
    .split('\n')
    .filter((line) => line.startsWith('desired '))
    .map((line) => JSON.parse(line.slice('desired '.length)) as Record<string, unknown>);
}

/** The certificate a TLS server presents, verified against `caPem` (no host name check). */
function servingCertificate(port: number, caPem: string): Promise<{ validTo: number }> {
  return new Promise((resolve, reject) => {
    const socket = connect({
      host: '127.0.0.1',
      port,
      ca: caPem,
      checkServerIdentity: () => undefined,
    });
    socket.once('secureConnect', () => {
      resolve({ validTo: Date.parse(socket.getPeerCertificate().valid_to) });
      socket.end();
    });
    socket.once('error', reject);
  });
}

/** A raw request to the API server as the admin, impersonating `user`. */
async function rawAsUser(
  cluster: TestCluster,
  user: string,
  urlPath: string,
  headers: Record<string, string>,
): Promise<{ status: number; body: string }> {
  const config = JSON.parse(await readFile(cluster.cp.kubeconfigPath, 'utf8'));
  const b64 = (s: string): string => Buffer.from(s, 'base64').toString();
  const server = new URL(cluster.cp.server);
  return new Promise((resolve, reject) => {
    const req = request({
      host: server.hostname,
      port: server.port,
      path: urlPath,
      ca: cluster.cp.ca.certPem,
      cert: b64(config.users[0].user['client-certificate-data']),
      key: b64(config.users[0].user['client-key-data']),
      headers: { 'Impersonate-User': user, ...headers },
    });
    req.once('response', (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.once('upgrade', (_res, socket) => {
      socket.destroy();
      resolve({ status: 101, body: '' });
    });
    req.once('error', reject);
    req.end();
  });
}

describe('service API and kubelet API: access to one device never implies another', () => {
  let cluster: TestCluster;
  let controller: RunningController;
  let nats: TestNats;
  let node: NodeProcess;
  let controllerCa: KeyPair;
  let firstKubeletCertValidTo: number;
  let firstGatewayCertValidTo: number;
  let gatewayPort: number;
  let podA: string;

  beforeAll(async () => {
    controllerCa = createCa('kedge-controller-ca');
    // The API server verifies kubelet serving certificates, so an expired one would fail logs.
    cluster = await startTestCluster('service-api', {
      kubeletServingCaPem: controllerCa.certPem,
    });
    await cluster.kubectlOk(['create', 'namespace', 'kedge-system']);
    await cluster.kubectlOk([
      'create',
      'secret',
      'generic',
      'kedge-ca',
      '-n',
      'kedge-system',
      `--from-literal=ca.crt=${controllerCa.certPem}`,
      `--from-literal=ca.key=${controllerCa.keyPem}`,
    ]);
    const ports = { hub: await freePort(), kubelet: await freePort() };
    nats = await startTestNats('service-api');
    controller = await startTestController(cluster, ports, nats.url, {
      certificates: {
        validitySecs: CERT_VALIDITY_SECS,
        renewBeforeSecs: CERT_RENEW_BEFORE_SECS,
      },
    });
    firstKubeletCertValidTo = (await servingCertificate(ports.kubelet, controllerCa.certPem))
      .validTo;
    gatewayPort = ports.hub;
    firstGatewayCertValidTo = (await servingCertificate(gatewayPort, controllerCa.certPem)).validTo;
    for (const ns of [A.namespace, B.namespace])
      await cluster.kubectlOk(['create', 'namespace', ns]);
    await cluster.kubectlOk(
      ['apply', '-f', '-'],
      JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [device(A), device(B), ...rbac] }),
    );
    node = await startNode(cluster, A.device, ports.hub, { namespace: A.namespace });
    await cluster.kubectlOk(['apply', '-f', '-'], JSON.stringify(deployment));
    podA = await eventually(
      "tenant A's module running",
      async () => {
        const pods = JSON.parse(
          await cluster.kubectlOk(['get', 'pods', '-n', A.namespace, '-o', 'json']),
        );
        const pod = pods.items.find((p: any) => p.status?.phase === 'Running');
        return pod?.metadata.name as string | undefined;
      },
      120_000,
    );
    // The module answers methods once its SDK client is connected.
    await eventually('filter connected', async () => {
      const logs = await cluster.kubectl(['logs', '-n', A.namespace, podA, '-c', 'filter']);
      return logs.stdout.includes('connected') ? true : undefined;
    });
    await eventually('B node registered', async () =>
      (await cluster.kubectl(['get', 'node', B.node])).code === 0 ? true : undefined,
    );
  });

  afterAll(async () => {
    await node?.kill('SIGTERM');
    await controller?.stop();
    await nats?.stop();
    const ids = await docker(['ps', '-aq', '--filter', `name=${PREFIX}`]).catch(() => '');
    if (ids) await docker(['rm', '-f', ...ids.split('\n')]).catch(() => undefined);
    await docker(['network', 'rm', `kedge-e2e-${A.device}`]).catch(() => undefined);
    await cluster?.cp.stop();
  });

  it('lets a user bound to invoke in namespace A call a method on A’s device (kubectl --as)', async () => {
    const out = await cluster.kubectlOk(
      ['create', '--raw', invokePath(A), '-f', '-', '--as', 'alice'],
      ping,
    );
    expect(JSON.parse(out)).toMatchObject({
      kind: 'DirectMethodResponse',
      status: 200,
      payload: { pong: true, payload: { n: 1 } },
    });
  });

  it('refuses the same user on namespace B’s device with 403 and a message naming what is missing', async () => {
    const res = await cluster.kubectl(
      ['create', '--raw', invokePath(B), '-f', '-', '--as', 'alice'],
      ping,
    );
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain('Forbidden');
    expect(res.stderr).toContain(
      'User "alice" cannot create resource "edgedevices/invoke" in API group "api.kedge.io" in the namespace "tenant-b"',
    );
  });

  it('kedge invoke uses the service API with the user’s own kubeconfig', async () => {
    const kubeconfig = await aliceKubeconfig(cluster);
    const run = (target: string) =>
      kedge(['invoke', target, 'ping', '{"k":2}', '--kubeconfig', kubeconfig]);
    const ok = await run(`${A.namespace}/${A.device}/filter`);
    expect({ code: ok.code, stderr: ok.stderr }).toEqual({ code: 0, stderr: '' });
    expect(JSON.parse(ok.stdout)).toEqual({ pong: true, payload: { k: 2 } });
    const refused = await run(`${B.namespace}/${B.device}/filter`);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr.trim().split('\n')).toHaveLength(1);
    expect(refused.stderr).toMatch(/^kedge: .*403.*cannot create resource "edgedevices\/invoke"/);
  });

  it('nodes/proxy on B’s node no longer invokes methods on A’s device through the kubelet API', async () => {
    const res = await cluster.kubectl(
      [
        'create',
        '--raw',
        `/api/v1/nodes/${B.node}/proxy/methods/${A.namespace}/${A.device}/filter/ping`,
        '-f',
        '-',
        '--as',
        'mallory',
      ],
      '{}',
    );
    expect(res.code).not.toBe(0);
    expect(res.stdout).not.toContain('pong');
    expect(res.stderr).toContain('direct methods are not served on the kubelet API');
    const service = await cluster.kubectl(
      ['create', '--raw', invokePath(A), '-f', '-', '--as', 'mallory'],
      ping,
    );
    expect(service.code).not.toBe(0);
    expect(service.stderr).toContain('User "mallory" cannot create resource "edgedevices/invoke"');
  });

  it('nodes/proxy on B’s node does not read logs of A’s pods, by plain or upgraded request', async () => {
    const logsPath = (nodeName: string) =>
      `/api/v1/nodes/${nodeName}/proxy/containerLogs/${A.namespace}/${podA}/filter`;
    const plain = await cluster.kubectl(['get', '--raw', logsPath(B.node), '--as', 'mallory']);
    expect(plain.code).not.toBe(0);
    expect(plain.stdout).not.toContain('connected');
    expect(plain.stderr).toContain(`is not on node ${B.node}`);
    // The upgrade path of the node proxy passes client headers through: a forged
    // X-Forwarded-Uri naming A's node must not help.
    const upgraded = await rawAsUser(cluster, 'mallory', logsPath(B.node), {
      Connection: 'Upgrade',
      Upgrade: 'websocket',
      'X-Forwarded-Uri': logsPath(A.node),
    });
    expect(upgraded.status).toBe(403);
    expect(upgraded.body).not.toContain('connected');
    // Mallory has no rights on A's node at all.
    const direct = await cluster.kubectl(['get', '--raw', logsPath(A.node), '--as', 'mallory']);
    expect(direct.code).not.toBe(0);
    // The pod's own node still serves its logs to someone allowed there.
    expect(await cluster.kubectlOk(['get', '--raw', logsPath(A.node)])).toContain('connected');
  });

  it("reads a module's reported properties with kubectl and kedge twin get, and refuses them on B's devices", async () => {
    // filter reports the threshold its desired properties set when it starts.
    const twin = await eventually('filter reported threshold 30', async () => {
      const res = await cluster.kubectl(['get', '--raw', twinPath(A), '--as', 'alice']);
      const doc = res.code === 0 ? JSON.parse(res.stdout) : undefined;
      return doc?.properties.reported.threshold === 30 ? doc : undefined;
    });
    expect(twin).toMatchObject({
      apiVersion: 'api.kedge.io/v1alpha1',
      kind: 'ModuleTwin',
      deviceId: A.device,
      moduleId: 'filter',
      properties: { reported: { threshold: 30, $version: expect.any(Number) } },
    });
    const cli = await kedge([
      'twin',
      'get',
      `${A.namespace}/${A.device}/filter`,
      '--kubeconfig',
      await aliceKubeconfig(cluster),
    ]);
    expect({ code: cli.code, stderr: cli.stderr }).toEqual({ code: 0, stderr: '' });
    expect(JSON.parse(cli.stdout)).toMatchObject({ properties: { reported: { threshold: 30 } } });
    const refused = await cluster.kubectl(['get', '--raw', twinPath(B), '--as', 'alice']);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain(
      'User "alice" cannot get resource "edgedevices/twin" in API group "api.kedge.io" in the namespace "tenant-b"',
    );
  });

  it('turns an edit of only desiredProperties into a twin patch to the running module: same pod, same container', async () => {
    const podUid = async () =>
      (
        await cluster.kubectlOk([
          'get',
          'pod',
          '-n',
          A.namespace,
          podA,
          '-o',
          'jsonpath={.metadata.uid}',
        ])
      ).trim();
    const uidBefore = await podUid();
    const before = await filterContainer();
    const first = await eventually('the SDK client got its desired document', async () => {
      const events = await desiredEvents(cluster, podA);
      return events.length > 0 ? events : undefined;
    });
    expect(first).toEqual([{ threshold: 30, label: 'first', $version: expect.any(Number) }]);
    const setModules = (modules: unknown[]) =>
      cluster.kubectlOk([
        'patch',
        'edgedeployment',
        'methods',
        '-n',
        A.namespace,
        '--type',
        'merge',
        '-p',
        JSON.stringify({ spec: { modules } }),
      ]);
    await setModules([filterModule({ threshold: 35 })]);
    const events = await eventually('the SDK client got the desired patch', async () => {
      const all = await desiredEvents(cluster, podA);
      return all.length > 1 ? all : undefined;
    });
    // IoT Hub semantics: only the change, null for the removed key, the next $version.
    expect(events).toEqual([
      first[0],
      { threshold: 35, label: null, $version: (first[0]!.$version as number) + 1 },
    ]);
    const reported = await eventually('filter reported threshold 35', async () => {
      const res = await cluster.kubectl(['get', '--raw', twinPath(A), '--as', 'alice']);
      const doc = res.code === 0 ? JSON.parse(res.stdout) : undefined;
      return doc?.properties.reported.threshold === 35 ? doc : undefined;
    });
    expect(reported.properties.reported.threshold).toBe(35);
    expect(await podUid()).toBe(uidBefore);
    expect(await filterContainer()).toEqual(before);
    // A container change still replaces the module.
    await setModules([{ ...filterModule({ threshold: 35 }), env: [{ name: 'E2E', value: '1' }] }]);
    await eventually(
      'a new pod for the changed container',
      async () => {
        const pods = JSON.parse(
          await cluster.kubectlOk(['get', 'pods', '-n', A.namespace, '-o', 'json']),
        );
        const running = pods.items.find(
          (p: any) => p.status?.phase === 'Running' && !p.metadata.deletionTimestamp,
        );
        return running && running.metadata.uid !== uidBefore ? true : undefined;
      },
      120_000,
    );
    const replaced = await eventually('a new filter container', async () => {
      const c = await filterContainer().catch(() => undefined);
      return c && c.id !== before.id ? c : undefined;
    });
    expect(replaced.id).not.toBe(before.id);
    podA = await eventually(
      'the replaced filter connected',
      async () => {
        const pods = JSON.parse(
          await cluster.kubectlOk(['get', 'pods', '-n', A.namespace, '-o', 'json']),
        );
        const pod = pods.items.find((p: any) => p.status?.phase === 'Running');
        if (!pod) return undefined;
        const logs = await cluster.kubectl([
          'logs',
          '-n',
          A.namespace,
          pod.metadata.name,
          '-c',
          'filter',
        ]);
        return logs.stdout.includes('connected') ? (pod.metadata.name as string) : undefined;
      },
      120_000,
    );
  });

  it('patches desired properties with kedge twin patch: the running module gets only the change, with no restart', async () => {
    const before = await filterContainer();
    const seen = (await desiredEvents(cluster, podA)).length;
    const alice = await aliceKubeconfig(cluster);
    const patch = (target: string, desired: object, kubeconfig = alice) =>
      kedge([
        'twin',
        'patch',
        target,
        '--desired',
        JSON.stringify(desired),
        '--kubeconfig',
        kubeconfig,
      ]);
    const target = `${A.namespace}/${A.device}/filter`;
    const first = await patch(target, { threshold: 42, mode: 'strict' });
    expect({ code: first.code, stderr: first.stderr }).toEqual({ code: 0, stderr: '' });
    expect(JSON.parse(first.stdout)).toMatchObject({
      properties: { desired: { threshold: 42, mode: 'strict', $version: 1 } },
    });
    const nextEvents = (count: number) =>
      eventually(`the SDK client got desired patch ${count}`, async () => {
        const all = await desiredEvents(cluster, podA);
        return all.length >= seen + count ? all.slice(seen) : undefined;
      });
    const [got] = await nextEvents(1);
    expect(got).toEqual({ threshold: 42, mode: 'strict', $version: expect.any(Number) });
    await eventually('filter reported threshold 42', async () => {
      const res = await cluster.kubectl(['get', '--raw', twinPath(A), '--as', 'alice']);
      const doc = res.code === 0 ? JSON.parse(res.stdout) : undefined;
      return doc?.properties.reported.threshold === 42 ? true : undefined;
    });
    // null removes a key; the module gets that alone, with the next $version.
    expect((await patch(target, { mode: null })).code).toBe(0);
    const [, removed] = await nextEvents(2);
    expect(removed).toEqual({ mode: null, $version: (got!.$version as number) + 1 });
    expect(await filterContainer()).toEqual(before);
    // Reading a twin is not patching it, and rights in A reach nothing in B.
    const carol = issueCertificate(cluster.cp.ca, { commonName: 'carol', usage: ['client'] });
    const carolConfig = path.join(path.dirname(alice), 'carol-kubeconfig');
    await writeFile(carolConfig, kubeconfigFor(cluster.cp.server, cluster.cp.ca.certPem, carol));
    const reader = await patch(target, { threshold: 1 }, carolConfig);
    expect(reader.code).not.toBe(0);
    expect(reader.stderr).toContain(
      'User "carol" cannot patch resource "edgedevices/twin" in API group "api.kedge.io" in the namespace "tenant-a"',
    );
    const otherTenant = await patch(`${B.namespace}/${B.device}/filter`, { threshold: 1 });
    expect(otherTenant.code).not.toBe(0);
    expect(otherTenant.stderr).toContain('cannot patch resource "edgedevices/twin"');
    expect(otherTenant.stderr).not.toMatch(/\n\s+at /);
  });

  it('answers an X.509 EdgeDevice whose CA certificate is none with Ready=False that says why, and does not retry', async () => {
    const notCa = issueCertificate(createCa('some-ca'), { commonName: 'x', usage: ['client'] });
    const unsupported = [
      {
        name: 'cam-x509',
        spec: { authentication: { type: 'X509', x509: { caCertificate: notCa.certPem } } },
        reason: 'InvalidCACertificate',
        message: /authentication\.x509\.caCertificate is not a CA certificate/,
      },
    ];
    await cluster.kubectlOk(
      ['apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'List',
        items: unsupported.map((d) => ({
          apiVersion: 'kedge.io/v1alpha1',
          kind: 'EdgeDevice',
          metadata: { name: d.name, namespace: B.namespace },
          spec: d.spec,
        })),
      }),
    );
    const readyOf = async (name: string) => {
      const obj = JSON.parse(
        await cluster.kubectlOk(['get', 'edgedevice', name, '-n', B.namespace, '-o', 'json']),
      );
      return {
        resourceVersion: obj.metadata.resourceVersion as string,
        ready: (obj.status?.conditions ?? []).find((c: any) => c.type === 'Ready'),
      };
    };
    const seen = [];
    for (const d of unsupported) {
      const got = await eventually(`${d.name} Ready=False ${d.reason}`, async () => {
        const r = await readyOf(d.name);
        return r.ready?.reason === d.reason ? r : undefined;
      });
      expect(got.ready).toMatchObject({ status: 'False', reason: d.reason });
      expect(got.ready.message).toMatch(d.message);
      // No key is generated for a device that cannot use one.
      const secret = await cluster.kubectl([
        'get',
        'secret',
        `${d.name}-kedge-key`,
        '-n',
        B.namespace,
      ]);
      expect(secret.code).not.toBe(0);
      seen.push(got);
    }
    const deviceErrors = async () =>
      (await controller.ctx.metrics.reconciles.get()).values
        .filter((v) => v.labels.controller === 'edgedevice' && v.labels.outcome === 'error')
        .reduce((sum, v) => sum + v.value, 0);
    const errorsBefore = await deviceErrors();
    // A window long enough for several retries of a failing reconcile (backoff starts in ms).
    await new Promise((r) => setTimeout(r, 3_000));
    expect(await deviceErrors()).toBe(errorsBefore);
    for (const [i, d] of unsupported.entries())
      expect((await readyOf(d.name)).resourceVersion).toBe(seen[i]!.resourceVersion);
  });

  it('keeps kubectl logs, the service API and the gateway working after the first certificates expired', async () => {
    const waitMs = Math.max(firstKubeletCertValidTo, firstGatewayCertValidTo) + 2_000 - Date.now();
    if (waitMs > 0) await new Promise((r) => setTimeout(r, waitMs));
    // The API server verifies the kubelet certificate, and the aggregator the service API's.
    const logs = await cluster.kubectl(['logs', '-n', A.namespace, podA, '-c', 'filter']);
    expect({ code: logs.code, stderr: logs.stderr }).toEqual({ code: 0, stderr: '' });
    expect(logs.stdout).toContain('connected');
    const out = await cluster.kubectl(
      ['create', '--raw', invokePath(A), '-f', '-', '--as', 'alice'],
      ping,
    );
    expect({ code: out.code, stderr: out.stderr }).toEqual({ code: 0, stderr: '' });
    expect(JSON.parse(out.stdout).payload.pong).toBe(true);
    const now = await servingCertificate(controller.kubeletPort, controllerCa.certPem);
    expect(now.validTo).toBeGreaterThan(Date.now());
    expect(now.validTo).toBeGreaterThan(firstKubeletCertValidTo);
    const service = await servingCertificate(controller.serviceApiPort, controllerCa.certPem);
    expect(service.validTo).toBeGreaterThan(Date.now());
    // The device kept its link through the gateway's renewal (the invoke above went over it), and
    // a device dialling now gets the renewed certificate.
    const gateway = await servingCertificate(gatewayPort, controllerCa.certPem);
    expect(gateway.validTo).toBeGreaterThan(Date.now());
    expect(gateway.validTo).toBeGreaterThan(firstGatewayCertValidTo);
  });
});
