import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import type { RunningController } from '../src/controller/manager.js';
import { PACKAGE_ROOT } from '../src/localcluster/kubectl.js';
import { freePort } from '../src/localcluster/ports.js';
import { startTestController } from './e2e/support.js';
import { startTestNats, type TestNats } from './support/nats.js';
import { eventually, startTestCluster, type TestCluster } from './support/cluster.js';

const run = promisify(execFile);
const CLI = path.join(PACKAGE_ROOT, 'dist/cli/main.js');
const FIXTURES = path.join(PACKAGE_ROOT, 'test/fixtures/iotedge');

async function importFixture(file: string, args: string[]): Promise<string> {
  const { stdout } = await run(process.execPath, [
    CLI,
    'manifest',
    'import',
    path.join(FIXTURES, file),
    '--selector',
    'site=lyon',
    ...args,
  ]);
  return stdout;
}

/** Module name → its twin as the controller put it on the module's pod, for device lyon-1. */
async function podTwins(cluster: TestCluster): Promise<Record<string, unknown>> {
  const out = await cluster.kubectlOk([
    'get',
    'pods',
    '--field-selector',
    'spec.nodeName=lyon-1.default.kedge',
    '-o',
    'json',
  ]);
  const pods = JSON.parse(out).items as { metadata: any; spec: any }[];
  return Object.fromEntries(
    pods.map((p) => {
      const twin = p.metadata.annotations?.['kedge.io/desired-properties'];
      return [p.spec.containers[0].name, twin === undefined ? undefined : JSON.parse(twin)];
    }),
  );
}

describe('an imported layered deployment over an imported base, on a real API server', () => {
  let cluster: TestCluster;
  let controller: RunningController;
  let nats: TestNats;
  let sensor: string;
  let collector: string;

  beforeAll(async () => {
    cluster = await startTestCluster('manifest-import-layered');
    nats = await startTestNats('manifest-import-layered');
    controller = await startTestController(
      cluster,
      { hub: await freePort(), kubelet: await freePort() },
      nats.url,
    );
  }, 180_000);

  afterAll(async () => {
    await controller?.stop();
    await nats?.stop();
    await cluster?.cp.stop();
  }, 60_000);

  it('merges the layer’s twin paths into the base module’s twin, higher priority winning per path', async () => {
    await cluster.kubectlOk(
      ['apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'kedge.io/v1alpha1',
        kind: 'EdgeDevice',
        metadata: { name: 'lyon-1', namespace: 'default', labels: { site: 'lyon' } },
        spec: {},
      }),
    );
    const baseYaml = await importFixture('simulated-temperature-sensor.json', ['--name', 'base']);
    const base = parse(baseYaml);
    base.spec.modules[0].desiredProperties = { SendData: true, layeredProperties: { Unit: 'C' } };
    sensor = base.spec.modules[0].name;
    await cluster.kubectlOk(['apply', '-f', '-'], JSON.stringify(base));
    const layerYaml = await importFixture('layered-monitoring.json', [
      '--name',
      'monitoring',
      '--priority',
      '10',
    ]);
    const layer = parse(layerYaml);
    collector = layer.spec.modules[0].name;
    await cluster.kubectlOk(['apply', '-f', '-'], layerYaml);
    const stored = JSON.parse(
      await cluster.kubectlOk(['get', 'edgedeployment', 'monitoring', '-o', 'json']),
    );
    expect(stored.spec.priority).toBe(10);
    expect(stored.spec.desiredProperties).toEqual(layer.spec.desiredProperties);

    const twins = await eventually('the merged twins on the pods', async () => {
      const t = await podTwins(cluster);
      return (t[sensor] as any)?.layeredProperties?.Site === 'lyon' && t[collector] ? t : undefined;
    });
    expect(twins[sensor]).toEqual({
      SendData: true,
      layeredProperties: { Unit: 'C', SendInterval: 5, Site: 'lyon' },
    });
    expect(twins[collector]).toEqual({
      collection: {
        targets: ['SimulatedTemperatureSensor', 'filtermodule'],
        format: 'prometheus',
      },
    });
    expect(twins.filtermodule).toEqual({ TemperatureThreshold: 25 });

    // A higher-priority layer that only sets twin paths wins the path it shares.
    await cluster.kubectlOk(
      ['apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'kedge.io/v1alpha1',
        kind: 'EdgeDeployment',
        metadata: { name: 'site-override', namespace: 'default' },
        spec: {
          selector: { matchLabels: { site: 'lyon' } },
          priority: 20,
          desiredProperties: [{ module: sensor, path: 'layeredProperties.Site', value: 'lyon-b' }],
        },
      }),
    );
    const overridden = await eventually('the override on the sensor pod', async () => {
      const t = (await podTwins(cluster))[sensor] as any;
      return t?.layeredProperties?.Site === 'lyon-b' ? t : undefined;
    });
    expect(overridden).toEqual({
      SendData: true,
      layeredProperties: { Unit: 'C', SendInterval: 5, Site: 'lyon-b' },
    });
  }, 120_000);

  it('the API server refuses a deployment that sets one module path twice', async () => {
    const twice = JSON.stringify({
      apiVersion: 'kedge.io/v1alpha1',
      kind: 'EdgeDeployment',
      metadata: { name: 'twice', namespace: 'default' },
      spec: {
        selector: {},
        desiredProperties: [
          { module: 'm', path: 'a.b', value: 1 },
          { module: 'm', path: 'a.b', value: 2 },
        ],
      },
    });
    const res = await cluster.kubectl(['apply', '-f', '-'], twice);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain('desiredProperties must set each module and path once');
  });
});
