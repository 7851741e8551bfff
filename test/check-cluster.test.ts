// `kedge check --cluster`, the real CLI against a real API server with the kedge CRDs and no
// controller: what is in place passes, what is missing fails with its hint.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PACKAGE_ROOT } from '../src/localcluster/kubectl.js';
import { startTestCluster, type TestCluster } from './support/cluster.js';

const CLI = path.join(PACKAGE_ROOT, 'dist/cli/main.js');

function kedge(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { timeout: 60_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

const GATEWAY_SLICE = {
  apiVersion: 'discovery.k8s.io/v1',
  kind: 'EndpointSlice',
  metadata: {
    name: 'kedge-gateway-manual',
    namespace: 'kedge-system',
    labels: { 'kubernetes.io/service-name': 'kedge-gateway' },
  },
  addressType: 'IPv4',
  endpoints: [{ addresses: ['10.0.0.7'], conditions: { ready: true } }],
  ports: [{ name: 'mqtts', port: 8883, protocol: 'TCP' }],
};

describe('kedge check --cluster against a real API server', () => {
  let cluster: TestCluster;

  beforeAll(async () => {
    cluster = await startTestCluster('check-cluster');
    await cluster.kubectlOk(['create', 'namespace', 'kedge-system']);
    await cluster.kubectlOk(['create', 'namespace', 'plant']);
    await cluster.kubectlOk(
      ['apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'kedge.io/v1alpha1',
        kind: 'EdgeDevice',
        metadata: { name: 'dev1', namespace: 'plant' },
        spec: {},
      }),
    );
  });
  afterAll(async () => cluster?.cp.stop());

  it('passes the API server and CRDs, fails the missing APIService, endpoints and device with hints', async () => {
    const kubeconfig = cluster.cp.kubeconfigPath;
    const before = await kedge([
      'check',
      '--cluster',
      '--kubeconfig',
      kubeconfig,
      '--device',
      'plant/dev1',
    ]);
    console.log(before.stdout);
    expect(before.code).toBe(1);
    expect(before.stdout).toMatch(/^ok {3}API server: https:\/\/\S+ answers \(Kubernetes v1\.\d+/m);
    for (const crd of ['edgedevices', 'edgedeployments', 'routes'])
      expect(before.stdout).toContain(`ok   CRD ${crd}.kedge.io: established`);
    expect(before.stdout).toMatch(
      /^FAIL APIService v1alpha1.api.kedge.io: not registered\n\s+hint: install kedge/m,
    );
    expect(before.stdout).toMatch(
      /^FAIL Service kedge-system\/kedge-gateway: no ready endpoints: devices cannot connect\n\s+hint: kubectl get pods -n kedge-system/m,
    );
    expect(before.stdout).toMatch(
      /^FAIL device plant\/dev1: phase none, lastSeen never\n\s+hint: the device never connected: run kedge check on the device/m,
    );

    await cluster.kubectlOk(['apply', '-f', '-'], JSON.stringify(GATEWAY_SLICE));
    const after = await kedge(['check', '--cluster', '--kubeconfig', kubeconfig]);
    expect(after.stdout).toMatch(
      /^ok {3}Service kedge-system\/kedge-gateway: 1 ready endpoint\(s\)/m,
    );
    expect(after.stdout).not.toMatch(/^\S+ +device /m);
  });

  it('fails an API server that does not answer, with a hint naming the kubeconfig', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'kedge-check-cluster-'));
    const kubeconfig = path.join(dir, 'kubeconfig');
    const config = JSON.parse(await readFile(cluster.cp.kubeconfigPath, 'utf8')) as {
      clusters: { cluster: { server: string } }[];
    };
    // Port 9 (discard) on loopback: nothing listens there.
    config.clusters[0]!.cluster.server = 'https://127.0.0.1:9';
    await writeFile(kubeconfig, JSON.stringify(config));
    const result = await kedge(['check', '--cluster', '--kubeconfig', kubeconfig]);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(
      /^FAIL API server: https:\/\/127.0.0.1:9: .*ECONNREFUSED.*\n\s+hint: check the kubeconfig/m,
    );
    expect(result.stdout).toMatch(/^0 ok, 0 warnings, 1 failed$/m);
    await rm(dir, { recursive: true, force: true });
  });
});
