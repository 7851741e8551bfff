import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import type { RunningController } from '../src/controller/manager.js';
import { docker } from '../src/localcluster/docker.js';
import { LOCAL_IMAGES } from '../src/localcluster/images.js';
import { PACKAGE_ROOT } from '../src/localcluster/kubectl.js';
import { freePort } from '../src/localcluster/ports.js';
import {
  startNode,
  startTelemetryConsumer,
  startTestController,
  type NodeProcess,
} from './e2e/support.js';
import { startTestNats, type TestNats } from './support/nats.js';
import { eventually, startTestCluster, type TestCluster } from './support/cluster.js';

const run = promisify(execFile);
const CLI = path.join(PACKAGE_ROOT, 'dist/cli/main.js');
const FIXTURES = path.join(PACKAGE_ROOT, 'test/fixtures/iotedge');

/**
 * No registry is reachable, so the fixtures' images are built locally under their public names:
 * the sensor and filter from the SDK sample modules, the rest as long-running placeholders.
 */
const KEEP_RUNNING = ['sh', '-c', 'trap "exit 0" TERM; while true; do sleep 1; done'];
const FIXTURE_IMAGES: Record<string, { from: string; cmd?: string[] }> = {
  'mcr.microsoft.com/azureiotedge-simulated-temperature-sensor:1.4': { from: LOCAL_IMAGES.node },
  'myacr.azurecr.io/filtermodule:0.0.1-amd64': {
    from: LOCAL_IMAGES.node,
    cmd: ['node', '/app/modules/filter.mjs'],
  },
  'mcr.microsoft.com/azureiotedge/modbus:1.0': { from: LOCAL_IMAGES.busybox, cmd: KEEP_RUNNING },
  'mcr.microsoft.com/azure-blob-storage:latest': { from: LOCAL_IMAGES.busybox, cmd: KEEP_RUNNING },
  'contoso.azurecr.io/anomaly-detector:2.1.0': { from: LOCAL_IMAGES.busybox, cmd: KEEP_RUNNING },
};

async function buildFixtureImages(): Promise<void> {
  for (const [tag, { from, cmd }] of Object.entries(FIXTURE_IMAGES)) {
    const dockerfile = `FROM ${from}\n${cmd ? `CMD ${JSON.stringify(cmd)}\n` : ''}`;
    await docker(['build', '-q', '-t', tag, '-'], dockerfile);
  }
}

async function importFixture(file: string, selector: string): Promise<string> {
  const { stdout } = await run(process.execPath, [
    CLI,
    'manifest',
    'import',
    path.join(FIXTURES, file),
    '--selector',
    selector,
  ]);
  return stdout;
}

const device = (name: string, site: string, spec: Record<string, unknown> = {}): string =>
  JSON.stringify({
    apiVersion: 'kedge.io/v1alpha1',
    kind: 'EdgeDevice',
    metadata: { name, namespace: 'default', labels: { site } },
    spec,
  });

/** Registry credentials stay out of the import; the user creates the Secret it names. */
async function createPullSecrets(cluster: TestCluster, yaml: string): Promise<void> {
  for (const match of yaml.matchAll(/imagePullSecrets:\n(?:\s+- name: (\S+)\n?)+/g)) {
    for (const name of match[0].matchAll(/- name: (\S+)/g)) {
      await cluster.kubectl([
        'create',
        'secret',
        'docker-registry',
        name[1]!,
        '--docker-server=registry.example',
        '--docker-username=user',
        '--docker-password=not-used-in-this-test',
      ]);
    }
  }
}

async function deploymentStatus(cluster: TestCluster, name: string): Promise<any> {
  const out = await cluster.kubectlOk(['get', 'edgedeployment', name, '-o', 'json']);
  return JSON.parse(out).status ?? {};
}

async function podPhases(cluster: TestCluster, node: string): Promise<Record<string, string>> {
  const out = await cluster.kubectlOk([
    'get',
    'pods',
    '--field-selector',
    `spec.nodeName=${node}`,
    '-o',
    'json',
  ]);
  const pods = JSON.parse(out).items as { spec: any; status: any }[];
  return Object.fromEntries(
    pods.map((p) => {
      const state = p.status.containerStatuses?.[0]?.state ?? {};
      const reason = state.waiting?.reason ?? state.terminated?.reason;
      return [p.spec.containers[0].name, `${p.status.phase}${reason ? `/${reason}` : ''}`];
    }),
  );
}

const RUNNING_MODULES = ['temp-sensor', 'modbus-tcp', 'azureblobstorageoniotedge'];

