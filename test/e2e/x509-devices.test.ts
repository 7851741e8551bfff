// X.509 devices to the cloud: real API server, NATS, controller (with its gateway) and
// `kedge node` processes that authenticate with a client certificate instead of a key.
//   - cam-tp names its certificate's SHA-256 thumbprint;
//   - cam-ca names the fleet's root CA; its certificate comes from an intermediate it sends along.
import { X509Certificate } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import mqtt from 'mqtt';
import { deviceUsername } from '../../src/common/cloudlink/protocol.js';
import { createCa, issueCertificate, type KeyPair } from '../../src/common/pki.js';
import type { RunningController } from '../../src/controller/manager.js';
import { freePort } from '../../src/localcluster/ports.js';
import { eventually, startTestCluster, type TestCluster } from '../support/cluster.js';
import { startTestNats, type TestNats } from '../support/nats.js';
import { startNode, startTestController, type NodeProcess, edgeDeviceJson } from './support.js';

const THUMBPRINT_DEVICE = 'cam-tp';
const CA_DEVICE = 'cam-ca';

const edgeDevice = (name: string, x509: Record<string, string>): string =>
  edgeDeviceJson(name, {
    heartbeat: { intervalSecs: 2, offlineAfterSecs: 8 },
    authentication: { type: 'X509', x509 },
  });

const thumbprintOf = (pem: string): string =>
  new X509Certificate(pem).fingerprint256.replaceAll(':', '');

