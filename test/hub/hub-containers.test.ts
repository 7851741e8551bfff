// The acceptance path: SDK modules in containers (kedge-local/node-module:1) on a bridge network,
// started with the environment from the hub's ModuleIdentityProvider, calling
// ModuleClient.fromEnvironment() against the hub on the host (reached as kedge-hub:host-gateway).
import { docker } from '../../src/localcluster/docker.js';
import { LOCAL_IMAGES } from '../../src/localcluster/images.js';
import type { Hub } from '../../src/edgenode/hub/index.js';
import { DEVICE, eventually, sdkModule, startHub, type SdkMessage } from './helpers.js';

const NETWORK = 'kedge-hubtest';
const PREFIX = `kedge-hubtest-${process.pid}`;

async function runModule(
  hub: Hub,
  moduleId: string,
  script: string,
  extraEnv: Record<string, string> = {},
): Promise<string> {
  const env = { ...(await hub.identityProvider.environmentFor(moduleId, 'docker')), ...extraEnv };
  const name = `${PREFIX}-${moduleId}`;
  await docker([
    'run',
    '-d',
    '--name',
    name,
    '--network',
    NETWORK,
    '--add-host',
    'kedge-hub:host-gateway',
    ...Object.entries(env).flatMap(([k, v]) => ['-e', `${k}=${v}`]),
    LOCAL_IMAGES.node,
    'node',
    `/app/modules/${script}`,
  ]);
  return name;
}

describe('SDK modules in containers', () => {
  let hub: Hub;
  const containers: string[] = [];

  beforeAll(async () => {
    await docker(['network', 'create', NETWORK]).catch(() => undefined);
  });
  afterAll(async () => {
    await hub?.stop();
    if (containers.length) await docker(['rm', '-f', ...containers]).catch(() => undefined);
  });

  it('routes with a $body condition, serves twins and answers direct methods', async () => {
    hub = await startHub({
      routes: {
        sensorToFilter:
          'FROM /messages/modules/sensor/outputs/temperatureOutput WHERE $body.temperature > 25 INTO BrokeredEndpoint("/modules/filter/inputs/input1")',
        filterToCollector: {
          route:
            'FROM /messages/modules/filter/outputs/output1 INTO BrokeredEndpoint("/modules/collector/inputs/fromFilter")',
          priority: 0,
        },
      },
      // The filter forwards anything above its threshold, so only the route condition filters.
      modules: { filter: { desiredProperties: { threshold: -1000 } } },
    });
    const collector = await sdkModule(hub, 'collector');
    const got: { seq: number; temperature: number; filteredBy: string; cmid: unknown }[] = [];
    collector.on('inputMessage', (_input: string, msg: SdkMessage) => {
      const body = JSON.parse(msg.getBytes().toString()) as (typeof got)[number];
      got.push({ ...body, cmid: msg.properties.getValue('$.cmid') });
      void collector.complete(msg);
    });

    const filter = { deviceId: DEVICE, moduleId: 'filter' };
    containers.push(await runModule(hub, 'filter', 'filter.mjs'));
    // The filter read its desired threshold through twin GET and reported it back.
    await eventually(() => hub.twin(filter).reported.threshold === -1000, 60_000);

    containers.push(
      await runModule(hub, 'sensor', 'sensor.mjs', {
        SEND_INTERVAL_MS: '100',
        MESSAGE_COUNT: '8',
        TEMPERATURES: '20,30,22,35',
      }),
    );
    await eventually(() => got.length >= 4, 60_000);
    await new Promise((r) => setTimeout(r, 1000)); // nothing else may arrive
    expect(got.map((g) => [g.seq, g.temperature])).toEqual([
      [1, 30],
      [3, 35],
      [5, 30],
      [7, 35],
    ]);
    expect(got.every((g) => g.filteredBy === 'filter' && g.cmid === 'filter')).toBe(true);

    // A desired patch reaches the running container, which reports the new value.
    hub.applyConfig({ modules: { filter: { desiredProperties: { threshold: 28 } } } });
    await eventually(() => hub.twin(filter).reported.threshold === 28, 30_000);
    expect(hub.twin(filter).desired).toEqual({ threshold: 28, $version: 3 });

    // Direct methods answered by the container.
    await expect(hub.invokeMethod(filter, 'ping', { hello: 1 }, 10_000)).resolves.toEqual({
      status: 200,
      payload: { pong: true, payload: { hello: 1 } },
    });
    await expect(
      hub.invokeMethod(filter, 'setThreshold', { threshold: 31 }, 10_000),
    ).resolves.toEqual({
      status: 200,
      payload: { threshold: 31 },
    });
    await eventually(() => hub.twin(filter).reported.threshold === 31, 10_000);
    await expect(hub.invokeMethod(filter, 'nope', {}, 2_000)).rejects.toThrow(/timed out/);
    await collector.close();
  });
});
