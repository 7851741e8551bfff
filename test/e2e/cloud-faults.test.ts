// The cloud plane under faults, with every part real: a 3-node JetStream cluster, two `kedge
// controller` processes with leader election, two `kedge gateway` processes behind a balancer
// standing in for their Service, and 50 devices (real agent and cloud link, simulated container
// runtime) sending telemetry. During a rollout the leader controller, one gateway and one NATS node
// are each killed with SIGKILL. Every message a device's queue handed over must reach a durable
// consumer; the webhook, down for 10 minutes across a controller and gateway restart, must get
// them all too.
import { AckPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { UpstreamMessage } from '../../src/common/cloudlink/protocol.js';
import {
  deviceOfSubject,
  Streams,
  Subjects,
  type PresenceEvent,
} from '../../src/common/cloudplane/layout.js';
import { dockerBridgeAddress } from '../../src/localcluster/docker.js';
import { PACKAGE_ROOT } from '../../src/localcluster/kubectl.js';
import type { NatsCluster } from '../../src/localcluster/nats.js';
import { freePort } from '../../src/localcluster/ports.js';
import { chartIdentity } from '../support/chart-identity.js';
import { eventually, startTestCluster, type TestCluster } from '../support/cluster.js';
import { startHollowDevice, type HollowDevice } from '../support/hollow-device.js';
import { startTestNatsCluster } from '../support/nats.js';
import { startTcpBalancer, type TcpBalancer } from '../support/tcp-balancer.js';
import { configureWebhook, startWebhook, type TestWebhook } from './support.js';

const DEVICES = 50;
const MESSAGES_PER_SEC = 2;
const NS = 'default';
/** The acceptance scenario: the webhook stays down this long, across restarts. */
const WEBHOOK_OUTAGE_MS = 10 * 60 * 1000;
const CLI = path.join(PACKAGE_ROOT, 'dist/cli/main.js');
const ARTIFACTS = path.join(PACKAGE_ROOT, '.test-artifacts');

interface Proc {
  name: string;
  child: ChildProcess;
}

function launch(name: string, args: string[]): Proc {
  const out = openSync(path.join(ARTIFACTS, `cloud-faults-${name}.log`), 'a');
  const child = spawn(process.execPath, [CLI, ...args], {
    stdio: ['ignore', out, out],
    env: { ...process.env, KEDGE_LOG_LEVEL: 'info' },
  });
  return { name, child };
}

async function kill9(p: Proc): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  const exited = new Promise((r) => p.child.once('exit', r));
  p.child.kill('SIGKILL');
  await exited;
}

function p99(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * 0.99) - 1)] ?? NaN;
}

