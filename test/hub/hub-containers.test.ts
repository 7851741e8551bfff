// The acceptance path through the real composition: one `kedge node` (runNode: agent + hub) applies
// a manifest that declares two SDK modules in containers (kedge-local/node-module:1), their routes
// and the filter's desired properties. The agent starts the containers on the real Docker engine
// with the environment from the hub, and each module calls ModuleClient.fromEnvironment().
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import net from 'node:net';
import os, { tmpdir } from 'node:os';
import path from 'node:path';
import { createLogger, silentLogger } from '../../src/common/logger.js';
import { defaultConfig, type NodeConfig } from '../../src/edgenode/config.js';
import { runNode, type RunningNode } from '../../src/edgenode/node-runner.js';
import { cleanupDevice, containersOf, docker, LOCAL_IMAGES } from '../agent/helpers.js';
import { eventually } from './helpers.js';

const TEST_ID = `hn-${randomBytes(3).toString('hex')}`;
const NETWORK = `${TEST_ID}-net`;
const GATEWAY = 'kedge-hub';

interface UpstreamLine {
  kind: 'telemetry' | 'reportedProperties';
  source: { deviceId: string; moduleId?: string };
  body: string;
}

interface Reading {
  seq: number;
  temperature: number;
  filteredBy?: string;
}

function sdkModule(script: string, startupOrder: number, env: Record<string, string> = {}): object {
  return {
    version: '1.0',
    type: 'docker',
    status: 'running',
    restartPolicy: 'always',
    startupOrder,
    imagePullPolicy: 'never',
    settings: {
      image: LOCAL_IMAGES.node,
      createOptions: JSON.stringify({ Cmd: ['node', `/app/modules/${script}`] }),
    },
    env: Object.fromEntries(Object.entries(env).map(([k, v]) => [k, { value: v }])),
  };
}

/** The IoT Edge manifest: modules, routes and the filter's desired properties. */
function deployment(threshold: number): unknown {
  return {
    modulesContent: {
      $edgeAgent: {
        'properties.desired': {
          schemaVersion: '1.1',
          runtime: { type: 'docker', settings: {} },
          systemModules: {},
          modules: {
            // The filter forwards what is above its desired threshold; at -1000 it forwards all,
            // so only the route condition decides what reaches it.
            filter: sdkModule('filter.mjs', 1),
            sensor: sdkModule('sensor.mjs', 2, {
              SEND_INTERVAL_MS: '150',
              TEMPERATURES: '20,30,22,35',
              PING_MODULE: 'filter',
            }),
          },
        },
      },
      $edgeHub: {
        'properties.desired': {
          schemaVersion: '1.1',
          routes: {
            sensorToFilter:
              'FROM /messages/modules/sensor/outputs/temperatureOutput WHERE $body.temperature > 25 INTO BrokeredEndpoint("/modules/filter/inputs/input1")',
            sensorUp: 'FROM /messages/modules/sensor/outputs/* INTO $upstream',
            filterUp: 'FROM /messages/modules/filter/outputs/output1 INTO $upstream',
          },
          storeAndForwardConfiguration: { timeToLiveSecs: 7200 },
        },
      },
      filter: { 'properties.desired': { threshold } },
    },
  };
}

/** Every line the file upstream has written so far. */
function upstreamLines(file: string): UpstreamLine[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as UpstreamLine);
}

function telemetryFrom(lines: UpstreamLine[], moduleId: string): Record<string, unknown>[] {
  return lines
    .filter((l) => l.kind === 'telemetry' && l.source.moduleId === moduleId)
    .map((l) => JSON.parse(l.body) as Record<string, unknown>);
}

/** An IPv4 address of this host outside loopback and Docker's bridges (the device's LAN side). */
function lanAddress(): string | undefined {
  for (const [name, addrs] of Object.entries(os.networkInterfaces())) {
    if (name === 'lo' || name.startsWith('docker') || name.startsWith('br-')) continue;
    const v4 = addrs?.find((a) => a.family === 'IPv4' && !a.internal);
    if (v4) return v4.address;
  }
  return undefined;
}

function refused(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', () => resolve(true));
  });
}

/** POST to the method API the way the SDK does, with arbitrary headers. */
function postMethod(
  host: string,
  headers: Record<string, string>,
  body: unknown,
): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host,
        port: 443,
        method: 'POST',
        path: `/twins/${TEST_ID}/modules/filter/methods`,
        headers: { 'content-type': 'application/json', ...headers },
        rejectUnauthorized: false,
      },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

