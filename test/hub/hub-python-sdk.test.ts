// Identity fidelity and the Python SDK, through the real composition: an IoT Edge manifest with
// mixed-case module names and a `$connectionModuleId` route is imported (`kedge manifest import`'s
// converter), turned into the device's desired state exactly as the controller does (module pods,
// then buildModulesContent), and run by one `kedge node` (runNode: agent + hub) with the process
// runtime. The hub listens on its default ports, 8883 (MQTT/TLS) and 443 (method API), on
// loopback: this file is the only one that binds them there, and it stops the node at the end.
//   - SimulatedTemperatureSensor: Python, IoTHubModuleClient.create_from_edge_environment();
//   - FilterModule: the Node sample filter, fed by the `$connectionModuleId` route;
//   - PingModule: the Node sample sensor, calling `ping` on SimulatedTemperatureSensor by its
//     original module id with ModuleClient.invokeMethod.
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createLogger, silentLogger } from '../../src/common/logger.js';
import { desiredModulePod } from '../../src/controller/deployment-pods.js';
import { assignModules, buildModulesContent, type BoundPod } from '../../src/controller/desired.js';
import { importManifest } from '../../src/crds/import/index.js';
import { defaultConfig, type NodeConfig } from '../../src/edgenode/config.js';
import { runNode, type RunningNode } from '../../src/edgenode/node-runner.js';
import { PACKAGE_ROOT } from '../../src/localcluster/kubectl.js';
import { pythonWithSdk } from '../support/python.js';
import { eventually } from './helpers.js';

const DEVICE = `py-${randomBytes(3).toString('hex')}`;
const SENSOR = 'SimulatedTemperatureSensor';

function processModule(cmd: string[], startupOrder: number, env: Record<string, string> = {}) {
  return {
    version: '1.0',
    type: 'docker',
    status: 'running',
    restartPolicy: 'always',
    startupOrder,
    settings: { image: 'kedge-test/process-module:1', createOptions: JSON.stringify({ Cmd: cmd }) },
    env: Object.fromEntries(Object.entries(env).map(([k, v]) => [k, { value: v }])),
  };
}

/** The IoT Edge manifest as a user brings it: mixed-case module ids, routes naming them. */
function iotEdgeManifest(python: string, mode: string): unknown {
  const sample = (file: string): string[] => [
    process.execPath,
    path.join(PACKAGE_ROOT, 'samples/modules', file),
  ];
  return {
    modulesContent: {
      $edgeAgent: {
        'properties.desired': {
          schemaVersion: '1.1',
          runtime: { type: 'docker', settings: {} },
          modules: {
            [SENSOR]: processModule(
              [python, path.join(PACKAGE_ROOT, 'test/fixtures/python/sensor_module.py')],
              1,
            ),
            FilterModule: processModule(sample('filter.mjs'), 2, { THRESHOLD: '25' }),
            PingModule: processModule(sample('sensor.mjs'), 3, {
              PING_MODULE: SENSOR,
              SEND_INTERVAL_MS: '1000',
            }),
          },
        },
      },
      $edgeHub: {
        'properties.desired': {
          schemaVersion: '1.1',
          routes: {
            sensorToFilter: `FROM /messages/modules/${SENSOR}/outputs/* WHERE $connectionModuleId = '${SENSOR}' INTO BrokeredEndpoint("/modules/FilterModule/inputs/input1")`,
            filterToUpstream: 'FROM /messages/modules/FilterModule/outputs/output1 INTO $upstream',
            pingToUpstream: 'FROM /messages/modules/PingModule/outputs/pingResult INTO $upstream',
          },
          storeAndForwardConfiguration: { timeToLiveSecs: 7200 },
        },
      },
      [SENSOR]: { 'properties.desired': { mode } },
    },
  };
}

/**
 * What the controller sends the device for the imported EdgeDeployment: one pod per module
 * (desiredModulePod), module ownership, then the IoT Edge manifest the device runs.
 */
function deviceManifest(python: string, mode: string): unknown {
  const { objects } = importManifest(iotEdgeManifest(python, mode), { name: 'fidelity' });
  const deployment = objects[0]!;
  deployment.metadata = { ...deployment.metadata, namespace: 'default', uid: 'uid-fidelity' };
  const bound: BoundPod[] = (deployment.spec.modules ?? []).map((m) => {
    const pod = desiredModulePod(
      deployment,
      m,
      DEVICE,
      `${DEVICE}.default.kedge`,
    ) as BoundPod['pod'];
    const env = Object.fromEntries((m.env ?? []).map((e) => [e.name, e.value ?? '']));
    return {
      pod,
      env: { [m.name]: env },
      registryCredentials: [],
    };
  });
  return {
    modulesContent: buildModulesContent({
      ownership: assignModules(bound),
      deployments: [deployment],
      routes: [],
    }),
  };
}

interface UpstreamLine {
  kind: string;
  source: { deviceId: string; moduleId?: string };
  body: string;
}

function telemetryFrom(file: string, moduleId: string): Record<string, unknown>[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as UpstreamLine)
    .filter((l) => l.kind === 'telemetry' && l.source.moduleId === moduleId)
    .map((l) => JSON.parse(l.body) as Record<string, unknown>);
}

