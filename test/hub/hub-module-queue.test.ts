// Messages routed to a stopped module: the Azure IoT SDK connects modules with clean:false, so they
// wait in the module's session. They must be bounded and survive a kill -9 of the hub process.
import deviceSdk from 'azure-iot-device';
import mqttTransport from 'azure-iot-device-mqtt';
import type { ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  DEVICE,
  eventually,
  hubMetric,
  IOTHUB,
  jsonMessage,
  LEAF_KEY,
  type SdkMessage,
  type SdkModuleClient,
  sleep,
  spawnHub,
  startHub,
  tempDir,
} from './helpers.js';

const { Client, ModuleClient } = deviceSdk;
const { Mqtt } = mqttTransport;

const SENT = 30;
const KEPT = 20;

/** The module's SDK client, dialling the hub as a gateway with the module's own key. */
async function collector(dataDir: string, port: number, ca: string): Promise<SdkModuleClient> {
  const identities = JSON.parse(
    readFileSync(path.join(dataDir, 'module-identities.json'), 'utf8'),
  ) as { moduleId: string; key: string }[];
  const key = identities.find((m) => m.moduleId === 'collector')!.key;
  const client = ModuleClient.fromConnectionString(
    `HostName=${IOTHUB};DeviceId=${DEVICE};ModuleId=collector;SharedAccessKey=${key};GatewayHostName=localhost:${port}`,
    Mqtt,
  );
  client.on('error', () => undefined);
  await client.setOptions({ ca });
  return client;
}

function received(client: SdkModuleClient): number[] {
  const seqs: number[] = [];
  client.on('inputMessage', (_input: string, msg: SdkMessage) => {
    seqs.push((JSON.parse(msg.getBytes().toString()) as { seq: number }).seq);
    client.complete(msg, () => undefined);
  });
  return seqs;
}

describe('messages queued for a stopped module', () => {
  const children: ChildProcess[] = [];
  afterAll(() => {
    for (const c of children) c.kill('SIGKILL');
  });

  it('keeps the newest within the bound, counts the rest, and delivers them after a kill -9', async () => {
    const dir = tempDir('kedge-mq-');
    const dataDir = path.join(dir, 'hub');
    // Issue the module identity as the agent would before the module starts.
    const setup = await startHub({ dataDir });
    await setup.identityProvider.environmentFor('collector', 'process');
    const ca = setup.trustBundlePem;
    await setup.stop();

    const config = path.join(dir, 'hub.json');
    writeFileSync(
      config,
      JSON.stringify({
        deviceId: DEVICE,
        dataDir,
        host: '127.0.0.1',
        tlsPort: 0,
        workloadPort: null,
        methodsPort: null,
        workloadSocket: null,
        gatewayHostName: 'localhost',
        iotHubHostName: IOTHUB,
        leafDevices: [{ deviceId: 'leaf1', primaryKey: LEAF_KEY }],
        routes: {
          leaf: 'FROM /messages WHERE NOT IS_DEFINED($connectionModuleId) INTO BrokeredEndpoint("/modules/collector/inputs/leaf")',
        },
        limits: { maxSessionMessages: KEPT },
      }),
    );
    let hub = await spawnHub(config);
    children.push(hub.child);

    // The module runs once (its session and input subscription now exist), then stops.
    const first = await collector(dataDir, hub.ports.tls, ca);
    const before = received(first);
    await first.open();
    await sleep(300);
    await first.close();

    const leaf = Client.fromConnectionString(
      `HostName=${IOTHUB};DeviceId=leaf1;SharedAccessKey=${LEAF_KEY};GatewayHostName=localhost:${hub.ports.tls}`,
      Mqtt,
    );
    leaf.on('error', () => undefined);
    await leaf.setOptions({ ca });
    await leaf.open();
    for (let seq = 0; seq < SENT; seq += 1) await leaf.sendEvent(jsonMessage({ seq }));
    await leaf.close();

    const metrics = hub.ports.metrics;
    expect({
      queued: await hubMetric(metrics, 'kedge_hub_session_queue_depth'),
      dropped: await hubMetric(metrics, 'kedge_hub_messages_dropped_total{reason="queue_full"}'),
    }).toEqual({ queued: KEPT, dropped: SENT - KEPT });

    hub.child.kill('SIGKILL');
    await new Promise((r) => hub.child.once('exit', r));
    hub = await spawnHub(config);
    children.push(hub.child);
    expect(await hubMetric(hub.ports.metrics, 'kedge_hub_session_queue_depth')).toBe(KEPT);

    const second = await collector(dataDir, hub.ports.tls, ca);
    const after = received(second);
    await second.open();
    await eventually(() => after.length >= KEPT, 20_000);
    await sleep(300);
    expect({ before, after }).toEqual({
      before: [],
      after: Array.from({ length: KEPT }, (_, i) => SENT - KEPT + i),
    });
    await eventually(
      async () => (await hubMetric(hub.ports.metrics, 'kedge_hub_session_queue_depth')) === 0,
    );
    await second.close();
    hub.child.kill('SIGTERM');
  }, 120_000);
});
