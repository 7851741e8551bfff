// Store-and-forward across a crash: the upstream sink (real Mosquitto) is down, 100k QoS1 messages
// are acknowledged, the hub process is kill -9'd and restarted, and once the sink returns every
// acknowledged message arrives in order within its priority; expired ones are counted, not sent.
import type { ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { freePort, startMosquitto } from '../../src/localcluster/mosquitto.js';
import {
  eventually,
  hubMetric as metric,
  IOTHUB,
  LEAF_KEY,
  leafToken,
  sleep,
  spawnHub,
  tempDir,
} from './helpers.js';

const TOTAL = 100_000;
const WINDOW = 1_000;
const EPHEMERAL_TTL_SECS = 2;

function kindOf(seq: number): 'keep' | 'eph' | 'bulk' {
  if (seq % 10 === 0) return 'keep';
  return seq % 10 === 1 ? 'eph' : 'bulk';
}

async function publishAll(port: number, ca: string): Promise<void> {
  const client = mqtt.connect(`mqtts://localhost:${port}`, {
    clientId: 'leaf1',
    username: `${IOTHUB}/leaf1/?api-version=2021-04-12`,
    password: leafToken('leaf1', LEAF_KEY),
    ca,
    clean: false,
    reconnectPeriod: 0,
  });
  await new Promise((r) => client.once('connect', r));
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < TOTAL) {
      const seq = next++;
      const kind = kindOf(seq);
      await client.publishAsync(
        `devices/leaf1/messages/events/kind=${kind}`,
        JSON.stringify({ seq, kind, pad: 'x'.repeat(64) }),
        { qos: 1 },
      );
    }
  };
  await Promise.all(Array.from({ length: WINDOW }, worker));
  await client.endAsync();
}

describe('store-and-forward across kill -9', () => {
  const dir = tempDir('kedge-sf-');
  const children: ChildProcess[] = [];
  afterAll(() => {
    for (const c of children) c.kill('SIGKILL');
  });

  it('delivers every acknowledged message in order within its priority after a crash', async () => {
    const brokerPort = await freePort();
    const mosquittoDir = path.join(dir, 'mosquitto');
    // The consumer's persistent session exists before the outage, as a real consumer's would.
    let mosquitto = await startMosquitto(mosquittoDir, brokerPort);
    let consumer: MqttClient = await mqtt.connectAsync(`mqtt://127.0.0.1:${brokerPort}`, {
      clientId: 'consumer',
      clean: false,
    });
    await consumer.subscribeAsync('kedge/edge1/#', { qos: 1 });
    await consumer.endAsync();
    await mosquitto.stop(); // the sink is down from here on

    const config = path.join(dir, 'hub.json');
    writeFileSync(
      config,
      JSON.stringify({
        deviceId: 'edge1',
        dataDir: path.join(dir, 'hub'),
        host: '127.0.0.1',
        tlsPort: 0,
        workloadPort: null,
        methodsPort: null,
        workloadSocket: null,
        iotHubHostName: IOTHUB,
        leafDevices: [{ deviceId: 'leaf1', primaryKey: LEAF_KEY }],
        upstream: { type: 'mqtt', url: `mqtt://127.0.0.1:${brokerPort}` },
        routes: {
          keep: { route: 'FROM /messages WHERE kind = "keep" INTO $upstream', priority: 0 },
          bulk: { route: 'FROM /messages WHERE kind = "bulk" INTO $upstream', priority: 1 },
          eph: {
            route: 'FROM /messages WHERE kind = "eph" INTO $upstream',
            priority: 2,
            timeToLiveSecs: EPHEMERAL_TTL_SECS,
          },
        },
      }),
    );
    let hub = await spawnHub(config);
    children.push(hub.child);
    const ca = readFileSync(path.join(dir, 'hub/pki/device-ca.crt'), 'utf8');
    await publishAll(hub.ports.tls, ca); // resolves only when all 100k PUBACKs are in
    const ackedAt = Date.now();

    hub.child.kill('SIGKILL');
    await new Promise((r) => hub.child.once('exit', r));
    hub = await spawnHub(config);
    children.push(hub.child);
    expect(hub.startMs).toBeLessThan(10_000);
    await sleep(Math.max(0, ackedAt + (EPHEMERAL_TTL_SECS + 1) * 1000 - Date.now()));

    // The sink returns.
    mosquitto = await startMosquitto(mosquittoDir, brokerPort);
    const firstSeen = new Map<string, number[]>([
      ['keep', []],
      ['bulk', []],
      ['eph', []],
    ]);
    const seen = new Set<number>();
    consumer = await mqtt.connectAsync(`mqtt://127.0.0.1:${brokerPort}`, {
      clientId: 'consumer',
      clean: false,
    });
    consumer.on('message', (_topic, payload) => {
      const { seq, kind } = JSON.parse(payload.toString()) as { seq: number; kind: string };
      if (seen.has(seq)) return; // at-least-once: duplicates are allowed
      seen.add(seq);
      firstSeen.get(kind)!.push(seq);
    });
    const expected = Array.from({ length: TOTAL }, (_, s) => s).filter((s) => kindOf(s) !== 'eph');
    await eventually(() => seen.size >= expected.length, 120_000);
    await eventually(
      async () => (await metric(hub.ports.metrics, 'kedge_hub_queue_depth')) === 0,
      30_000,
    );

    for (const kind of ['keep', 'bulk'] as const) {
      const want = expected.filter((s) => kindOf(s) === kind);
      expect(firstSeen.get(kind)).toEqual(want); // all of them, in order
    }
    expect(firstSeen.get('eph')).toEqual([]);
    expect(
      await metric(hub.ports.metrics, 'kedge_hub_messages_dropped_total{reason="ttl_expiry"}'),
    ).toBe(TOTAL / 10);
    await consumer.endAsync();
    hub.child.kill('SIGTERM');
    await mosquitto.stop();
  }, 300_000);
});