/** Every module's output, to explain a failure. */
async function moduleOutputs(node: RunningNode): Promise<string> {
  const parts: string[] = [];
  for (const name of Object.keys(node.agent.snapshot().modules)) {
    const chunks: Buffer[] = [];
    try {
      for await (const c of await node.agent.logs(name, { tail: 20 })) chunks.push(Buffer.from(c));
    } catch (err) {
      chunks.push(Buffer.from(String(err)));
    }
    parts.push(`--- ${name}\n${Buffer.concat(chunks).toString()}`);
  }
  return parts.join('\n');
}

/** `eventually`, but a timeout reports what the modules printed. */
async function until(node: RunningNode, what: string, check: () => boolean, timeoutMs: number) {
  await eventually(check, timeoutMs).catch(async () => {
    throw new Error(`${what} did not happen in time\n${await moduleOutputs(node)}`);
  });
}

describe('identities survive import; Python SDK modules on the default ports', () => {
  let dir: string;
  let python: string;
  let node: RunningNode | undefined;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'kedge-pysdk-'));
    python = pythonWithSdk();
  }, 300_000);
  afterAll(async () => {
    await node?.stop();
    await rm(dir, { recursive: true, force: true });
  }, 60_000);

  it('routes on $connectionModuleId, calls methods by the original module id, patches twins', async () => {
    const manifest = deviceManifest(python, 'initial') as {
      modulesContent: { $edgeAgent: { 'properties.desired': { modules: Record<string, any> } } };
    };
    // The device runs DNS-label containers that keep their IoT Edge names as hub identities.
    const modules = manifest.modulesContent.$edgeAgent['properties.desired'].modules;
    expect(Object.fromEntries(Object.entries(modules).map(([k, m]) => [k, m.moduleId]))).toEqual({
      'simulated-temperature-sensor': SENSOR,
      'filter-module': 'FilterModule',
      'ping-module': 'PingModule',
    });
    const manifestFile = path.join(dir, 'deployment.json');
    const upstreamFile = path.join(dir, 'upstream.jsonl');
    await writeFile(manifestFile, JSON.stringify(manifest));
    const base = defaultConfig();
    const config: NodeConfig = {
      ...base,
      deviceId: DEVICE,
      dataDir: path.join(dir, 'data'),
      agent: {
        ...base.agent,
        runtime: 'process',
        // The SDK venv lives in this user's cache (~/.cache/kedge), which `nobody` cannot read.
        processUser: 'root',
        restartBackoffUnitSecs: 1,
        resyncIntervalSecs: 1,
        stopGraceSecs: 1,
        stopModulesOnExit: true,
      },
      metrics: { enabled: false, host: '127.0.0.1', port: 0 },
      // The default ports (8883, 443) on the default address (loopback).
      hub: { workloadPort: 0, upstream: { type: 'file', path: upstreamFile } },
    };
    const logger = process.env.KEDGE_TEST_LOG
      ? createLogger({ name: 'node', level: process.env.KEDGE_TEST_LOG })
      : silentLogger();
    node = await runNode({ config, logger, manifestFile });
    const hub = node.hub!;
    expect([hub.ports.tls, hub.ports.methods]).toEqual([8883, 443]);
    const sensor = { deviceId: DEVICE, moduleId: SENSOR };

    // Python telemetry reaches FilterModule through the route on $connectionModuleId.
    await until(
      node,
      'Python telemetry through FilterModule',
      () => telemetryFrom(upstreamFile, 'FilterModule').length >= 2,
      90_000,
    );
    const forwarded = telemetryFrom(upstreamFile, 'FilterModule');
    expect(forwarded[0]).toMatchObject({
      sdk: 'python',
      temperature: 30,
      filteredBy: 'FilterModule',
      // IOTEDGE_GATEWAYHOSTNAME is a host name only; the SDK dialled 8883 on it.
      gateway: 'localhost',
    });

    // Module to module: the Node SDK called `ping` on the Python module by its original id.
    await until(
      node,
      'a ping result from PingModule',
      () => telemetryFrom(upstreamFile, 'PingModule').length > 0,
      60_000,
    );
    expect(telemetryFrom(upstreamFile, 'PingModule')[0]).toEqual({
      pingResult: {
        status: 200,
        payload: { method: 'ping', moduleId: SENSOR, payload: { from: 'PingModule' } },
      },
    });

    // A direct method from the hub's side (what `kedge invoke` reaches), answered by Python.
    await expect(hub.invokeMethod(sensor, 'reset', { level: 2 }, 10_000)).resolves.toEqual({
      status: 200,
      payload: { method: 'reset', moduleId: SENSOR, payload: { level: 2 } },
    });

    // A desired patch reaches the running Python module, which reports it back.
    const before = node.agent.snapshot().modules['simulated-temperature-sensor']!;
    await writeFile(manifestFile, JSON.stringify(deviceManifest(python, 'patched')));
    await until(
      node,
      'the desired patch reported back',
      () => (hub.twin(sensor).reported.seenPatch as { mode?: string })?.mode === 'patched',
      30_000,
    );
    const after = node.agent.snapshot().modules['simulated-temperature-sensor']!;
    expect([after.instanceId, after.restartCount]).toEqual([
      before.instanceId,
      before.restartCount,
    ]);
  }, 240_000);
});
