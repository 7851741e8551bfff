import deviceSdk, { type Client as SdkClient, type Message as SdkMessage } from 'azure-iot-device';
import mqttTransport from 'azure-iot-device-mqtt';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { RunningController } from '../../src/controller/manager.js';
import { Streams } from '../../src/common/cloudplane/layout.js';
import { freePort } from '../../src/localcluster/ports.js';
import { eventually, startTestCluster, type TestCluster } from '../support/cluster.js';
import { startTestNats, type TestNats } from '../support/nats.js';
import {
  launchNode,
  startNode,
  startTestController,
  type NodeProcess,
  runKedge,
  type CliRun,
} from './support.js';

const { Client } = deviceSdk;
const { Mqtt } = mqttTransport;

// An edge device `gw` with one leaf device behind its hub.
const GW = 'gw';
const LEAF = 'leaf-7';
const LEAF_KEY = Buffer.alloc(32, 7).toString('base64');
const c2dPath = `/apis/api.kedge.io/v1alpha1/namespaces/default/edgedevices/${GW}/c2d`;

interface Received {
  body: string;
  messageId: string;
  kind: string | undefined;
}

/** The leaf, as an Azure IoT SDK device client dialling its gateway's hub. */
async function openLeaf(hubPort: number, caPem: string, got: Received[]): Promise<SdkClient> {
  const cs = `HostName=kedge.local;DeviceId=${LEAF};SharedAccessKey=${LEAF_KEY};GatewayHostName=localhost:${hubPort}`;
  const client = Client.fromConnectionString(cs, Mqtt);
  client.on('error', () => undefined);
  client.on('message', (msg: SdkMessage) => {
    got.push({
      body: msg.getBytes().toString(),
      messageId: String(msg.messageId),
      kind: msg.properties.getValue('kind') as string | undefined,
    });
    client.complete(msg, () => undefined);
  });
  await client.setOptions({ ca: caPem });
  await client.open();
  return client;
}

/** `kedge c2d send` with the admin kubeconfig. */
const kedgeC2d = (kubeconfig: string, args: string[]): Promise<CliRun> =>
  runKedge(['c2d', 'send', ...args], kubeconfig);

