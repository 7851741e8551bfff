// Connections: 1,000 idle leaf devices connected over TLS (as the SDK connects), each subscribed to
// its C2D topic. Prints the hub process RSS per connection, and in the same run Mosquitto with TLS
// (the reference) and a bare Node.js TLS server (what TLS alone costs a Node process).
import mqtt, { type MqttClient } from 'mqtt';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { freePort, startMosquitto } from '../src/localcluster/mosquitto.js';
import {
  benchDir,
  DEVICE,
  fmt,
  rssKb,
  spawnHub,
  stopHub,
  token,
  username,
} from './lib/hub-process.js';
import { startReference } from './lib/reference-process.js';

const CONNECTIONS = 1_000;
const SETTLE_MS = 3_000;
/**
 * Idle time before the second reading. Connecting 1,000 TLS clients churns the young generation,
 * so V8 grows its semi-spaces; the second reading shows whether idling gives that slack back
 * (in the 2026-11 run it did not: both readings were equal).
 */
const IDLE_MS = 15_000;

const dir = benchDir('connections');
const leaves = Array.from({ length: CONNECTIONS }, (_, i) => ({
  deviceId: `leaf${i}`,
  primaryKey: randomBytes(32).toString('base64'),
}));
const hub = await spawnHub(
  { deviceId: DEVICE, dataDir: path.join(dir, 'hub'), tlsPort: 0, leafDevices: leaves },
  ['--expose-gc'],
);
const pki = path.join(dir, 'hub/pki');
const ca = readFileSync(path.join(pki, 'device-ca.crt'), 'utf8');
const read = (p: string): string => readFileSync(p, 'utf8');
const settle = (): Promise<unknown> => new Promise((r) => setTimeout(r, SETTLE_MS));
const perConnection = (from: number, to: number): number => (to - from) / CONNECTIONS;

/** Connects every leaf in waves of 50 with `dial`, returning the sockets to close later. */
async function connectAll<T>(dial: (i: number) => Promise<T>): Promise<T[]> {
  const open: T[] = [];
  for (let i = 0; i < CONNECTIONS; i += 50) {
    const wave = Array.from({ length: Math.min(50, CONNECTIONS - i) }, (_, j) => dial(i + j));
    open.push(...(await Promise.all(wave)));
  }
  return open;
}

async function mqttLeaf(url: string, i: number, auth: boolean): Promise<MqttClient> {
  const leaf = leaves[i]!;
  const c = await mqtt.connectAsync(url, {
    clientId: leaf.deviceId,
    ...(auth
      ? { username: username(leaf.deviceId), password: token(leaf.primaryKey, leaf.deviceId) }
      : {}),
    ca,
    servername: 'localhost',
    clean: false,
    keepalive: 180,
    reconnectPeriod: 0,
  });
  await c.subscribeAsync(`devices/${leaf.deviceId}/messages/devicebound/#`, { qos: 1 });
  return c;
}

// 1. The kedge hub.
await settle();
const before = rssKb(hub.child.pid!, read);
const clients = await connectAll((i) => mqttLeaf(`mqtts://localhost:${hub.ports.tls}`, i, true));
await settle();
const early = rssKb(hub.child.pid!, read);
await new Promise((r) => setTimeout(r, IDLE_MS - SETTLE_MS));
const idle = rssKb(hub.child.pid!, read);
await Promise.all(clients.map((c) => c.endAsync(true)));
await stopHub(hub);

// 2. Mosquitto with a TLS listener and the hub's certificate, the same leaves and subscriptions.
const mosquitto = await startMosquitto(path.join(dir, 'mosquitto'), await freePort(), false, {
  certFile: path.join(pki, 'hub-server.crt'),
  keyFile: path.join(pki, 'hub-server.key'),
});
await settle();
const mBefore = rssKb(mosquitto.pid, read);
const mClients = await connectAll((i) => mqttLeaf(`mqtts://localhost:${mosquitto.port}`, i, false));
await settle();
const mAfter = rssKb(mosquitto.pid, read);
await Promise.all(mClients.map((c) => c.endAsync(true)));
await mosquitto.stop();

// 3. A bare Node.js TLS server: the same handshakes, no MQTT.
const bare = await startReference('bare-tls.js', 'BARE_TLS_READY', [
  path.join(pki, 'hub-server.crt'),
  path.join(pki, 'hub-server.key'),
]);
await settle();
const bBefore = rssKb(bare.child.pid!, read);
const sockets = await connectAll(
  () =>
    new Promise<tls.TLSSocket>((resolve, reject) => {
      const s = tls.connect({ port: bare.port, host: '127.0.0.1', ca, servername: 'localhost' });
      s.once('secureConnect', () => resolve(s));
      s.once('error', reject);
    }),
);
await settle();
const bAfter = rssKb(bare.child.pid!, read);
for (const s of sockets) s.destroy();
await bare.stop();

const kb = (n: number): string => `${fmt(n, 1)} KB`;
const mib = (n: number): string => `${fmt(n / 1024, 1)} MiB`;
const hubPer = perConnection(before, idle);
const mosquittoPer = perConnection(mBefore, mAfter);
console.log(`${fmt(CONNECTIONS)} idle TLS leaf connections (1 QoS1 subscription each)`);
console.log(
  `kedge hub   RSS ${mib(before)} → ${mib(early)} after ${SETTLE_MS / 1000} s: ${kb(perConnection(before, early))} per connection`,
);
console.log(
  `kedge hub   RSS ${mib(before)} → ${mib(idle)} after ${IDLE_MS / 1000} s idle: ${kb(hubPer)} per connection (target ≤ 25 KB)`,
);
console.log(
  `mosquitto 2 RSS ${mib(mBefore)} → ${mib(mAfter)} (TLS, same leaves): ${kb(mosquittoPer)} per connection`,
);
console.log(
  `bare Node.js TLS server, no MQTT: RSS ${mib(bBefore)} → ${mib(bAfter)}: ${kb(perConnection(bBefore, bAfter))} per connection`,
);
console.log(`ratio kedge hub / mosquitto: ${fmt(hubPer / mosquittoPer, 2)}`);
process.exit(0);
