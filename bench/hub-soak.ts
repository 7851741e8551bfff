// Soak: module A publishes QoS1 at a steady rate; every message goes through a $body route to
// module B and through the durable `$upstream` queue to a Mosquitto standing in for the cloud.
// Samples the hub's RSS every 10 s and prints the slope after warm-up, with its projection over
// the measured window (target: within 5 MB). `hub-soak [minutes=30] [msgPerSec=1000]`.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { freePort, startMosquitto } from '../src/localcluster/mosquitto.js';
import {
  benchDir,
  DEVICE,
  fmt,
  metric,
  rssKb,
  spawnHub,
  stopHub,
  token,
  username,
  writeModuleKeys,
} from './lib/hub-process.js';
import { RawMqttClient, type RawConnectOptions } from './lib/raw-mqtt.js';
import { sleep } from './bench-util.js';

const MINUTES = Number(process.argv[2] ?? 30);
const RATE = Number(process.argv[3] ?? 1000);
const SAMPLE_MS = 10_000;
/** The first sixth of the run (at least one minute) warms up and is not in the slope. */
const WARMUP_MS = Math.max(60_000, (MINUTES * 60_000) / 6);
const TARGET_MB = 5;
const PAYLOAD_BYTES = 256;

function payload(n: number): string {
  const base = JSON.stringify({ temperature: 30, n, pad: '' });
  return JSON.stringify({ temperature: 30, n, pad: 'x'.repeat(PAYLOAD_BYTES - base.length) });
}

/** Least-squares slope of y over x. */
function slope(points: Array<[number, number]>): number {
  const n = points.length;
  const mx = points.reduce((s, [x]) => s + x, 0) / n;
  const my = points.reduce((s, [, y]) => s + y, 0) / n;
  let num = 0;
  let den = 0;
  for (const [x, y] of points) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

const dir = benchDir('soak');
const mosquitto = await startMosquitto(path.join(dir, 'mosquitto'), await freePort(), false);
const cloud = await RawMqttClient.connect(mosquitto.port, { clientId: 'cloud', clean: true });
let upstreamReceived = 0;
cloud.onPublish = () => upstreamReceived++;
await cloud.subscribe('kedge/#');

const dataDir = path.join(dir, 'hub');
const keys = writeModuleKeys(dataDir, ['a', 'b']);
const hub = await spawnHub({
  deviceId: DEVICE,
  dataDir,
  tlsPort: 0,
  plainPort: 0,
  upstream: { type: 'mqtt', url: `mqtt://127.0.0.1:${mosquitto.port}`, topicPrefix: 'kedge' },
  routes: {
    aToB: 'FROM /messages/modules/a/outputs/out WHERE $body.temperature > 25 INTO BrokeredEndpoint("/modules/b/inputs/in")',
    aUp: 'FROM /messages/modules/a/outputs/* INTO $upstream',
  },
});
const pid = hub.child.pid!;
const clientOpts = (m: string): RawConnectOptions => ({
  clientId: `${DEVICE}/${m}`,
  username: username(`${DEVICE}/${m}`),
  password: token(keys.get(m)!, DEVICE, m),
});
const sub = await RawMqttClient.connect(hub.ports.plain!, clientOpts('b'));
let routed = 0;
sub.onPublish = () => routed++;
await sub.subscribe(`devices/${DEVICE}/modules/b/inputs/#`);
const pub = await RawMqttClient.connect(hub.ports.plain!, clientOpts('a'));
const topic = `devices/${DEVICE}/modules/a/messages/events/%24.on=out&%24.ct=application%2Fjson&%24.ce=utf-8/`;

// Paced by elapsed time, not by timer ticks.
const start = performance.now();
let sent = 0;
const pacer = setInterval(() => {
  const due = Math.floor(((performance.now() - start) * RATE) / 1000);
  for (; sent < due; sent++) pub.publish(topic, payload(sent));
}, 5);

console.log(
  `soak: ${fmt(RATE)} msg/s from module a, each routed to module b and to $upstream (Mosquitto), ${MINUTES} min, RSS every ${SAMPLE_MS / 1000} s`,
);
const samples: Array<[number, number]> = [];
const endAt = start + MINUTES * 60_000;
while (performance.now() < endAt) {
  await sleep(SAMPLE_MS);
  const t = performance.now() - start;
  const mb = rssKb(pid, (p) => readFileSync(p, 'utf8')) / 1024;
  samples.push([t, mb]);
  if (samples.length % 30 === 0)
    console.log(
      `  ${fmt(t / 60_000, 1).padStart(5)} min  RSS ${fmt(mb, 1)} MB  sent ${fmt(sent)}  routed ${fmt(routed)}  upstream ${fmt(upstreamReceived)}`,
    );
}
clearInterval(pacer);
await sleep(2_000);
const queued = await metric(hub.ports.metrics, 'kedge_hub_queue_depth');

const measured = samples.filter(([t]) => t >= WARMUP_MS);
const perMs = slope(measured);
const windowMs = measured.at(-1)![0] - measured[0]![0];
const growth = perMs * windowMs;
const rss = measured.map(([, mb]) => mb);
console.log(
  `sent ${fmt(sent)}; routed to b ${fmt(routed)}; received upstream ${fmt(upstreamReceived)}; still queued ${fmt(queued)}`,
);
console.log(
  `RSS after warm-up (${fmt(WARMUP_MS / 60_000, 1)} min): min ${fmt(Math.min(...rss), 1)} MB, max ${fmt(Math.max(...rss), 1)} MB, first ${fmt(rss[0]!, 1)} MB, last ${fmt(rss.at(-1)!, 1)} MB`,
);
console.log(
  `RSS slope ${fmt(perMs * 3_600_000, 2)} MB/h → ${fmt(growth, 2)} MB over the ${fmt(windowMs / 60_000, 1)} min measured (target within ${TARGET_MB} MB): ${Math.abs(growth) <= TARGET_MB ? 'met' : 'missed'}`,
);
await pub.close();
await sub.close();
await cloud.close();
await stopHub(hub);
await mosquitto.stop();
process.exit(0);
