// Shared helpers for the hub integration tests: a real hub on real sockets, real SDK clients.
import deviceSdk from 'azure-iot-device';
import mqttTransport from 'azure-iot-device-mqtt';
import mqtt, { type MqttClient } from 'mqtt';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { createSasToken, resourceUri } from '../../src/common/iothub/index.js';
import { createLogger, silentLogger } from '../../src/common/logger.js';
import { Hub } from '../../src/edgenode/hub/index.js';
import { PACKAGE_ROOT } from '../../src/localcluster/kubectl.js';
import type { HubOptionsInput } from '../../src/edgenode/hub/index.js';
import type { Upstream } from '../../src/edgenode/hub/upstream/upstream.js';

import type {
  Client as SdkClient,
  Message as SdkMessage,
  ModuleClient as SdkModuleClient,
} from 'azure-iot-device';

const { ModuleClient, Client, Message } = deviceSdk;
const { Mqtt, MqttWs } = mqttTransport;
export { Message };
export type { SdkClient, SdkMessage, SdkModuleClient };

export const DEVICE = 'edge1';
export const IOTHUB = 'kedge.local';
export const LEAF_KEY = Buffer.alloc(32, 1).toString('base64');

export function tempDir(prefix = 'kedge-hub-'): string {
  return mkdtempSync(path.join(tmpdir(), prefix));
}

/** A hub on ephemeral ports with a silent logger; `upstream` replaces its configured one. */
export async function startHub(
  overrides: Partial<HubOptionsInput> = {},
  upstream?: Upstream,
): Promise<Hub> {
  const hub = new Hub(
    {
      deviceId: DEVICE,
      dataDir: tempDir(),
      tlsPort: 0,
      workloadPort: 0,
      methodsPort: 0,
      gatewayHostName: 'localhost',
      iotHubHostName: IOTHUB,
      leafDevices: [{ deviceId: 'leaf1', primaryKey: LEAF_KEY }],
      ...overrides,
    },
    // KEDGE_TEST_LOG=debug shows the hub's log while debugging a test.
    {
      log: process.env.KEDGE_TEST_LOG
        ? createLogger({ name: 'hub', level: process.env.KEDGE_TEST_LOG })
        : silentLogger(),
      ...(upstream ? { upstream } : {}),
    },
  );
  await hub.start();
  return hub;
}

/** The SDK transports the hub serves: MQTT over TLS, and MQTT over WebSockets (always port 443). */
export type SdkTransport = 'mqtt' | 'mqttws';

/**
 * An SDK module client created exactly as a module does: ModuleClient.fromEnvironment(Mqtt), or
 * MqttWs with `transport: 'mqttws'` (which needs the hub on 443 and 8883: the SDK appends `:443`
 * to `IOTEDGE_GATEWAYHOSTNAME`).
 */
export async function sdkModule(
  hub: Hub,
  moduleId: string,
  transport: SdkTransport = 'mqtt',
): Promise<SdkModuleClient> {
  const env = await hub.identityProvider.environmentFor(moduleId, 'process');
  expect(env.IOTEDGE_GATEWAYHOSTNAME).toBe('localhost');
  // Hubs on ephemeral ports: the Node SDK (only it) also reads `host:port` here. MqttWs always
  // dials 443 on the host, so it keeps the plain name.
  if (transport === 'mqtt' && hub.ports.tls !== 8883)
    env.IOTEDGE_GATEWAYHOSTNAME = `localhost:${hub.ports.tls}`;
  const saved = { ...process.env };
  Object.assign(process.env, env);
  try {
    const client = await ModuleClient.fromEnvironment(transport === 'mqtt' ? Mqtt : MqttWs);
    client.on('error', () => undefined);
    await client.open();
    return client;
  } finally {
    for (const k of Object.keys(env)) if (saved[k] === undefined) delete process.env[k];
  }
}

/** An SDK leaf device: Client.fromConnectionString(…;GatewayHostName=…) with the hub CA. */
export async function sdkLeaf(hub: Hub, deviceId = 'leaf1', key = LEAF_KEY): Promise<SdkClient> {
  const cs = `HostName=${IOTHUB};DeviceId=${deviceId};SharedAccessKey=${key};GatewayHostName=localhost:${hub.ports.tls}`;
  const client = Client.fromConnectionString(cs, Mqtt);
  client.on('error', () => undefined);
  await client.setOptions({ ca: hub.trustBundlePem });
  await client.open();
  return client;
}

