// Connections: 1,000 idle leaf devices connected over TLS (as the SDK connects), each subscribed to
// its C2D topic. Prints the hub process RSS per connection.
import mqtt, { type MqttClient } from 'mqtt';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
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
const ca = readFileSync(path.join(dir, 'hub/pki/device-ca.crt'), 'utf8');
const read = (p: string): string => readFileSync(p, 'utf8');
await new Promise((r) => setTimeout(r, SETTLE_MS));
const before = rssKb(hub.child.pid!, read);
const clients: MqttClient[] = [];
for (let i = 0; i < CONNECTIONS; i += 50) {
  const batch = leaves.slice(i, i + 50).map(async (leaf) => {
    const c = await mqtt.connectAsync(`mqtts://localhost:${hub.ports.tls}`, {
      clientId: leaf.deviceId,
      username: username(leaf.deviceId),
      password: token(leaf.primaryKey, leaf.deviceId),
      ca,
      clean: false,
      keepalive: 180,
      reconnectPeriod: 0,
    });
    await c.subscribeAsync(`devices/${leaf.deviceId}/messages/devicebound/#`, { qos: 1 });
    clients.push(c);
  });
  await Promise.all(batch);
}
await new Promise((r) => setTimeout(r, SETTLE_MS));
const early = rssKb(hub.child.pid!, read);
await new Promise((r) => setTimeout(r, IDLE_MS - SETTLE_MS));
const idle = rssKb(hub.child.pid!, read);
const perConnection = (kb: number): string => fmt((kb - before) / clients.length, 1);
console.log(`${fmt(clients.length)} idle TLS leaf connections (1 QoS1 subscription each)`);
console.log(
  `hub RSS ${fmt(before / 1024, 1)} MiB → ${fmt(early / 1024, 1)} MiB after ${SETTLE_MS / 1000} s: ${perConnection(early)} KB per connection`,
);
console.log(
  `hub RSS ${fmt(before / 1024, 1)} MiB → ${fmt(idle / 1024, 1)} MiB after ${IDLE_MS / 1000} s idle: ${perConnection(idle)} KB per connection (target ≤ 25 KB)`,
);
await Promise.all(clients.map((c) => c.endAsync(true)));
await stopHub(hub);
process.exit(0);
