// Durable upstream: a leaf device publishes QoS1 telemetry routed to $upstream; the PUBACK is
// written only after the SQLite group commit (WAL, synchronous=FULL). The upstream is down, so
// everything stays queued on disk. Prints msg/s and the publish→PUBACK latency.
import mqtt from 'mqtt';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import {
  benchDir,
  DEVICE,
  fmt,
  metric,
  percentile,
  spawnHub,
  stopHub,
  token,
  username,
} from './lib/hub-process.js';
import { randomBytes } from 'node:crypto';

const WARMUP_MS = 1_000;
const MEASURE_MS = 5_000;
/** Publishes in flight: more in flight means bigger group commits and higher ack latency. */
const WINDOWS = [100, 500];

const dir = benchDir('durable');
const key = randomBytes(32).toString('base64');
const hub = await spawnHub({
  deviceId: DEVICE,
  dataDir: path.join(dir, 'hub'),
  tlsPort: 0,
  plainPort: 0,
  leafDevices: [{ deviceId: 'leaf1', primaryKey: key }],
  routes: { up: 'FROM /messages/* INTO $upstream' },
});
const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${hub.ports.plain}`, {
  clientId: 'leaf1',
  username: username('leaf1'),
  password: token(key, 'leaf1'),
  clean: false,
  reconnectPeriod: 0,
});
(client.stream as unknown as { setNoDelay(on: boolean): void }).setNoDelay(true);
const body = JSON.stringify({ temperature: 30, pad: 'x'.repeat(220) });

async function measure(window: number): Promise<void> {
  let counting = false;
  let acked = 0;
  const latencies: number[] = [];
  let running = true;
  const worker = async (): Promise<void> => {
    while (running) {
      const t = performance.now();
      await client.publishAsync('devices/leaf1/messages/events/', body, { qos: 1 });
      if (counting) {
        acked++;
        latencies.push(performance.now() - t);
      }
    }
  };
  const workers = Array.from({ length: window }, worker);
  await new Promise((r) => setTimeout(r, WARMUP_MS));
  counting = true;
  await new Promise((r) => setTimeout(r, MEASURE_MS));
  counting = false;
  running = false;
  await Promise.all(workers);
  latencies.sort((a, b) => a - b);
  console.log(
    `window ${String(window).padStart(4)}: ${fmt(acked / (MEASURE_MS / 1000)).padStart(7)} msg/s acked (target ≥ 25,000)   ack p50 ${fmt(percentile(latencies, 50), 3)} ms   p99 ${fmt(percentile(latencies, 99), 3)} ms`,
  );
}

console.log(
  `durable upstream: QoS1 ${body.length}-byte JSON → $upstream (SQLite WAL, synchronous=FULL, group commit), ${MEASURE_MS / 1000} s per window`,
);
for (const window of WINDOWS) await measure(window);
console.log(
  `queued on disk: ${fmt(await metric(hub.ports.metrics, 'kedge_hub_queue_depth'))} messages`,
);
await client.endAsync(true);
await stopHub(hub);
process.exit(0);
