import deviceSdk, { type Client as SdkClient, type Message as SdkMessage } from 'azure-iot-device';
import mqttTransport from 'azure-iot-device-mqtt';
import { spawn, type ChildProcess } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import type { RunningController } from '../../src/controller/manager.js';
import { createCa, issueCertificate, type KeyPair } from '../../src/common/pki.js';
import { SDK_PORTS } from '../../src/edgenode/hub/options.js';
import { freePort } from '../../src/localcluster/ports.js';
import { eventually, startTestCluster, type TestCluster } from '../support/cluster.js';
import { PACKAGE_ROOT } from '../../src/localcluster/kubectl.js';
import { startTestNats, type TestNats } from '../support/nats.js';
import { pythonWithSdk } from '../support/python.js';
import {
  launchNode,
  startNode,
  startTelemetryConsumer,
  startTestController,
  type ConsumedTelemetry,
  type NodeProcess,
  runKedge,
  edgeDeviceJson,
  type CliRun,
} from './support.js';

const { Client, Message, X509AuthenticationProvider } = deviceSdk;
const { Mqtt } = mqttTransport;

// A gateway EdgeDevice `gw`, a SAS leaf `sensor` and an X.509 leaf `cam` behind it (Node SDK),
// and a SAS leaf `py-sensor` on the Python SDK. The hub listens on the SDKs' port, 8883, on
// loopback, as the Python SDK takes no other; Jest runs one file at a time, so no other test
// holds it meanwhile.
const GW = 'gw';
const SENSOR = 'sensor';
const CAM = 'cam';
const PY_SENSOR = 'py-sensor';
const CAM_SIGNED = 'cam-signed';

function thumbprintOf(certPem: string): string {
  return new X509Certificate(certPem).fingerprint256.replaceAll(':', '');
}

/** Runs the kedge CLI with the admin kubeconfig. */
const kedge = (kubeconfig: string, args: string[]): Promise<CliRun> => runKedge(args, kubeconfig);