describe('X.509 devices to the cloud (real API server, NATS, gateway, kedge node)', () => {
  let cluster: TestCluster;
  let nats: TestNats;
  let controller: RunningController;
  let gatewayPort: number;
  let certDir: string;
  const nodes: NodeProcess[] = [];
  const root = createCa('fleet-root');
  const intermediate = createCa('fleet-intermediate', root);
  const tpCert = issueCertificate(createCa('self-managed'), {
    commonName: THUMBPRINT_DEVICE,
    usage: ['client'],
  });
  const caCert = issueCertificate(intermediate, { commonName: CA_DEVICE, usage: ['client'] });

  /** Writes a certificate (with the chain it sends) and its key; returns the two paths. */
  async function certificateFiles(
    name: string,
    pair: KeyPair,
    chain = '',
  ): Promise<{ certFile: string; keyFile: string }> {
    const certFile = path.join(certDir, `${name}.crt`);
    const keyFile = path.join(certDir, `${name}.key`);
    await writeFile(certFile, pair.certPem + chain);
    await writeFile(keyFile, pair.keyPem, { mode: 0o600 });
    return { certFile, keyFile };
  }

  const conditionsOf = async (name: string): Promise<Record<string, any>> => {
    const status = JSON.parse(
      await cluster.kubectlOk(['get', 'edgedevice', name, '-o', 'json']),
    ).status;
    return Object.fromEntries((status?.conditions ?? []).map((c: any) => [c.type, c]));
  };
  const connected = (name: string) =>
    eventually(
      `${name} connected`,
      async () => {
        const c = await conditionsOf(name);
        return c.Connected?.status === 'True' && c.Ready?.status === 'True' ? c : undefined;
      },
      90_000,
    );

  /** A CONNECT with this certificate as `name`, no password: `connected` or the refusal. */
  const tryConnect = (name: string, pair: KeyPair): Promise<string> =>
    new Promise((resolve) => {
      const client = mqtt.connect(`mqtts://localhost:${gatewayPort}`, {
        clientId: deviceUsername('default', name),
        username: deviceUsername('default', name),
        cert: pair.certPem,
        key: pair.keyPem,
        ca: controller.caPem,
        reconnectPeriod: 0,
        connectTimeout: 5_000,
      });
      client.on('connect', () => {
        client.end(true);
        resolve('connected');
      });
      client.on('error', (err) => {
        client.end(true);
        resolve(err.message);
      });
    });

  beforeAll(async () => {
    cluster = await startTestCluster('x509');
    const ports = { hub: await freePort(), kubelet: await freePort() };
    gatewayPort = ports.hub;
    nats = await startTestNats('x509');
    controller = await startTestController(cluster, ports, nats.url);
    certDir = await mkdtemp(path.join(tmpdir(), 'kedge-x509-'));
    await cluster.kubectlOk(
      ['apply', '-f', '-'],
      edgeDevice(THUMBPRINT_DEVICE, { thumbprint: thumbprintOf(tpCert.certPem) }),
    );
    await cluster.kubectlOk(
      ['apply', '-f', '-'],
      edgeDevice(CA_DEVICE, { caCertificate: root.certPem }),
    );
  });

  afterAll(async () => {
    await writeFile(
      path.join(process.cwd(), '.test-artifacts', 'e2e-x509-nodes.log'),
      nodes.map((n) => n.output()).join('\n----\n'),
    ).catch(() => undefined);
    for (const n of nodes) await n.kill('SIGTERM');
    await controller?.stop();
    await nats?.stop();
    await cluster?.cp.stop();
  });

  it('connects a device by its certificate thumbprint: Ready, Connected, a Ready Node, no key Secret', async () => {
    const x509 = await certificateFiles(THUMBPRINT_DEVICE, tpCert);
    nodes.push(await startNode(cluster, THUMBPRINT_DEVICE, gatewayPort, { x509 }));
    const conditions = await connected(THUMBPRINT_DEVICE);
    expect(conditions.Credentials).toMatchObject({ status: 'True', reason: 'X509Thumbprint' });
    await eventually('its Node Ready', async () => {
      const ready = await cluster.kubectl([
        'get',
        'node',
        `${THUMBPRINT_DEVICE}.default.kedge`,
        '-o',
        'jsonpath={.status.conditions[?(@.type=="Ready")].status}',
      ]);
      return ready.stdout === 'True' ? true : undefined;
    });
    expect(
      (await cluster.kubectl(['get', 'secret', `${THUMBPRINT_DEVICE}-kedge-key`])).code,
    ).not.toBe(0);
  });

  it('connects a CA-signed device that sends its intermediate, and refuses another CA, another CN or no intermediate', async () => {
    const x509 = await certificateFiles(CA_DEVICE, caCert, intermediate.certPem);
    nodes.push(await startNode(cluster, CA_DEVICE, gatewayPort, { x509 }));
    const conditions = await connected(CA_DEVICE);
    expect(conditions.Credentials).toMatchObject({ status: 'True', reason: 'X509CASigned' });
    const refused = /Bad username or password|Not authorized/i;
    const otherCn = issueCertificate(root, { commonName: 'someone-else', usage: ['client'] });
    expect(await tryConnect(CA_DEVICE, otherCn)).toMatch(refused);
    const otherCa = issueCertificate(createCa('elsewhere'), {
      commonName: CA_DEVICE,
      usage: ['client'],
    });
    expect(await tryConnect(CA_DEVICE, otherCa)).toMatch(refused);
    expect(await tryConnect(CA_DEVICE, caCert)).toMatch(refused);
    // A certificate is not a key: the thumbprint device's certificate opens nothing else.
    expect(await tryConnect(CA_DEVICE, tpCert)).toMatch(refused);
  });

  it('ends the live session of a device whose thumbprint changes, and refuses it after', async () => {
    const replacement = issueCertificate(createCa('replacement'), {
      commonName: THUMBPRINT_DEVICE,
      usage: ['client'],
    });
    const started = Date.now();
    await cluster.kubectlOk([
      'patch',
      'edgedevice',
      THUMBPRINT_DEVICE,
      '--type',
      'merge',
      '-p',
      JSON.stringify({
        spec: { authentication: { x509: { thumbprint: thumbprintOf(replacement.certPem) } } },
      }),
    ]);
    await eventually(
      'the old certificate refused',
      async () =>
        (await tryConnect(THUMBPRINT_DEVICE, tpCert)) === 'connected' ? undefined : true,
      10_000,
    );
    const refusedAfter = Date.now() - started;
    console.log(`old certificate refused ${refusedAfter} ms after the thumbprint changed`);
    await eventually(
      'the device shown Disconnected',
      async () =>
        (await conditionsOf(THUMBPRINT_DEVICE)).Connected?.status === 'False' ? true : undefined,
      30_000,
    );
    expect(await tryConnect(THUMBPRINT_DEVICE, replacement)).toBe('connected');
  });
});