describe('cloud plane faults: 3 NATS nodes, 2 controllers, 2 gateways, 50 devices', () => {
  let cluster: TestCluster;
  let nats: NatsCluster;
  let nc: NatsConnection;
  let balancer: TcpBalancer;
  let webhook: TestWebhook;
  const procs: Proc[] = [];
  const gateways: { proc: Proc; port: number; metrics: number }[] = [];
  const devices: HollowDevice[] = [];
  let identity: string;
  let tlsDir: string;

  const controller = async (name: string): Promise<Proc> => {
    const p = launch(name, [
      'controller',
      ...['--kubeconfig', identity, '--namespace', 'kedge-system'],
      ...['--nats-url', nats.url, '--stream-replicas', '3', '--gateway-hostname', 'localhost'],
      ...['--kubelet-port', String(await freePort())],
      ...['--kubelet-address', (await dockerBridgeAddress()) ?? '127.0.0.1'],
      ...['--client-ca-file', path.join(tlsDir, 'cluster-ca.pem')],
      ...['--metrics-port', String(await freePort())],
    ]);
    procs.push(p);
    return p;
  };

  const gateway = async (
    name: string,
    port?: number,
  ): Promise<{ proc: Proc; port: number; metrics: number }> => {
    const g = { port: port ?? (await freePort()), metrics: await freePort() } as {
      proc: Proc;
      port: number;
      metrics: number;
    };
    g.proc = launch(name, [
      'gateway',
      ...['--nats-url', nats.url, '--host', '127.0.0.1', '--port', String(g.port)],
      ...['--tls-cert', path.join(tlsDir, 'tls.crt'), '--tls-key', path.join(tlsDir, 'tls.key')],
      ...['--metrics-port', String(g.metrics)],
    ]);
    procs.push(g.proc);
    await eventually(`${name} ready`, async () => {
      const res = await fetch(`http://127.0.0.1:${g.metrics}/readyz`).catch(() => undefined);
      return res?.ok ? true : undefined;
    });
    return g;
  };

  const leaseHolder = async (): Promise<string> =>
    (
      await cluster.kubectl([
        'get',
        'lease',
        'kedge-controller',
        '-n',
        'kedge-system',
        '-o',
        'jsonpath={.spec.holderIdentity}',
      ])
    ).stdout.trim();

  beforeAll(async () => {
    cluster = await startTestCluster('cloud-faults', {
      nodeMonitorGracePeriodSecs: 20,
      defaultTolerationSecs: 30,
    });
    nats = await startTestNatsCluster('cloud-faults', 3);
    nc = await connect({ servers: nats.url.split(','), maxReconnectAttempts: -1 });
    balancer = await startTcpBalancer(() => gateways.map((g) => g.port));
    webhook = await startWebhook();
    webhook.down = true;
    await cluster.kubectlOk(['create', 'namespace', 'kedge-system']);
    identity = await chartIdentity(cluster.cp.binDir, (args, input) =>
      cluster.kubectlOk(args, input),
    );
    tlsDir = await mkdtemp(path.join(tmpdir(), 'kedge-faults-tls-'));
    await writeFile(path.join(tlsDir, 'cluster-ca.pem'), cluster.cp.ca.certPem);
  }, 180_000);

  afterAll(async () => {
    // Processes first: whatever else fails here, nothing of this test may outlive it.
    for (const p of procs) await kill9(p);
    await Promise.all(
      devices.map((d) => Promise.race([d.stop().catch(() => undefined), sleep(5_000)])),
    );
    await balancer?.close();
    webhook?.server.close();
    await nc?.close();
    await nats?.stop();
    await cluster?.cp.stop();
  }, 180_000);

  it(
    'loses no handed-over message through leader, gateway and NATS-node crashes during a rollout, then through a 10-minute webhook outage and restarts',
    async () => {
      const webhookDownAt = Date.now();
      await controller('controller-a');
      await eventually('a leader', async () => ((await leaseHolder()) ? true : undefined), 60_000);
      await controller('controller-b');
      const secret = async (name: string, key: string): Promise<string> =>
        Buffer.from(
          await cluster.kubectlOk([
            'get',
            'secret',
            name,
            '-n',
            'kedge-system',
            '-o',
            `jsonpath={.data.${key.replace('.', '\\.')}}`,
          ]),
          'base64',
        ).toString();
      const caPem = await eventually(
        'the controller CA',
        async () => (await secret('kedge-ca', 'ca.crt')) || undefined,
      );
      await writeFile(
        path.join(tlsDir, 'tls.crt'),
        await eventually(
          'gateway TLS',
          async () => (await secret('kedge-gateway-tls', 'tls.crt')) || undefined,
        ),
      );
      await writeFile(path.join(tlsDir, 'tls.key'), await secret('kedge-gateway-tls', 'tls.key'));
      gateways.push(await gateway('gateway-1'), await gateway('gateway-2'));
      await configureWebhook(cluster, NS, webhook);

      // Where each device's session is, from the gateways' presence announcements.
      const sessionOn = new Map<string, string>();
      const connectedAt = new Map<string, number[]>();
      nc.subscribe(Subjects.presenceAll, {
        callback: (_err, msg) => {
          const target = deviceOfSubject(msg.subject, 2);
          const e = msg.json<PresenceEvent>();
          if (!target || e.event !== 'connected') return;
          sessionOn.set(target.device, e.gateway);
          connectedAt.set(target.device, [...(connectedAt.get(target.device) ?? []), Date.now()]);
        },
      });
      // A durable consumer, as an application reads telemetry.
      const jsm = await jetstreamManager(nc);
      await eventually('the telemetry stream', async () =>
        (await jsm.streams.info(Streams.telemetry).catch(() => undefined)) ? true : undefined,
      );
      await jsm.consumers.add(Streams.telemetry, {
        durable_name: 'faults',
        filter_subject: Subjects.telemetryOf(NS),
        ack_policy: AckPolicy.Explicit,
      });
      const received = new Map<string, number>();
      const consumed = await (
        await jetstream(nc).consumers.get(Streams.telemetry, 'faults')
      ).consume();
      void (async () => {
        for await (const m of consumed) {
          const body = JSON.parse(
            Buffer.from(m.json<UpstreamMessage>().body, 'base64').toString(),
          ) as { d: string; n: number };
          const id = `${body.d}/${body.n}`;
          received.set(id, (received.get(id) ?? 0) + 1);
          m.ack();
        }
      })();

      const names = Array.from({ length: DEVICES }, (_, i) => `f${i}`);
      await cluster.kubectlOk(
        ['apply', '-f', '-'],
        JSON.stringify({
          apiVersion: 'v1',
          kind: 'List',
          items: names.map((name) => ({
            apiVersion: 'kedge.io/v1alpha1',
            kind: 'EdgeDevice',
            metadata: { name, namespace: NS, labels: { fleet: 'faults' } },
            spec: {},
          })),
        }),
      );
      const keys = await eventually(
        'every device key',
        async () => {
          const list = JSON.parse(
            await cluster.kubectlOk([
              'get',
              'secrets',
              '-n',
              NS,
              '-l',
              'kedge.io/device',
              '-o',
              'json',
            ]),
          ) as {
            items: { metadata: { labels: Record<string, string> }; data: { primaryKey: string } }[];
          };
          return list.items.length === DEVICES ? list.items : undefined;
        },
        90_000,
      );
      for (const s of keys)
        devices.push(
          await startHollowDevice({
            url: `mqtts://localhost:${balancer.port}`,
            caPem,
            namespace: NS,
            device: s.metadata.labels['kedge.io/device']!,
            key: Buffer.from(s.data.primaryKey, 'base64').toString(),
            messagesPerSec: MESSAGES_PER_SEC,
          }),
        );
      await eventually(
        'every device connected',
        async () => (sessionOn.size === DEVICES ? true : undefined),
        90_000,
      );

      const deployment = (image: string): string =>
        JSON.stringify({
          apiVersion: 'kedge.io/v1alpha1',
          kind: 'EdgeDeployment',
          metadata: { name: 'fleet', namespace: NS },
          spec: {
            selector: { matchLabels: { fleet: 'faults' } },
            modules: [{ name: 'app', image }],
          },
        });
      let rollout = '';
      const successful = async (image: string): Promise<boolean> => {
        const pods = JSON.parse(
          await cluster.kubectlOk([
            'get',
            'pods',
            '-n',
            NS,
            '-l',
            'kedge.io/deployment=fleet',
            '-o',
            'json',
          ]),
        ) as { items: { spec: { containers: { image: string }[] }; status: { phase?: string } }[] };
        const d = JSON.parse(
          await cluster.kubectlOk(['get', 'edgedeployment', 'fleet', '-n', NS, '-o', 'json']),
        ) as { status?: { reportedSuccessfulCount?: number } };
        const states = new Map<string, number>();
        for (const p of pods.items) {
          const k = `${p.spec.containers[0]!.image}/${p.status.phase ?? '?'}`;
          states.set(k, (states.get(k) ?? 0) + 1);
        }
        rollout = `${JSON.stringify([...states])}, successful ${d.status?.reportedSuccessfulCount}`;
        return (
          pods.items.length === DEVICES &&
          pods.items.every(
            (p) => p.spec.containers[0]!.image === image && p.status.phase === 'Running',
          ) &&
          d.status?.reportedSuccessfulCount === DEVICES
        );
      };
      await cluster.kubectlOk(['apply', '-f', '-'], deployment('app:v1'));
      await eventually(
        'v1 on every device',
        async () => ((await successful('app:v1')) ? true : undefined),
        180_000,
        1000,
      );

      // The rollout, and the faults during it.
      await cluster.kubectlOk(['apply', '-f', '-'], deployment('app:v2'));
      const leader = await leaseHolder();
      const leaderProc = procs.find(
        (p) => p.name.startsWith('controller') && leader.endsWith(`_${p.child.pid}`),
      )!;
      expect(leaderProc).toBeDefined();
      const killedLeaderAt = Date.now();
      await kill9(leaderProc);
      await eventually(
        'a new leader',
        async () => {
          const h = await leaseHolder();
          return h && h !== leader ? h : undefined;
        },
        60_000,
        200,
      );
      const takeoverMs = Date.now() - killedLeaderAt;

      const victim = gateways[0]!;
      const victimId = await gatewayId(victim.metrics);
      const victimDevices = [...sessionOn].filter(([, g]) => g === victimId).map(([d]) => d);
      expect(victimDevices.length).toBeGreaterThan(0);
      const killedGatewayAt = Date.now();
      await kill9(victim.proc);
      gateways.splice(0, 1);
      const reconnectMs = await eventually(
        "the killed gateway's devices to reconnect elsewhere",
        async () => {
          const times = victimDevices.map((d) =>
            (connectedAt.get(d) ?? []).find((t) => t > killedGatewayAt),
          );
          return times.every((t) => t !== undefined)
            ? times.map((t) => t - killedGatewayAt)
            : undefined;
        },
        120_000,
        200,
      );
      expect(victimDevices.every((d) => sessionOn.get(d) !== victimId)).toBe(true);

      await nats.servers[1]!.kill();
      await eventually(
        'v2 on every device',
        async () => ((await successful('app:v2')) ? true : undefined),
        240_000,
        1000,
      ).catch((err: unknown) => {
        throw new Error(`${String(err)}; pods ${rollout}`);
      });
      console.log(
        `faults: leader takeover ${takeoverMs} ms; ${victimDevices.length} devices of the killed gateway reconnected, p99 ${p99(reconnectMs)} ms (max ${Math.max(...reconnectMs)} ms)`,
      );

      // Every handed-over message reached the durable consumer.
      devices.forEach((d) => d.stopTelemetry());
      await eventually(
        'every device queue drained',
        async () => (devices.every((d) => d.queued() === 0) ? true : undefined),
        120_000,
      ).catch((err: unknown) => {
        const stuck = devices
          .filter((d) => d.queued() > 0)
          .map((d) => `${d.device}: ${d.queued()} (${d.state()})`);
        throw new Error(`${String(err)}; still queued: ${stuck.join(', ')}`);
      });
      const expected = devices.flatMap((d) => [...d.handedOver].map((n) => `${d.device}/${n}`));
      await eventually(
        'every handed-over message at the consumer',
        async () => (expected.every((id) => received.has(id)) ? true : undefined),
        60_000,
      );
      const duplicates = [...received.values()].reduce((sum, c) => sum + c - 1, 0);
      console.log(
        `faults: ${expected.length} messages handed over, all ${expected.length} received, ${duplicates} duplicates`,
      );
      await consumed.close();

      // The webhook has been down all along; controller and gateway restart while it still is.
      await sleep(Math.max(0, WEBHOOK_OUTAGE_MS - (Date.now() - webhookDownAt) - 30_000));
      for (const p of procs.filter(
        (x) =>
          x.child.exitCode === null &&
          x.child.signalCode === null &&
          /controller|gateway/.test(x.name),
      ))
        await kill9(p);
      gateways.splice(0);
      await controller('controller-c');
      gateways.push(await gateway('gateway-3'));
      await sleep(Math.max(0, WEBHOOK_OUTAGE_MS - (Date.now() - webhookDownAt)));
      webhook.down = false;
      const atWebhook = new Set<string>();
      await eventually(
        'every handed-over message at the webhook',
        async () => {
          for (const b of webhook.bodies.splice(0) as { messages: UpstreamMessage[] }[])
            for (const m of b.messages) {
              const body = JSON.parse(Buffer.from(m.body, 'base64').toString()) as {
                d: string;
                n: number;
              };
              atWebhook.add(`${body.d}/${body.n}`);
            }
          return expected.every((id) => atWebhook.has(id)) ? true : undefined;
        },
        180_000,
        1000,
      );
      expect(webhook.badSignatures).toBe(0);
      console.log(
        `restart: webhook down ${Math.round((Date.now() - webhookDownAt) / 60000)} min across a controller and gateway restart; all ${expected.length} messages delivered`,
      );
    },
    30 * 60_000,
  );
});

/** A gateway's instance id, from its `kedge_gateway_info` series. */
async function gatewayId(metricsPort: number): Promise<string> {
  const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  return /kedge_gateway_info\{id="([^"]+)"\}/.exec(text)?.[1] ?? '';
}
