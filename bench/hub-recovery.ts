// Recovery: 1M messages queued for $upstream (sink down), hub kill -9'd, restarted. Prints the time
// until the restarted hub accepts connections and the drain rate once the sink (Mosquitto) returns.
import mqtt from 'mqtt';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import path from 'node:path';
import { freePort, startMosquitto } from '../src/localcluster/mosquitto.js';
import {
  benchDir,
  DEVICE,
  fmt,
  metric,
  spawnHub,
  stopHub,
  token,
  username,
} from './lib/hub-process.js';

const QUEUED = Number(process.env.RECOVERY_MESSAGES ?? 1_000_000);
const WINDOW = 500;

const dir = benchDir('recovery');
const key = randomBytes(32).toString('base64');
const brokerPort = await freePort();
const options = {
  deviceId: DEVICE,
  dataDir: path.join(dir, 'hub'),
  tlsPort: 0,
  plainPort: await freePort(),
  leafDevices: [{ deviceId: 'leaf1', primaryKey: key }],
  routes: { up: 'FROM /messages/* INTO $upstream' },
  upstream: { type: 'mqtt' as const, url: `mqtt://127.0.0.1:${brokerPort}` },
};
let hub = await spawnHub(options);
const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${hub.ports.plain}`, {
  clientId: 'leaf1',
  username: username('leaf1'),
  password: token(key, 'leaf1'),
  clean: true,
  reconnectPeriod: 0,
});
const body = JSON.stringify({ temperature: 30, pad: 'x'.repeat(200) });
let next = 0;
const fillStart = Date.now();
await Promise.all(
  Array.from({ length: WINDOW }, async () => {
    while (next++ < QUEUED)
      await client.publishAsync('devices/leaf1/messages/events/', body, { qos: 1 });
  }),
);
const fillSecs = (Date.now() - fillStart) / 1000;
client.end(true);
console.log(
  `queued ${fmt(QUEUED)} acked messages in ${fmt(fillSecs, 1)} s (${fmt(QUEUED / fillSecs)} msg/s)`,
);

hub.child.kill('SIGKILL');
await new Promise((r) => hub.child.once('exit', r));
const restart = Date.now();
hub = await spawnHub(options);
// "Accepting connections": a TCP connect to the MQTT port succeeds.
await new Promise<void>((resolve, reject) => {
  const s = net.connect(options.plainPort, '127.0.0.1', () => {
    s.destroy();
    resolve();
  });
  s.once('error', reject);
});
const restartMs = Date.now() - restart;
const depth = await metric(hub.ports.metrics, 'kedge_hub_queue_depth');
console.log(
  `restart after kill -9 until accepting connections: ${fmt(restartMs)} ms (target ≤ 3,000); queue depth ${fmt(depth)}`,
);

const sink = await startMosquitto(path.join(dir, 'mosquitto'), brokerPort, false);
const drainStart = Date.now();
let last = depth;
while (last > 0) {
  await new Promise((r) => setTimeout(r, 250));
  last = await metric(hub.ports.metrics, 'kedge_hub_queue_depth');
}
const drainSecs = (Date.now() - drainStart) / 1000;
console.log(
  `drained ${fmt(depth)} messages to Mosquitto in ${fmt(drainSecs, 1)} s: ${fmt(depth / drainSecs)} msg/s (target ≥ 20,000)`,
);
await stopHub(hub);
await sink.stop();
process.exit(0);