describe('cloud-to-device messages on the cloud plane (real API server, NATS, kedge node, Azure SDK leaf)', () => {
  let cluster: TestCluster;
  let nats: TestNats;
  let nc: NatsConnection;
  let controller: RunningController;
  let node: NodeProcess;
  let leaf: SdkClient | undefined;
  let hubPort: number;
  let caPem: string;
  const got: Received[] = [];

  const queued = async (): Promise<number> =>
    (await (await jetstreamManager(nc)).streams.info(Streams.c2d)).state.messages;
  const post = (body: object, as?: string) =>
    cluster.kubectl(
      ['create', '--raw', c2dPath, '-f', '-', ...(as ? ['--as', as] : [])],
      JSON.stringify(body),
    );

  beforeAll(async () => {
    cluster = await startTestCluster('c2d');
    const ports = { hub: await freePort(), kubelet: await freePort() };
    nats = await startTestNats('c2d');
    nc = await connect({ servers: nats.url });
    controller = await startTestController(cluster, ports, nats.url);
    await cluster.kubectlOk(
      ['apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'kedge.io/v1alpha1',
        kind: 'EdgeDevice',
        metadata: { name: GW, namespace: 'default' },
        spec: { heartbeat: { intervalSecs: 2, offlineAfterSecs: 8 } },
      }),
    );
    hubPort = await freePort();
    node = await startNode(cluster, GW, ports.hub, {
      config: {
        hub: {
          tlsPort: hubPort,
          workloadPort: await freePort(),
          methodsPort: await freePort(),
          leafDevices: [{ deviceId: LEAF, primaryKey: LEAF_KEY }],
        },
      },
    });
    await eventually(
      'the gateway device connected',
      async () => {
        const d = JSON.parse(await cluster.kubectlOk(['get', 'edgedevice', GW, '-o', 'json']));
        return d.status?.conditions?.some((c: any) => c.type === 'Connected' && c.status === 'True')
          ? true
          : undefined;
      },
      90_000,
    );
    caPem = await readFile(path.join(node.dataDir, 'hub', 'pki', 'device-ca.crt'), 'utf8');
  });

  afterAll(async () => {
    await leaf?.close().catch(() => undefined);
    await node?.kill('SIGTERM');
    await controller?.stop();
    await nc?.close();
    await nats?.stop();
    await cluster?.cp.stop();
  });

  it('delivers a message sent with kedge c2d send to a connected leaf, with its properties', async () => {
    leaf = await openLeaf(hubPort, caPem, got);
    const sent = await kedgeC2d(cluster.cp.kubeconfigPath, [
      `default/${GW}/${LEAF}`,
      'live',
      '-p',
      'kind=command',
      '--message-id',
      'm-live',
    ]);
    expect({ code: sent.code, stderr: sent.stderr }).toEqual({ code: 0, stderr: '' });
    expect(sent.stdout).toMatch(/^queued m-live for default\/gw\/leaf-7; it expires at /);
    await eventually('the live message at the leaf', async () => (got.length ? true : undefined));
    expect(got).toEqual([{ body: 'live', messageId: 'm-live', kind: 'command' }]);
    await eventually('the delivered message removed', async () =>
      (await queued()) === 0 ? true : undefined,
    );
  });

  it('keeps a message while the edge device is offline, delivers it on reconnect and drops one whose TTL ended', async () => {
    await leaf!.close();
    leaf = undefined;
    await node.kill('SIGTERM');
    got.length = 0;

    const kept = await post({ deviceId: LEAF, payload: 'while-offline', messageId: 'm-kept' });
    expect(kept.code).toBe(0);
    expect(JSON.parse(kept.stdout)).toMatchObject({
      kind: 'CloudToDeviceMessageStatus',
      deviceId: LEAF,
      messageId: 'm-kept',
    });
    const shortLived = await post({ deviceId: LEAF, payload: 'expired', ttlInSeconds: 1 });
    expect(shortLived.code).toBe(0);
    expect(await queued()).toBe(2);
    // NATS removes a message once its own TTL has passed.
    await eventually('the 1 s message expired in the stream', async () =>
      (await queued()) === 1 ? true : undefined,
    );

    node = launchNode(node.configPath, node.dataDir);
    leaf = await eventually('the leaf reconnected to its restarted hub', () =>
      openLeaf(hubPort, caPem, got),
    );
    await eventually('the kept message at the leaf', async () => (got.length ? true : undefined));
    // Nothing else arrives: the expired message is gone.
    await new Promise((r) => setTimeout(r, 2_000));
    expect(got.map((m) => m.body)).toEqual(['while-offline']);
    expect(got[0]!.messageId).toBe('m-kept');
    expect(await queued()).toBe(0);
  });

  it('refuses a message once a leaf has 50 queued, and drops messages for a leaf the hub does not know', async () => {
    await leaf!.close();
    leaf = undefined;
    await node.kill('SIGTERM');
    for (let i = 0; i < 50; i++) {
      const res = await post({ deviceId: 'unknown-leaf', payload: `m${i}` });
      expect(res.code).toBe(0);
    }
    const full = await post({ deviceId: 'unknown-leaf', payload: 'one too many' });
    expect(full.code).not.toBe(0);
    expect(full.stderr).toMatch(
      /C2D queue of unknown-leaf behind default\/gw is full \(50 messages\)/,
    );
    // Another leaf's queue is its own.
    expect((await post({ deviceId: LEAF, payload: 'after' })).code).toBe(0);
    expect(await queued()).toBe(51);

    node = launchNode(node.configPath, node.dataDir);
    leaf = await eventually('the leaf reconnected to its restarted hub', () =>
      openLeaf(hubPort, caPem, got),
    );
    await eventually(
      'every queued message delivered or refused by the hub',
      async () => ((await queued()) === 0 ? true : undefined),
      60_000,
    );
    await eventually('the other leaf’s message', async () =>
      got.some((m) => m.body === 'after') ? true : undefined,
    );
  });

  it('refuses a user without create on edgedevices/c2d, and bad requests with the field at fault', async () => {
    const refused = await post({ deviceId: LEAF, payload: 'x' }, 'mallory');
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/forbidden|cannot create resource "edgedevices\/c2d"/i);
    const noLeaf = await post({ payload: 'x' });
    expect(noLeaf.stderr).toMatch(/deviceId must name the leaf device/);
    const tooLong = await post({ deviceId: LEAF, payload: 'x', ttlInSeconds: 3 * 24 * 3600 });
    expect(tooLong.stderr).toMatch(/ttlInSeconds must be a whole number from 1 to 172800/);
    const tooBig = await post({ deviceId: LEAF, payload: 'x'.repeat(64 * 1024 + 1) });
    expect(tooBig.stderr).toMatch(/a C2D message carries at most 65536/);
  });
});
