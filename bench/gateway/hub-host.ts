/**
 * Hosts one kedge gateway on its own, so its process RSS is the gateway's: the same Gateway
 * class `kedge gateway` runs, against the bench's nats-server, with the credentials of every
 * bench device put in the credentials bucket first. Reads commands on stdin, one a line, and
 * answers on stdout:
 * `sample` → one JSON line of memory figures (after a full GC when --expose-gc is given);
 * `snapshot <file>` → writes a V8 heap snapshot there.
 *
 * Environment: KEDGE_BENCH_SECRET, KEDGE_BENCH_TLS (JSON {certPem, keyPem}), KEDGE_BENCH_NATS_URL,
 * KEDGE_BENCH_DEVICES (how many device credentials to provision).
 */
import { Kvm } from '@nats-io/kv';
import { createInterface } from 'node:readline';
import { writeHeapSnapshot } from 'node:v8';
import { Buckets, deviceKey as kvKey } from '../../src/common/cloudplane/layout.js';
import {
  connectNats,
  natsSettings,
  provisionCloudPlane,
} from '../../src/common/cloudplane/nats.js';
import { silentLogger } from '../../src/common/logger.js';
import { Gateway } from '../../src/gateway/gateway.js';
import { BENCH_NAMESPACE, deviceKey, deviceName } from './fleet-keys.js';

const secret = process.env.KEDGE_BENCH_SECRET!;
const tls = JSON.parse(process.env.KEDGE_BENCH_TLS!) as { certPem: string; keyPem: string };
// Connected as `kedge gateway` connects, with the same client options.
const nc = await connectNats(
  natsSettings({ natsUrl: process.env.KEDGE_BENCH_NATS_URL! }),
  'kedge-gateway',
  silentLogger(),
);
await provisionCloudPlane(nc, { replicas: 1 });
const credentials = await new Kvm(nc).open(Buckets.credentials);
const devices = Number(process.env.KEDGE_BENCH_DEVICES ?? '0');
for (let i = 0; i < devices; i++) {
  const device = deviceName(i);
  await credentials.put(
    kvKey(BENCH_NAMESPACE, device),
    JSON.stringify({ keys: [deviceKey(secret, BENCH_NAMESPACE, device)] }),
  );
}
const hub = await Gateway.start({
  nc,
  port: 0,
  host: '127.0.0.1',
  tls,
  limits: { maxPreAuthPerSource: Number.MAX_SAFE_INTEGER },
  log: silentLogger(),
});

/** Memory figures of this process, in KB. */
function sample(): Record<string, number> {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  gc?.();
  const m = process.memoryUsage();
  const kb = (n: number): number => Math.round(n / 1024);
  return {
    connected: hub.sessions,
    rssKb: kb(m.rss),
    heapTotalKb: kb(m.heapTotal),
    heapUsedKb: kb(m.heapUsed),
    externalKb: kb(m.external),
    arrayBuffersKb: kb(m.arrayBuffers),
  };
}

createInterface({ input: process.stdin }).on('line', (line) => {
  const [cmd, arg] = line.trim().split(' ');
  if (cmd === 'sample') process.stdout.write(`SAMPLE ${JSON.stringify(sample())}\n`);
  // For looking into the per-connection cost: `snapshot <file>` writes a V8 heap snapshot.
  if (cmd === 'snapshot') process.stdout.write(`SNAPSHOT ${writeHeapSnapshot(arg)}\n`);
});
process.stdin.once('end', () => void hub.close().then(() => process.exit(0)));
process.stdout.write(`HUB_READY ${hub.port}\n`);
