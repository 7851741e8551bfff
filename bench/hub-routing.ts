// Routing throughput and latency: module A → route with a $body condition → module B, QoS1,
// 256-byte JSON, against Mosquitto 2 plain pub/sub with the same load generator (MQTT.js, plain
// TCP, TCP_NODELAY on both ends) in the same run.
import mqtt, { type MqttClient } from 'mqtt';
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

const WARMUP_MS = 1_000;
const MEASURE_MS = 5_000;
/** Publishes in flight (awaiting PUBACK) during the peak phase. */
const WINDOW = 100;
const PAYLOAD_BYTES = 256;

interface Target {
  name: string;
  pub: MqttClient;
  sub: MqttClient;
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

async function connect(url: string, opts: mqtt.IClientOptions): Promise<MqttClient> {
  const c = await mqtt.connectAsync(url, { protocolVersion: 4, reconnectPeriod: 0, ...opts });
  (c.stream as unknown as { setNoDelay(on: boolean): void }).setNoDelay(true);
  return c;
}

/** Runs one phase: `pace` undefined = as fast as the window allows, else messages per second. */
async function phase(t: Target, pace?: number): Promise<Result> {
  const latencies: number[] = [];
  let counting = false;
  let received = 0;
  t.sub.removeAllListeners('message');
  t.sub.on('message', (_topic, buf) => {
    if (!counting) return;
    received++;
    latencies.push(performance.now() - (JSON.parse(buf.toString()) as { t: number }).t);
  });
  let running = true;
  const senders: Promise<void>[] = [];
  if (pace === undefined) {
    const worker = async (): Promise<void> => {
      while (running) await t.pub.publishAsync(t.topic, payload(performance.now()), { qos: 1 });
    };
    for (let i = 0; i < WINDOW; i++) senders.push(worker());
  } else {
    // Paced by elapsed time, not by timer ticks (a 1 ms interval fires late under load).
    const perMs = pace / 1000;
    const start = performance.now();
    let sent = 0;
    const timer = setInterval(() => {
      const due = Math.floor((performance.now() - start) * perMs);
      for (; sent < due; sent++) t.pub.publish(t.topic, payload(performance.now()), { qos: 1 });
    }, 1);
    senders.push(
      new Promise((r) => {
        const stop = setInterval(() => {
          if (!running) {
            clearInterval(timer);
            clearInterval(stop);
            r();
          }
        }, 10);
      }),
    );
  }
  await new Promise((r) => setTimeout(r, WARMUP_MS));
  counting = true;
  await new Promise((r) => setTimeout(r, MEASURE_MS));
  counting = false;
  running = false;
  await Promise.all(senders);
  await new Promise((r) => setTimeout(r, 200));
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
  const url = `mqtt://127.0.0.1:${hub.ports.plain}`;
  const clientOpts = (m: string): mqtt.IClientOptions => ({
    clientId: `${DEVICE}/${m}`,
    username: username(`${DEVICE}/${m}`),
    password: token(keys.get(m)!, DEVICE, m),
    clean: false,
  });
  const sub = await connect(url, clientOpts('b'));
  await sub.subscribeAsync(`devices/${DEVICE}/modules/b/inputs/#`, { qos: 1 });
  const pub = await connect(url, clientOpts('a'));
  const topic = `devices/${DEVICE}/modules/a/messages/events/%24.on=out&%24.ct=application%2Fjson&%24.ce=utf-8/`;
  return {
    target: { name: 'kedge hub', pub, sub, topic },
    stop: async () => {
      await pub.endAsync(true);
      await sub.endAsync(true);
      await stopHub(hub);
    },
  };
}

async function mosquittoTarget(
  dir: string,
): Promise<{ target: Target; stop: () => Promise<void> }> {
  const broker = await startMosquitto(path.join(dir, 'mosquitto'), await freePort(), false);
  const url = `mqtt://127.0.0.1:${broker.port}`;
  const sub = await connect(url, { clientId: 'b', clean: false });
  await sub.subscribeAsync('bench/a', { qos: 1 });
  const pub = await connect(url, { clientId: 'a', clean: false });
  return {
    target: { name: 'mosquitto 2', pub, sub, topic: 'bench/a' },
    stop: async () => {
      await pub.endAsync(true);
      await sub.endAsync(true);
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
const mosq = await mosquittoTarget(dir);
const mPeak = await phase(mosq.target);
const mHalf = await phase(mosq.target, kPeak.rate / 2);
await mosq.stop();

console.log(
  `routing: A → $body route → B, QoS1, ${PAYLOAD_BYTES}-byte JSON, plain TCP, window ${WINDOW}, ${MEASURE_MS / 1000} s`,
);
console.log(row('kedge peak', kPeak));
console.log(row('mosquitto peak', mPeak));
console.log(row(`kedge @ ${fmt(kPeak.rate / 2)} msg/s`, kHalf));
console.log(row(`mosquitto @ ${fmt(kPeak.rate / 2)} msg/s`, mHalf));
console.log(`throughput ratio kedge/mosquitto: ${fmt(kPeak.rate / mPeak.rate, 2)} (target ≥ 0.70)`);
console.log(`kedge p99 at half peak: ${fmt(kHalf.p99, 3)} ms (target ≤ 2 ms)`);
process.exit(0);