describe('kedge node runs SDK modules in containers against its hub', () => {
  let dir: string;
  let node: RunningNode | undefined;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'kedge-hubnode-'));
  });
  afterAll(async () => {
    await node?.stop();
    await cleanupDevice(TEST_ID, NETWORK);
    await rm(dir, { recursive: true, force: true });
  });

  it('routes with a $body condition, serves twins and methods, module to module included', async () => {
    const manifestFile = path.join(dir, 'deployment.json');
    const upstreamFile = path.join(dir, 'upstream.jsonl');
    await writeFile(manifestFile, JSON.stringify(deployment(-1000)));
    const base = defaultConfig();
    const config: NodeConfig = {
      ...base,
      deviceId: TEST_ID,
      dataDir: path.join(dir, 'data'),
      agent: {
        ...base.agent,
        network: NETWORK,
        containerNamePrefix: `${TEST_ID}-`,
        gatewayHostName: GATEWAY,
        restartBackoffUnitSecs: 1,
        resyncIntervalSecs: 1,
        stopGraceSecs: 1,
        stopModulesOnExit: true,
      },
      metrics: { enabled: false, host: '127.0.0.1', port: 0 },
      hub: {
        // Nothing but the module network: the SDK dials 8883 (MQTT) and 443 (methods) on the
        // gateway host, and this network's gateway address is ours alone on a shared machine.
        host: [],
        workloadHost: [],
        workloadPort: 0,
        upstream: { type: 'file', path: upstreamFile },
      },
    };
    const logger = process.env.KEDGE_TEST_LOG
      ? createLogger({ name: 'node', level: process.env.KEDGE_TEST_LOG })
      : silentLogger();
    node = await runNode({ config, logger, manifestFile });
    const hub = node.hub!;
    const filter = { deviceId: TEST_ID, moduleId: 'filter' };

    // The agent started both modules as containers on the module network, with the IoT Edge env.
    await eventually(async () => (await containersOf(TEST_ID)).size === 2, 60_000);
    const containers = await containersOf(TEST_ID);
    expect([...containers.keys()].sort()).toEqual(['filter', 'sensor']);
    for (const c of containers.values()) {
      expect(c.image).toBe(LOCAL_IMAGES.node);
      expect(c.env).toEqual(
        expect.arrayContaining([
          `IOTEDGE_DEVICEID=${TEST_ID}`,
          `IOTEDGE_MODULEID=${c.module}`,
          `IOTEDGE_GATEWAYHOSTNAME=${GATEWAY}`,
          'IOTEDGE_AUTHSCHEME=sasToken',
        ]),
      );
    }

    // The filter read its desired threshold (twin GET) and reported it back.
    await eventually(() => hub.twin(filter).reported.threshold === -1000, 60_000);

    // Only readings above 25 reach the filter: everything the sensor sent after the filter
    // forwarded its first one is either forwarded (> 25) or not (≤ 25), nothing else.
    await eventually(
      () => telemetryFrom(upstreamLines(upstreamFile), 'filter').length >= 6,
      60_000,
    );
    const lines = upstreamLines(upstreamFile);
    const forwarded = telemetryFrom(lines, 'filter') as unknown as Reading[];
    const sent = (telemetryFrom(lines, 'sensor') as unknown as Reading[]).filter(
      (r) => r.seq !== undefined,
    );
    expect(forwarded.every((r) => r.filteredBy === 'filter' && r.temperature > 25)).toBe(true);
    const first = Math.min(...forwarded.map((r) => r.seq));
    const last = Math.max(...forwarded.map((r) => r.seq));
    const expected = sent.filter((r) => r.seq >= first && r.seq <= last && r.temperature > 25);
    expect(new Set(forwarded.map((r) => r.seq))).toEqual(new Set(expected.map((r) => r.seq)));
    expect(sent.some((r) => r.seq >= first && r.seq <= last && r.temperature <= 25)).toBe(true);

    // Module to module: the sensor called ping on the filter with ModuleClient.invokeMethod.
    await eventually(
      () => telemetryFrom(upstreamLines(upstreamFile), 'sensor').some((b) => 'pingResult' in b),
      60_000,
    );
    const ping = telemetryFrom(upstreamLines(upstreamFile), 'sensor').find(
      (b) => 'pingResult' in b,
    );
    expect(ping).toEqual({
      pingResult: { status: 200, payload: { pong: true, payload: { from: 'sensor' } } },
    });

    // A desired patch: the manifest changes the filter's twin; the agent hands it to the hub,
    // which pushes it to the running container, which reports the new value. No restart.
    const before = (await containersOf(TEST_ID)).get('filter')!;
    await writeFile(manifestFile, JSON.stringify(deployment(28)));
    await eventually(() => hub.twin(filter).reported.threshold === 28, 30_000);
    expect(hub.twin(filter).desired).toMatchObject({ threshold: 28 });
    const after = (await containersOf(TEST_ID)).get('filter')!;
    expect([after.id, after.startedAt]).toEqual([before.id, before.startedAt]);
    // Reported properties go upstream too.
    await eventually(() =>
      upstreamLines(upstreamFile).some(
        (l) =>
          l.kind === 'reportedProperties' &&
          l.source.moduleId === 'filter' &&
          l.body.includes('28'),
      ),
    );

    // Direct methods from the device side, answered by the container.
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

    // The method API refuses callers without a valid module token.
    const gatewayIp = (
      await docker([
        'network',
        'inspect',
        NETWORK,
        '--format',
        '{{(index .IPAM.Config 0).Gateway}}',
      ])
    ).trim();
    const call = { methodName: 'ping', payload: {}, responseTimeoutInSeconds: 5 };
    await expect(postMethod(gatewayIp, {}, call)).resolves.toMatchObject({ status: 401 });
    await expect(
      postMethod(
        gatewayIp,
        {
          authorization: 'SharedAccessSignature sr=x&sig=y&se=1',
          'x-ms-edge-moduleId': `${TEST_ID}/sensor`,
        },
        call,
      ),
    ).resolves.toMatchObject({ status: 401 });

    // The hub listens on the module network's gateway only (configured: no other address).
    for (const port of [8883, 443, hub.ports.workload!]) {
      await expect(refused(gatewayIp, port)).resolves.toBe(false);
      await expect(refused('127.0.0.1', port)).resolves.toBe(true);
      const lan = lanAddress();
      if (lan) await expect(refused(lan, port)).resolves.toBe(true);
    }
  });
});