/**
 * An SDK leaf device on MqttWs: `GatewayHostName` without a port, since the SDK dials
 * `wss://{GatewayHostName}:443/$iothub/websocket` (the hub must listen on 443). `onMessage`
 * is attached before the client opens, so C2D messages queued while it was offline are not missed.
 */
export async function sdkLeafOverWebSockets(
  hub: Hub,
  opts: { deviceId?: string; key?: string; onMessage?: (msg: SdkMessage) => void } = {},
): Promise<SdkClient> {
  const { deviceId = 'leaf1', key = LEAF_KEY, onMessage } = opts;
  const cs = `HostName=${IOTHUB};DeviceId=${deviceId};SharedAccessKey=${key};GatewayHostName=localhost`;
  const client = Client.fromConnectionString(cs, MqttWs);
  client.on('error', () => undefined);
  if (onMessage) client.on('message', onMessage);
  await client.setOptions({ ca: hub.trustBundlePem });
  await client.open();
  return client;
}

/** Signs a SAS token for a module through the real workload API (TCP). */
export async function moduleToken(hub: Hub, moduleId: string): Promise<string> {
  const env = await hub.identityProvider.environmentFor(moduleId, 'docker');
  const resource = resourceUri(IOTHUB, DEVICE, moduleId);
  const se = Math.floor(Date.now() / 1000) + 3600;
  const sr = encodeURIComponent(resource);
  const body = JSON.stringify({
    keyId: 'primary',
    algo: 'HMACSHA256',
    data: Buffer.from(`${sr}\n${se}`).toString('base64'),
  });
  const digest = await new Promise<string>((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port: hub.ports.workload!,
        method: 'POST',
        path: `/modules/${moduleId}/genid/${env.IOTEDGE_MODULEGENERATIONID}/sign?api-version=2018-06-28`,
        headers: { 'content-type': 'application/json' },
      },
      (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => resolve(JSON.parse(text).digest));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
  return `SharedAccessSignature sr=${sr}&sig=${encodeURIComponent(digest)}&se=${se}`;
}

/** A raw MQTT.js client over TLS (the transport the SDK uses), for protocol-level tests. */
export async function rawClient(
  hub: Hub,
  clientId: string,
  password: string,
  extra: mqtt.IClientOptions = {},
): Promise<MqttClient> {
  const client = mqtt.connect(`mqtts://localhost:${hub.ports.tls}`, {
    clientId,
    username: `${IOTHUB}/${clientId}/?api-version=2021-04-12`,
    password,
    ca: hub.trustBundlePem,
    protocolVersion: 4,
    clean: false,
    reconnectPeriod: 0,
    ...extra,
  });
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('error', reject);
    client.once('close', () => reject(new Error('closed')));
  });
  return client;
}

export function leafToken(deviceId = 'leaf1', key = LEAF_KEY, expirySecs?: number): string {
  return createSasToken({
    resource: resourceUri(IOTHUB, deviceId),
    keyBase64: key,
    ...(expirySecs === undefined ? {} : { expirySecs }),
  });
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` until it returns true or the deadline passes. */
export async function eventually(
  check: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(50);
  }
  throw new Error('condition not met in time');
}

export function jsonMessage(body: unknown): SdkMessage {
  const m = new Message(JSON.stringify(body));
  m.contentType = 'application/json';
  m.contentEncoding = 'utf-8';
  return m;
}

/** Ports a standalone hub process prints when it is ready. */
export interface HubProcessPorts {
  tls: number;
  metrics: number;
}

/** The built hub as its own process (so it can be `kill -9`'d), with a metrics port. */
export async function spawnHub(
  config: string,
): Promise<{ child: ChildProcess; ports: HubProcessPorts; startMs: number }> {
  const started = Date.now();
  const child = spawn(
    process.execPath,
    [path.join(PACKAGE_ROOT, 'dist/edgenode/hub/standalone.js'), config],
    {
      env: { ...process.env, KEDGE_HUB_METRICS_PORT: '0', KEDGE_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const lines = readline.createInterface({ input: child.stdout });
  for await (const line of lines) {
    if (!line.startsWith('KEDGE_HUB_READY ')) continue;
    const ports = JSON.parse(line.slice('KEDGE_HUB_READY '.length)) as HubProcessPorts;
    return { child, ports, startMs: Date.now() - started };
  }
  throw new Error('hub exited before it was ready');
}

/** One sample from a hub process' /metrics (`name` may include labels); 0 when absent. */
export async function hubMetric(port: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.split(' ').pop()) : 0;
}
