// Routing throughput and latency: module A → route with a $body condition → module B, QoS1,
// 256-byte JSON, against Mosquitto 2 plain pub/sub with the same load generator (a lean
// mqtt-packet client on plain TCP, TCP_NODELAY on both ends) in the same run.
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { freePort, startMosquitto } from '../src/localcluster/mosquitto.js';
import {
  benchDir,
  DEVICE,
  fmt,
  percentile,
  spawnHub,
  stopHub,
  token,
  username,
  writeModuleKeys,
} from './lib/hub-process.js';
import { RawMqttClient, type RawConnectOptions } from './lib/raw-mqtt.js';
import { startReference } from './lib/reference-process.js';

const WARMUP_MS = 1_000;
const MEASURE_MS = 5_000;
/** Publishes in flight (awaiting PUBACK) during the peak phase. */
const WINDOW = Number(process.env.KEDGE_BENCH_WINDOW ?? 100);
const PAYLOAD_BYTES = 256;

interface Target {
  name: string;
  pub: RawMqttClient;
  sub: RawMqttClient;
  topic: string;
}

interface Result {
  rate: number;
  p50: number;
  p99: number;
}

function payload(t: number): string {
  const base = JSON.stringify({ temperature: 30, t, pad: '' });
  return JSON.stringify({ temperature: 30, t, pad: 'x'.repeat(PAYLOAD_BYTES - base.length) });
}

/** Runs one phase: `pace` undefined = as fast as the window allows, else messages per second. */
async function phase(t: Target, pace?: number): Promise<Result> {
  const latencies: number[] = [];
  let counting = false;
  let received = 0;
  t.sub.onPublish = (packet) => {
    if (!counting) return;
    received++;
    latencies.push(performance.now() - (JSON.parse(packet.payload.toString()) as { t: number }).t);
  };
  let running = true;
  let stopped: () => void = () => undefined;
  const done = new Promise<void>((r) => (stopped = r));
  if (pace === undefined) {
    // A fixed window: each PUBACK releases the next publish.
    t.pub.onPuback = () => {
      if (running) t.pub.publish(t.topic, payload(performance.now()));
    };
    for (let i = 0; i < WINDOW; i++) t.pub.publish(t.topic, payload(performance.now()));
    stopped();
  } else {
    // Paced by elapsed time, not by timer ticks (a 1 ms interval fires late under load).
    t.pub.onPuback = () => undefined;
    const perMs = pace / 1000;
    const start = performance.now();
    let sent = 0;
    const timer = setInterval(() => {
      if (!running) {
        clearInterval(timer);
        stopped();
        return;
      }
      const due = Math.floor((performance.now() - start) * perMs);
      for (; sent < due; sent++) t.pub.publish(t.topic, payload(performance.now()));
    }, 1);
  }
  await new Promise((r) => setTimeout(r, WARMUP_MS));
  counting = true;
  await new Promise((r) => setTimeout(r, MEASURE_MS));
  counting = false;
  running = false;
  await done;
  // Let the last in-flight messages drain before the next phase.
  await new Promise((r) => setTimeout(r, 500));
  latencies.sort((a, b) => a - b);
  return {
    rate: received / (MEASURE_MS / 1000),
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
  };
}

async function kedgeTarget(dir: string): Promise<{ target: Target; stop: () => Promise<void> }> {
  const dataDir = path.join(dir, 'hub');
  const keys = writeModuleKeys(dataDir, ['a', 'b']);
  const hub = await spawnHub({
    deviceId: DEVICE,
    dataDir,
    tlsPort: 0,
    plainPort: 0,
    routes: {
      aToB: 'FROM /messages/modules/a/outputs/out WHERE $body.temperature > 25 INTO BrokeredEndpoint("/modules/b/inputs/in")',
    },
  });
  const port = hub.ports.plain!;
  const clientOpts = (m: string): RawConnectOptions => ({
    clientId: `${DEVICE}/${m}`,
    username: username(`${DEVICE}/${m}`),
    password: token(keys.get(m)!, DEVICE, m),
  });
  const sub = await RawMqttClient.connect(port, clientOpts('b'));
  await sub.subscribe(`devices/${DEVICE}/modules/b/inputs/#`);
  const pub = await RawMqttClient.connect(port, clientOpts('a'));
  const topic = `devices/${DEVICE}/modules/a/messages/events/%24.on=out&%24.ct=application%2Fjson&%24.ce=utf-8/`;
  return {
    target: { name: 'kedge hub', pub, sub, topic },
    stop: async () => {
      await pub.close();
      await sub.close();
      await stopHub(hub);
    },
  };
}

/** Plain pub/sub on `bench/a` through a reference broker listening on `port`. */
async function plainTarget(
  name: string,
  broker: { port: number; stop(): Promise<void> },
): Promise<{ target: Target; stop: () => Promise<void> }> {
  const sub = await RawMqttClient.connect(broker.port, { clientId: 'b' });
  await sub.subscribe('bench/a');
  const pub = await RawMqttClient.connect(broker.port, { clientId: 'a' });
  return {
    target: { name, pub, sub, topic: 'bench/a' },
    stop: async () => {
      await pub.close();
      await sub.close();
      await broker.stop();
    },
  };
}

function row(name: string, r: Result): string {
  return `${name.padEnd(28)} ${fmt(r.rate).padStart(10)} msg/s   p50 ${fmt(r.p50, 3).padStart(8)} ms   p99 ${fmt(r.p99, 3).padStart(8)} ms`;
}

const dir = benchDir('routing');
const kedge = await kedgeTarget(dir);
const kPeak = await phase(kedge.target);
const kHalf = await phase(kedge.target, kPeak.rate / 2);
await kedge.stop();
const mosq = await plainTarget(
  'mosquitto 2',
  await startMosquitto(path.join(dir, 'mosquitto'), await freePort(), false),
);
const mPeak = await phase(mosq.target);
const mHalf = await phase(mosq.target, kPeak.rate / 2);
await mosq.stop();
// Bare aedes: the substrate's own ceiling, without the hub's work.
const bare = await plainTarget(
  'bare aedes',
  await startReference('bare-aedes.js', 'BARE_AEDES_READY'),
);
const bPeak = await phase(bare.target);
await bare.stop();

console.log(
  `routing: A → $body route → B, QoS1, ${PAYLOAD_BYTES}-byte JSON, plain TCP, window ${WINDOW}, ${MEASURE_MS / 1000} s`,
);
console.log(row('kedge peak', kPeak));
console.log(row('mosquitto peak', mPeak));
console.log(row('bare aedes peak (reference)', bPeak));
console.log(row(`kedge @ ${fmt(kPeak.rate / 2)} msg/s`, kHalf));
console.log(row(`mosquitto @ ${fmt(kPeak.rate / 2)} msg/s`, mHalf));
console.log(`throughput ratio kedge/mosquitto: ${fmt(kPeak.rate / mPeak.rate, 2)}`);
console.log(
  `bare aedes/mosquitto: ${fmt(bPeak.rate / mPeak.rate, 2)}; kedge/bare aedes: ${fmt(kPeak.rate / bPeak.rate, 2)} (target ≥ 0.85)`,
);
console.log(`kedge p99 at half peak: ${fmt(kHalf.p99, 3)} ms (target ≤ 2 ms)`);
process.exit(0);