describe('leaf EdgeDevices behind a gateway (real API server, NATS, kedge node, Azure SDK leaves)', () => {
  let cluster: TestCluster;
  let nats: TestNats;
  let controller: RunningController;
  let node: NodeProcess;
  let hubPort: number;
  let caPem: string;
  let sensorKey: string;
  let consumer: { stop(): Promise<void> };
  const clients: SdkClient[] = [];
  const pythonLeaves: ChildProcess[] = [];
  const telemetry: ConsumedTelemetry[] = [];
  const leafCa = createCa('leaf-test-ca');
  const camCert = issueCertificate(leafCa, { commonName: CAM, usage: ['client'] });
  const strangerCert = issueCertificate(leafCa, { commonName: CAM, usage: ['client'] });
  // CA-signed: the fleet's intermediate signs `cam-signed`'s certificate; its EdgeDevice names the
  // root, and the device sends the intermediate with its own certificate.
  const fleetIntermediate = createCa('fleet-intermediate', leafCa);
  const signedCert = issueCertificate(fleetIntermediate, {
    commonName: CAM_SIGNED,
    usage: ['client'],
  });
  const signedChain = { ...signedCert, certPem: signedCert.certPem + fleetIntermediate.certPem };

  const nodes: NodeProcess[] = [];
  const gatewayHost = (): string => `GatewayHostName=localhost:${hubPort}`;
  async function openSas(key: string, got: string[] = []): Promise<SdkClient> {
    const cs = `HostName=kedge.local;DeviceId=${SENSOR};SharedAccessKey=${key};${gatewayHost()}`;
    const client = Client.fromConnectionString(cs, Mqtt);
    client.on('error', () => undefined);
    client.on('message', (msg: SdkMessage) => {
      got.push(msg.getBytes().toString());
      client.complete(msg, () => undefined);
    });
    await client.setOptions({ ca: caPem });
    await client.open();
    clients.push(client);
    return client;
  }
  async function openX509(pair: KeyPair, deviceId = CAM): Promise<SdkClient> {
    // The Node SDK drops GatewayHostName from an `x509=true` connection string, so the leaf
    // names its gateway in the credentials, as the SDK's transport reads them.
    const auth = new X509AuthenticationProvider({
      deviceId,
      host: 'kedge.local',
      gatewayHostName: `localhost:${hubPort}`,
      x509: { cert: pair.certPem, key: pair.keyPem },
    });
    const client = Client.fromAuthenticationProvider(auth, Mqtt);
    client.on('error', () => undefined);
    await client.setOptions({ ca: caPem, cert: pair.certPem, key: pair.keyPem });
    await client.open();
    clients.push(client);
    return client;
  }
  const primaryKey = async (leaf: string): Promise<string> => {
    const secret = JSON.parse(
      await cluster.kubectlOk(['get', 'secret', `${leaf}-kedge-key`, '-o', 'json']),
    );
    return Buffer.from(secret.data.primaryKey, 'base64').toString();
  };
  const status = async (name: string): Promise<any> =>
    JSON.parse(await cluster.kubectlOk(['get', 'edgedevice', name, '-o', 'json'])).status;
  const telemetryFrom = (deviceId: string, body: string): boolean =>
    telemetry.some(
      (t) =>
        t.message.systemProperties['$.cdid'] === deviceId &&
        Buffer.from(t.message.body, 'base64').toString() === body,
    );

  beforeAll(async () => {
    cluster = await startTestCluster('leaf');
    const ports = { hub: await freePort(), kubelet: await freePort() };
    nats = await startTestNats('leaf');
    controller = await startTestController(cluster, ports, nats.url);
    consumer = await startTelemetryConsumer(nats.url, 'default', (m) => telemetry.push(m));
    await cluster.kubectlOk(
      ['apply', '-f', '-'],
      edgeDeviceJson(GW, { heartbeat: { intervalSecs: 2, offlineAfterSecs: 8 } }),
    );
    await cluster.kubectlOk(
      ['apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'kedge.io/v1alpha1',
        kind: 'Route',
        metadata: { name: 'leaves-upstream', namespace: 'default' },
        spec: {
          deviceSelector: {},
          route: 'FROM /messages/* WHERE NOT IS_DEFINED($connectionModuleId) INTO $upstream',
        },
      }),
    );
    await cluster.kubectlOk(['apply', '-f', '-'], edgeDeviceJson(SENSOR, { parent: GW }));
    await cluster.kubectlOk(['apply', '-f', '-'], edgeDeviceJson(PY_SENSOR, { parent: GW }));
    await cluster.kubectlOk(
      ['apply', '-f', '-'],
      edgeDeviceJson(CAM_SIGNED, {
        parent: GW,
        authentication: { type: 'X509', x509: { caCertificate: leafCa.certPem } },
      }),
    );
    await cluster.kubectlOk(
      ['apply', '-f', '-'],
      edgeDeviceJson(CAM, {
        parent: GW,
        authentication: { type: 'X509', x509: { thumbprint: thumbprintOf(camCert.certPem) } },
      }),
    );
    hubPort = SDK_PORTS.mqtts;
    node = await startNode(cluster, GW, ports.hub, {
      config: {
        hub: { tlsPort: hubPort, workloadPort: await freePort(), methodsPort: await freePort() },
      },
    });
    await eventually(
      'the gateway device connected',
      async () =>
        (await status(GW))?.conditions?.some(
          (c: any) => c.type === 'Connected' && c.status === 'True',
        ) || undefined,
      90_000,
    );
    caPem = await readFile(path.join(node.dataDir, 'hub', 'pki', 'device-ca.crt'), 'utf8');
    sensorKey = await primaryKey(SENSOR);
  });

  afterAll(async () => {
    await writeFile(
      path.join(process.cwd(), '.test-artifacts', 'e2e-leaf-nodes.log'),
      [...nodes, node].map((n) => n?.output() ?? '').join('\n----\n'),
    ).catch(() => undefined);
    for (const c of clients) await c.close().catch(() => undefined);
    for (const p of pythonLeaves) p.kill();
    await consumer?.stop();
    await node?.kill('SIGTERM');
    await controller?.stop();
    await nats?.stop();
    await cluster?.cp.stop();
  });

  it('gives a leaf no Node, and a leaf whose parent is missing Ready=False with the reason', async () => {
    await cluster.kubectlOk(['apply', '-f', '-'], edgeDeviceJson('orphan', { parent: 'nowhere' }));
    const ready = await eventually('the orphan’s Ready condition', async () =>
      (await status('orphan'))?.conditions?.find((c: any) => c.type === 'Ready'),
    );
    expect(ready).toMatchObject({ status: 'False', reason: 'ParentNotFound' });
    expect(ready.message).toMatch(/gateway EdgeDevice nowhere does not exist/);
    const nodes = await cluster.kubectlOk(['get', 'nodes', '-o', 'name']);
    expect(nodes).not.toMatch(/sensor|cam|orphan/);
    expect(nodes).toMatch(/gw/);
    await cluster.kubectlOk(['delete', 'edgedevice', 'orphan']);
  });

  it('connects a SAS leaf through its gateway: telemetry arrives, status names the parent, its twin reads and patches, and kedge invoke calls its method', async () => {
    const sensor = await eventually('the sensor leaf connected through gw', () =>
      openSas(sensorKey),
    );
    await sensor.sendEvent(new Message('hello-from-sensor'));
    await eventually(
      'the leaf telemetry at the durable consumer',
      async () => telemetryFrom(SENSOR, 'hello-from-sensor') || undefined,
    );
    const connected = await eventually('the sensor reported connected', async () => {
      const s = await status(SENSOR);
      return s?.phase === 'Connected' ? s : undefined;
    });
    expect(connected.parent).toBe(GW);
    expect(connected.nodeName).toBeUndefined();
    expect(connected.conditions.find((c: any) => c.type === 'Ready')).toMatchObject({
      status: 'True',
      reason: 'ConnectedThroughParent',
    });

    // Its reported twin, through the service API on the leaf EdgeDevice itself.
    const twin = await sensor.getTwin();
    await new Promise<void>((resolve, reject) =>
      twin.properties.reported.update({ firmware: '1.2.3' }, (err?: Error) =>
        err ? reject(err) : resolve(),
      ),
    );
    const twinPath = `/apis/api.kedge.io/v1alpha1/namespaces/default/edgedevices/${SENSOR}/twin`;
    const read = await eventually('the leaf twin through the service API', async () => {
      const res = await cluster.kubectl(['get', '--raw', twinPath]);
      return res.code === 0 ? JSON.parse(res.stdout) : undefined;
    });
    expect(read).toMatchObject({
      kind: 'DeviceTwin',
      deviceId: SENSOR,
      properties: { reported: { firmware: '1.2.3' } },
    });

    sensor.onDeviceMethod('ping', (request, response) => {
      void response.send(200, { pong: request.payload });
    });
    await new Promise((r) => setTimeout(r, 500));
    const invoked = await kedge(cluster.cp.kubeconfigPath, [
      'invoke',
      `default/${SENSOR}`,
      'ping',
      '{"n":1}',
    ]);
    expect({ code: invoked.code, stderr: invoked.stderr }).toEqual({ code: 0, stderr: '' });
    expect(JSON.parse(invoked.stdout)).toEqual({ pong: { n: 1 } });

    // A desired patch through the service API reaches the connected leaf's twin.
    const desired: Record<string, unknown>[] = [];
    twin.on('properties.desired', (patch: Record<string, unknown>) => desired.push(patch));
    const patched = await kedge(cluster.cp.kubeconfigPath, [
      'twin',
      'patch',
      `default/${SENSOR}`,
      '--desired',
      '{"interval":5}',
    ]);
    expect({ code: patched.code, stderr: patched.stderr }).toEqual({ code: 0, stderr: '' });
    const change = await eventually('the desired patch at the leaf', async () =>
      desired.find((d) => d.interval === 5 && !('firmware' in d)),
    );
    expect(change).toEqual({ interval: 5, $version: expect.any(Number) });
  });

  it('delivers a C2D message sent while the leaf is offline when it reconnects', async () => {
    await clients.pop()!.close();
    const sent = await kedge(cluster.cp.kubeconfigPath, [
      'c2d',
      'send',
      `default/${SENSOR}`,
      'while-offline',
      '--message-id',
      'm-offline',
    ]);
    expect({ code: sent.code, stderr: sent.stderr }).toEqual({ code: 0, stderr: '' });
    expect(sent.stdout).toMatch(/^queued m-offline for default\/sensor/);
    const got: string[] = [];
    await openSas(sensorKey, got);
    await eventually(
      'the offline C2D message at the leaf',
      async () => got.includes('while-offline') || undefined,
    );
  });

  it('serves a Python SDK leaf on the SDK port: its twin reads and patches, kedge invoke calls it, and C2D sent while it was offline arrives', async () => {
    const python = pythonWithSdk();
    const cs = `HostName=kedge.local;DeviceId=${PY_SENSOR};SharedAccessKey=${await primaryKey(PY_SENSOR)};GatewayHostName=localhost`;
    const caFile = path.join(node.dataDir, 'hub', 'pki', 'device-ca.crt');
    const lines: string[] = [];
    const startLeaf = (): ChildProcess => {
      const child = spawn(
        python,
        [path.join(PACKAGE_ROOT, 'test/fixtures/python/leaf_device.py'), caFile],
        {
          env: { ...process.env, LEAF_CONNECTION_STRING: cs },
        },
      );
      child.stdout.on('data', (c: Buffer) =>
        lines.push(...c.toString().split('\n').filter(Boolean)),
      );
      child.stderr.on('data', (c: Buffer) => lines.push(`stderr ${c.toString()}`));
      pythonLeaves.push(child);
      return child;
    };
    const lineStarting = (prefix: string) =>
      eventually(`python leaf printed "${prefix}"`, async () =>
        lines.find((l) => l.startsWith(prefix)),
      );
    let leaf = startLeaf();
    await lineStarting('python leaf connected');
    await eventually(
      'the python leaf telemetry at the durable consumer',
      async () => telemetryFrom(PY_SENSOR, 'hello-from-python') || undefined,
    );
    const twinPath = `/apis/api.kedge.io/v1alpha1/namespaces/default/edgedevices/${PY_SENSOR}/twin`;
    await eventually('the python leaf reported twin through the service API', async () => {
      const res = await cluster.kubectl(['get', '--raw', twinPath]);
      return res.code === 0 && JSON.parse(res.stdout).properties.reported.sdk === 'python'
        ? true
        : undefined;
    });

    const invoked = await kedge(cluster.cp.kubeconfigPath, [
      'invoke',
      `default/${PY_SENSOR}`,
      'ping',
      '{"n":2}',
    ]);
    expect({ code: invoked.code, stderr: invoked.stderr }).toEqual({ code: 0, stderr: '' });
    expect(JSON.parse(invoked.stdout)).toEqual({
      method: 'ping',
      payload: { n: 2 },
      sdk: 'python',
    });

    const patched = await kedge(cluster.cp.kubeconfigPath, [
      'twin',
      'patch',
      `default/${PY_SENSOR}`,
      '--desired',
      '{"interval":9}',
    ]);
    expect({ code: patched.code, stderr: patched.stderr }).toEqual({ code: 0, stderr: '' });
    const desired = await lineStarting('desired ');
    expect(JSON.parse(desired.slice('desired '.length))).toEqual({
      interval: 9,
      $version: expect.any(Number),
    });

    leaf.stdin!.end();
    await new Promise((resolve) => leaf.once('exit', resolve));
    const sent = await kedge(cluster.cp.kubeconfigPath, [
      'c2d',
      'send',
      `default/${PY_SENSOR}`,
      'while-offline-py',
    ]);
    expect({ code: sent.code, stderr: sent.stderr }).toEqual({ code: 0, stderr: '' });
    leaf = startLeaf();
    expect(await lineStarting('c2d ')).toBe('c2d while-offline-py');
  });

  it('connects an X.509 leaf by its certificate thumbprint, and refuses another certificate', async () => {
    const cam = await eventually('the X.509 leaf connected through gw', () => openX509(camCert));
    await cam.sendEvent(new Message('hello-from-cam'));
    await eventually(
      'the X.509 leaf telemetry at the durable consumer',
      async () => telemetryFrom(CAM, 'hello-from-cam') || undefined,
    );
    await expect(openX509(strangerCert)).rejects.toThrow(/not authorized|unauthorized/i);
    expect((await status(CAM)).conditions.find((c: any) => c.type === 'Credentials')).toMatchObject(
      { status: 'True', reason: 'X509Thumbprint' },
    );
  });

  it('connects a CA-signed X.509 leaf through an intermediate, and refuses another CA or another device’s certificate', async () => {
    const signed = await eventually('the CA-signed leaf connected through gw', () =>
      openX509(signedChain, CAM_SIGNED),
    );
    await signed.sendEvent(new Message('hello-from-cam-signed'));
    await eventually(
      'the CA-signed leaf telemetry at the durable consumer',
      async () => telemetryFrom(CAM_SIGNED, 'hello-from-cam-signed') || undefined,
    );
    // Without the intermediate, from another CA, or with another device's CN: refused.
    await expect(openX509(signedCert, CAM_SIGNED)).rejects.toThrow(/not authorized|unauthorized/i);
    const elsewhere = issueCertificate(createCa('elsewhere'), {
      commonName: CAM_SIGNED,
      usage: ['client'],
    });
    await expect(openX509(elsewhere, CAM_SIGNED)).rejects.toThrow(/not authorized|unauthorized/i);
    await expect(openX509(camCert, CAM_SIGNED)).rejects.toThrow(/not authorized|unauthorized/i);
    expect(
      (await status(CAM_SIGNED)).conditions.find((c: any) => c.type === 'Credentials'),
    ).toMatchObject({ status: 'True', reason: 'X509CASigned' });
    // The CRD takes one X.509 form, and says so.
    const both = await cluster.kubectl(
      ['apply', '-f', '-'],
      edgeDeviceJson('both-forms', {
        parent: GW,
        authentication: {
          type: 'X509',
          x509: { thumbprint: thumbprintOf(camCert.certPem), caCertificate: leafCa.certPem },
        },
      }),
    );
    expect(both.code).not.toBe(0);
    expect(both.stderr).toContain(
      'authentication.x509 takes exactly one of thumbprint and caCertificate',
    );
  });

  it('lets a leaf authenticate from the hub’s cache while the gateway cannot reach the cloud, and gets the twin patch sent meanwhile once it is back', async () => {
    for (const c of clients.splice(0)) await c.close().catch(() => undefined);
    await node.kill('SIGTERM');
    nodes.push(node);
    const config = parse(await readFile(node.configPath, 'utf8'));
    const offlinePath = path.join(node.dataDir, 'node-offline.yaml');
    const unreachable = `mqtts://localhost:${await freePort()}`;
    await writeFile(
      offlinePath,
      stringify({ ...config, cloud: { ...config.cloud, url: unreachable } }),
    );
    const { configPath, dataDir } = node;
    node = launchNode(offlinePath, dataDir);
    const sensor = await eventually('the sensor leaf connected to the offline gateway', () =>
      openSas(sensorKey),
    );
    await sensor.close();
    clients.pop();
    // A desired patch sent meanwhile waits in the cloud plane for the gateway's return.
    const patched = await kedge(cluster.cp.kubeconfigPath, [
      'twin',
      'patch',
      `default/${SENSOR}`,
      '--desired',
      '{"firmwareTarget":"2.0"}',
    ]);
    expect({ code: patched.code, stderr: patched.stderr }).toEqual({ code: 0, stderr: '' });
    await node.kill('SIGTERM');
    nodes.push(node);
    node = launchNode(configPath, dataDir);
    await eventually(
      'the gateway device back online',
      async () =>
        (await status(GW))?.conditions?.some(
          (c: any) => c.type === 'Connected' && c.status === 'True',
        ) || undefined,
      60_000,
    );
    await eventually('the patch sent while the gateway was offline in the leaf twin', async () => {
      const client = await openSas(sensorKey);
      const desired = (await client.getTwin()).properties.desired;
      await client.close();
      clients.pop();
      return desired.firmwareTarget === '2.0' ? true : undefined;
    });
  });

  it('disconnects a revoked leaf at once: deleting its EdgeDevice ends the live session and it cannot reconnect', async () => {
    const sensor = await eventually('the sensor leaf connected again', () => openSas(sensorKey));
    // Without retries the SDK reports the lost connection itself instead of reconnecting (its
    // retries are refused; the hub logs each one).
    sensor.setRetryPolicy({ shouldRetry: () => false, nextRetryTimeout: () => -1 });
    const disconnected = new Promise<number>((resolve) =>
      sensor.on('disconnect', () => resolve(Date.now())),
    );
    const started = Date.now();
    await cluster.kubectlOk(['delete', 'edgedevice', SENSOR, '--wait=false']);
    const at = await Promise.race([
      disconnected,
      new Promise<number>((_, reject) =>
        setTimeout(() => reject(new Error('no disconnect within 15 s')), 15_000),
      ),
    ]);
    console.log(`revoked leaf disconnected ${at - started} ms after kubectl delete began`);
    expect(at - started).toBeLessThan(15_000);
    await expect(openSas(sensorKey)).rejects.toThrow(/not authorized|unauthorized/i);
    await eventually(
      'the sensor EdgeDevice gone',
      async () => (await cluster.kubectl(['get', 'edgedevice', SENSOR])).code !== 0 || undefined,
    );
  });
});