describe('imported IoT Edge manifests run on a device', () => {
  let cluster: TestCluster;
  let controller: RunningController;
  let hubPort: number;
  const nodes: NodeProcess[] = [];
  let consumer: { stop(): Promise<void> } | undefined;
  let nats: TestNats;

  beforeAll(async () => {
    cluster = await startTestCluster('manifest-import-run');
    hubPort = await freePort();
    nats = await startTestNats('manifest-import-run');
    controller = await startTestController(
      cluster,
      { hub: hubPort, kubelet: await freePort() },
      nats.url,
    );
    await buildFixtureImages();
  }, 180_000);

  afterAll(async () => {
    await consumer?.stop();
    await cluster?.kubectl(['delete', 'edgedeployments', '--all', '--wait=true', '--timeout=60s']);
    for (const n of nodes) await n.kill('SIGTERM');
    await controller?.stop();
    await nats?.stop();
    for (const prefix of ['e2e-lyon-1-', 'e2e-paris-1-']) {
      const ids = await docker(['ps', '-aq', '--filter', `name=${prefix}`]).catch(() => '');
      if (ids) await docker(['rm', '-f', ...ids.split('\n')]).catch(() => undefined);
    }
    await docker(['rmi', ...Object.keys(FIXTURE_IMAGES)]).catch(() => undefined);
    await cluster?.cp.stop();
  }, 120_000);

  it('the simulated temperature sensor sample: sensor → filter → $upstream, telemetry reaches the cloud', async () => {
    const yaml = await importFixture('simulated-temperature-sensor.json', 'site=lyon');
    await createPullSecrets(cluster, yaml);
    await cluster.kubectlOk(['apply', '-f', '-'], device('lyon-1', 'lyon'));
    const upstream: { cmid?: string; temperature: number }[] = [];
    consumer = await startTelemetryConsumer(nats.url, 'default', ({ subject, message: m }) => {
      if (!subject.endsWith('.lyon-1')) return;
      const body = JSON.parse(Buffer.from(m.body, 'base64').toString());
      upstream.push({ cmid: m.systemProperties['$.cmid'], temperature: body.temperature });
    });
    nodes.push(await startNode(cluster, 'lyon-1', hubPort));
    await cluster.kubectlOk(['apply', '-f', '-'], yaml);

    await eventually(
      'both imported modules Running and the deployment 1/1 successful',
      async () => {
        const phases = await podPhases(cluster, 'lyon-1.default.kedge');
        const status = await deploymentStatus(cluster, 'simulated-temperature-sensor');
        const running = Object.values(phases).filter((p) => p === 'Running').length;
        return running === 2 && status.reportedSuccessfulCount === 1 ? phases : undefined;
      },
      150_000,
      1000,
    );
    // The filter passes temperature > 25 on output1; the imported route sends it upstream.
    const forwarded = await eventually(
      'filtered telemetry from filtermodule',
      async () => (upstream.length >= 2 ? upstream : undefined),
      60_000,
    );
    for (const m of forwarded) expect(m).toEqual({ cmid: 'filtermodule', temperature: 30 });
    // The route names SimulatedTemperatureSensor as written: the module kept that IoT Hub id
    // while its pod container and its Docker container carry the DNS label.
    const pod = JSON.parse(
      await cluster.kubectlOk([
        'get',
        'pod',
        'simulated-temperature-sensor-simulated-temperature-sensor-lyon-1',
        '-o',
        'json',
      ]),
    );
    expect(pod.metadata.annotations['kedge.io/module-id']).toBe('SimulatedTemperatureSensor');
    const [sensor] = JSON.parse(
      await docker(['inspect', 'e2e-lyon-1-simulated-temperature-sensor']),
    ) as { Config: { Env: string[] } }[];
    expect(sensor!.Config.Env).toContain('IOTEDGE_MODULEID=SimulatedTemperatureSensor');
    // A host name only: the SDK in the container dialled 8883 on it (the module network).
    expect(sensor!.Config.Env.filter((e) => e.startsWith('IOTEDGE_GATEWAYHOSTNAME='))).toEqual([
      expect.stringMatching(/^IOTEDGE_GATEWAYHOSTNAME=[^:]+$/),
    ]);
  }, 300_000);

  it('the multi-module manifest: modules run, the stopped one stays stopped, a digest-pinned image fails clearly', async () => {
    const yaml = await importFixture('multi-module.json', 'site=paris');
    await createPullSecrets(cluster, yaml);
    // ModbusTCP binds a host directory and a serial device: host access the namespace's Pod
    // Security level and the device must both allow.
    await cluster.kubectlOk([
      'label',
      'namespace',
      'default',
      'pod-security.kubernetes.io/enforce=privileged',
    ]);
    const hostAccess = { hostPaths: ['/var/lib/modbus'], devices: true };
    await cluster.kubectlOk(['apply', '-f', '-'], device('paris-1', 'paris', { hostAccess }));
    const node = await startNode(cluster, 'paris-1', hubPort);
    nodes.push(node);
    await cluster.kubectlOk(['apply', '-f', '-'], yaml);

    let seen: unknown;
    const phases = await eventually(
      'every imported module in its desired state',
      async () => {
        const status = await deploymentStatus(cluster, 'multi-module');
        const p = await podPhases(cluster, 'paris-1.default.kedge');
        seen = { pods: p, failed: status.reportedFailedCount, ok: status.reportedSuccessfulCount };
        const running = RUNNING_MODULES.every((m) => p[m] === 'Running');
        const pinned = /ImagePull/.test(p['partner-gateway'] ?? '');
        return running && pinned && status.reportedFailedCount === 1 ? p : undefined;
      },
      150_000,
      1000,
    ).catch(async (err: Error) => {
      const gateway = await cluster.kubectl([
        'get',
        'pod',
        'multi-module-partner-gateway-paris-1',
        '-o',
        'jsonpath={.status}',
      ]);
      const problems = node
        .output()
        .split('\n')
        .filter((l) => /"level":(40|50)/.test(l));
      throw new Error(
        `${err.message}\nlast seen: ${JSON.stringify(seen)}\ngateway pod: ${gateway.stdout}\nnode: ${problems.slice(-10).join('\n')}`,
      );
    });
    // The gateway is pinned by digest to a registry this machine cannot reach: a clear pull error.
    expect(phases['partner-gateway']).toMatch(/^Pending\/(ErrImagePull|ImagePullBackOff)$/);
    const detector = await docker(['ps', '-q', '--filter', 'name=^e2e-paris-1-anomaly-detector$']);
    expect(detector).toBe('');
    const modbus = JSON.parse(await docker(['inspect', 'e2e-paris-1-modbus-tcp']))[0];
    expect(modbus.Config.Labels['com.contoso.role']).toBe('field-bus');
    expect(modbus.HostConfig.Memory).toBe(134217728);
    expect(modbus.Config.Env).toContain('MODBUS_UNIT=1');
  }, 300_000);
});
