/**
 * Devices that send telemetry to a gateway as the cloud link does: TLS MQTT, username
 * `<ns>/<device>`, a SAS token as password, QoS1 publishes to
 * `kedge/v1/devices/<ns>/<device>/telemetry` whose body is `{"messages":[UpstreamMessage…]}` with
 * the queue's `seq` and `enqueuedAt` (the gateway's de-duplication id). Each device keeps a
 * bounded window of publishes in flight; the gateway PUBACKs a publish once JetStream has
 * acknowledged every message in it. The client is the lean mqtt-packet one, so the devices'
 * CPU stays small beside the gateway's.
 *
 * Reads commands on stdin, one a line:
 * `run <messages per publish> <window> <warmup ms> <measure ms>` publishes until warm-up plus
 * measurement are over, lets the publishes in flight finish, and answers `RESULT <json>`.
 *
 * Environment: KEDGE_BENCH_SECRET, KEDGE_BENCH_PORT, KEDGE_BENCH_CA, KEDGE_BENCH_DEVICES.
 * Prints `DEVICES_READY <n>` once every device is connected.
 */
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  deviceResourceUri,
  deviceTopic,
  deviceUsername,
  Leaf,
  type UpstreamMessage,
} from '../../src/common/cloudlink/protocol.js';
import { createSasToken } from '../../src/common/iothub/index.js';
import { RawMqttClient } from '../lib/raw-mqtt.js';
import { BENCH_NAMESPACE, deviceKey, deviceName } from './fleet-keys.js';

/** SAS token lifetime, as the cloud link mints them. */
const TOKEN_TTL_SECS = 3600;
/** After the run, publishes still in flight get this long to be acknowledged. */
const DRAIN_LIMIT_MS = 60_000;
/** A sensor reading as a module would send it, about 200 bytes before base64. */
const READING = JSON.stringify({
  temperature: 21.5,
  humidity: 40.2,
  machine: { pressure: 1.02, state: 'running' },
  pad: 'x'.repeat(120),
});

interface Device {
  name: string;
  client: RawMqttClient;
  topic: string;
  nextSeq: number;
  /** MQTT message id → when the publish was sent (ms), and whether it counts. */
  inFlight: Map<number, { at: number; counted: boolean; messages: number }>;
}

interface RunStats {
  publishes: number;
  messagesSent: number;
  messagesAcked: number;
  /** Acked messages of publishes sent during the measurement. */
  messagesAckedMeasured: number;
  latenciesMs: number[];
}

const secret = process.env.KEDGE_BENCH_SECRET!;
const port = Number(process.env.KEDGE_BENCH_PORT);
const caPem = process.env.KEDGE_BENCH_CA!;
const count = Number(process.env.KEDGE_BENCH_DEVICES ?? '100');
const body = Buffer.from(READING).toString('base64');

async function connectDevice(i: number): Promise<Device> {
  const name = deviceName(i);
  const user = deviceUsername(BENCH_NAMESPACE, name);
  const client = await RawMqttClient.connect(port, {
    clientId: user,
    username: user,
    password: createSasToken({
      resource: deviceResourceUri(BENCH_NAMESPACE, name),
      keyBase64: deviceKey(secret, BENCH_NAMESPACE, name),
      expirySecs: Math.floor(Date.now() / 1000) + TOKEN_TTL_SECS,
    }),
    clean: true,
    tlsCaPem: caPem,
  });
  return {
    name,
    client,
    topic: deviceTopic(BENCH_NAMESPACE, name, Leaf.telemetry),
    nextSeq: 1,
    inFlight: new Map(),
  };
}

/** One publish body of `n` messages, as the cloud link's upstream encodes a queue batch. */
function batchBody(device: Device, n: number): string {
  const enqueuedAt = new Date().toISOString();
  const messages: string[] = [];
  for (let k = 0; k < n; k++) {
    const m: UpstreamMessage = {
      seq: device.nextSeq++,
      body,
      properties: { kind: 'reading' },
      systemProperties: {
        '$.cdid': device.name,
        '$.cmid': 'sensor',
        '$.ct': 'application/json',
        '$.ce': 'utf-8',
      },
      enqueuedAt,
      priority: 0,
    };
    messages.push(JSON.stringify(m));
  }
  return `{"messages":[${messages.join(',')}]}`;
}

/** One run: messages per publish, publishes in flight per device, and its timing. */
interface RunPlan {
  perPublish: number;
  window: number;
  warmupMs: number;
  measureMs: number;
}

async function run(devices: Device[], plan: RunPlan): Promise<RunStats> {
  const { perPublish, window, warmupMs, measureMs } = plan;
  const stats: RunStats = {
    publishes: 0,
    messagesSent: 0,
    messagesAcked: 0,
    messagesAckedMeasured: 0,
    latenciesMs: [],
  };
  const start = performance.now();
  const measureFrom = start + warmupMs;
  const measureTo = measureFrom + measureMs;
  let running = true;
  const send = (d: Device): void => {
    const at = performance.now();
    const id = d.client.publish(d.topic, batchBody(d, perPublish));
    d.inFlight.set(id, { at, counted: at >= measureFrom && at < measureTo, messages: perPublish });
    stats.publishes++;
    stats.messagesSent += perPublish;
  };
  for (const d of devices) {
    d.client.onPuback = (id) => {
      const sent = d.inFlight.get(id);
      if (!sent) return;
      d.inFlight.delete(id);
      stats.messagesAcked += sent.messages;
      if (sent.counted) {
        stats.latenciesMs.push(performance.now() - sent.at);
        stats.messagesAckedMeasured += sent.messages;
      }
      if (running) send(d);
    };
    for (let w = 0; w < window; w++) send(d);
  }
  await sleep(warmupMs + measureMs);
  running = false;
  const deadline = Date.now() + DRAIN_LIMIT_MS;
  while (devices.some((d) => d.inFlight.size > 0) && Date.now() < deadline) await sleep(50);
  return stats;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

const devices: Device[] = [];
for (let i = 0; i < count; i++) devices.push(await connectDevice(i));
process.stdout.write(`DEVICES_READY ${devices.length}\n`);

createInterface({ input: process.stdin }).on('line', (line) => {
  const [cmd, ...args] = line.trim().split(' ');
  if (cmd !== 'run') return;
  const [perPublish, window, warmupMs, measureMs] = args.map(Number) as [
    number,
    number,
    number,
    number,
  ];
  void run(devices, { perPublish, window, warmupMs, measureMs }).then((stats) => {
    const sorted = stats.latenciesMs.sort((a, b) => a - b);
    const result = {
      publishes: stats.publishes,
      messagesSent: stats.messagesSent,
      messagesAcked: stats.messagesAcked,
      messagesAckedMeasured: stats.messagesAckedMeasured,
      unacked: devices.reduce((n, d) => n + d.inFlight.size, 0),
      ackP50Ms: percentile(sorted, 50),
      ackP99Ms: percentile(sorted, 99),
      ackMaxMs: sorted[sorted.length - 1] ?? NaN,
    };
    process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
  });
});
process.stdin.once('end', () => process.exit(0));
