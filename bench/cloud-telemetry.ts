/**
 * End-to-end telemetry on the cloud plane: 100 devices → a kedge gateway (its own process) →
 * JetStream (a local nats-server, on disk) → a durable consumer (this process, explicit acks, as
 * an application reads telemetry). Devices publish over TLS MQTT with SAS credentials exactly as
 * the cloud link does, with a bounded window of publishes in flight each; a device's PUBACK
 * comes only after JetStream's PubAck for every message of the publish.
 *
 * Prints, per publish size (1 message, then 100 messages per publish): msg/s counted at the
 * durable consumer over the measurement, the devices' acknowledged msg/s, PUBACK latency
 * p50/p99, CPU of each process, and whether every acknowledged message reached the consumer.
 *
 * Usage: npm run bench -- cloud-telemetry [messages per publish …]   (default 1 100)
 *        KEDGE_BENCH_WINDOW=<n> publishes in flight per device (default 4).
 *        KEDGE_BENCH_CPU_PROF=1 writes a CPU profile of the gateway into the run directory.
 */
import { AckPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Streams, Subjects } from '../src/common/cloudplane/layout.js';
import { PACKAGE_ROOT } from '../src/localcluster/kubectl.js';
import { ensureNatsServer, startNats } from '../src/localcluster/nats.js';
import { benchGatewayTls } from './gateway/bench-tls.js';
import { gatewayNodeArgs, lineReader, spawnNode, stopChild } from './lib/child-process.js';
import { say } from './fleet/stages.js';
import { BENCH_NAMESPACE } from './gateway/fleet-keys.js';

const GATEWAY = path.join(PACKAGE_ROOT, 'dist-bench/bench/gateway/hub-host.js');
const DEVICES_SCRIPT = path.join(PACKAGE_ROOT, 'dist-bench/bench/gateway/telemetry-devices.js');
const DEVICES = 100;
/** Publishes in flight per device; the cloud link itself sends one at a time. */
const WINDOW = Number(process.env.KEDGE_BENCH_WINDOW ?? '4');
const WARMUP_MS = 3_000;
const MEASURE_MS = 10_000;
/** After a run, the consumer gets this long to read every acknowledged message. */
const CATCH_UP_MS = 120_000;
/** The consumer's unacknowledged messages at most: high enough not to throttle it. */
const MAX_ACK_PENDING = 20_000;
const CONSUMER = 'bench-telemetry';
const TAG = 'cloud-telemetry';

interface DeviceResult {
  publishes: number;
  messagesSent: number;
  messagesAcked: number;
  messagesAckedMeasured: number;
  unacked: number;
  ackP50Ms: number;
  ackP99Ms: number;
  ackMaxMs: number;
}

/** CPU seconds (user + system) a process has used. */
function cpuSecs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(stat[11]) + Number(stat[12])) / 100;
}

/** A durable consumer on the bench namespace's telemetry that acks each message and counts it. */
async function startConsumer(
  natsUrl: string,
): Promise<{ count: () => number; stop(): Promise<void> }> {
  const nc = await connect({ servers: natsUrl });
  const jsm = await jetstreamManager(nc);
  await jsm.consumers.add(Streams.telemetry, {
    durable_name: CONSUMER,
    filter_subject: Subjects.telemetryOf(BENCH_NAMESPACE),
    ack_policy: AckPolicy.Explicit,
    max_ack_pending: MAX_ACK_PENDING,
  });
  const consumer = await jetstream(nc).consumers.get(Streams.telemetry, CONSUMER);
  const messages = await consumer.consume();
  let consumed = 0;
  void (async () => {
    for await (const m of messages) {
      consumed++;
      m.ack();
    }
  })();
  return {
    count: () => consumed,
    stop: async () => {
      await messages.close();
      await nc.close();
    },
  };
}

const sizes = process.argv
  .slice(2)
  .map(Number)
  .filter((x) => x > 0);
const secret = randomBytes(32).toString('hex');
const { ca, serving } = benchGatewayTls();
const dir = await mkdtemp(path.join(tmpdir(), 'kedge-bench-telemetry-'));
console.log(
  `cloud telemetry: ${DEVICES} devices → gateway → JetStream → durable consumer; ` +
    `${WINDOW} publishes in flight per device; PUBACK after PubAck`,
);
console.log(
  `load average at start: ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`,
);
say(TAG, `run directory ${dir}`);
const nats = await startNats({ dataDir: path.join(dir, 'nats'), binary: await ensureNatsServer() });
const prof = process.env.KEDGE_BENCH_CPU_PROF
  ? ['--cpu-prof', `--cpu-prof-dir=${path.join(dir, 'prof')}`]
  : [];
const gateway = spawnNode(GATEWAY, [...prof, ...gatewayNodeArgs()], {
  KEDGE_BENCH_SECRET: secret,
  KEDGE_BENCH_TLS: JSON.stringify(serving),
  KEDGE_BENCH_NATS_URL: nats.url,
  KEDGE_BENCH_DEVICES: String(DEVICES),
});
const port = Number((await lineReader(gateway)('HUB_READY', 120_000)).split(' ')[1]);
const consumer = await startConsumer(nats.url);
const devices = spawnNode(DEVICES_SCRIPT, [], {
  KEDGE_BENCH_SECRET: secret,
  KEDGE_BENCH_PORT: String(port),
  KEDGE_BENCH_CA: ca.certPem,
  KEDGE_BENCH_DEVICES: String(DEVICES),
});
const fromDevices = lineReader(devices);
try {
  say(TAG, (await fromDevices('DEVICES_READY', 120_000)).toLowerCase());
  let ackedBefore = 0;
  for (const perPublish of sizes.length ? sizes : [1, 100]) {
    const pids = {
      gateway: gateway.pid!,
      'nats-server': nats.pid,
      devices: devices.pid!,
      consumer: process.pid,
    };
    devices.stdin!.write(`run ${perPublish} ${WINDOW} ${WARMUP_MS} ${MEASURE_MS}\n`);
    await sleep(WARMUP_MS);
    const c0 = consumer.count();
    const cpu0 = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, cpuSecs(pid)]));
    await sleep(MEASURE_MS);
    const c1 = consumer.count();
    const cpu = Object.entries(pids)
      .map(([k, pid]) => `${k} ${(((cpuSecs(pid) - cpu0[k]!) / MEASURE_MS) * 1e5).toFixed(0)} %`)
      .join(', ');
    const r = JSON.parse((await fromDevices('RESULT ', 120_000)).slice(7)) as DeviceResult;
    const expected = ackedBefore + r.messagesAcked;
    const deadline = Date.now() + CATCH_UP_MS;
    while (consumer.count() < expected && Date.now() < deadline) await sleep(100);
    const consumed = consumer.count();
    ackedBefore = expected;
    const secs = MEASURE_MS / 1000;
    console.log(
      `RESULT ${perPublish} message(s) per publish: consumer ${((c1 - c0) / secs).toFixed(0)} msg/s; ` +
        `devices acked ${(r.messagesAckedMeasured / secs).toFixed(0)} msg/s ` +
        `(${(r.messagesAckedMeasured / perPublish / secs).toFixed(0)} publishes/s); ` +
        `PUBACK p50 ${r.ackP50Ms.toFixed(1)} ms, p99 ${r.ackP99Ms.toFixed(1)} ms, max ${r.ackMaxMs.toFixed(1)} ms`,
    );
    console.log(`  CPU during the measurement (of one core): ${cpu}`);
    console.log(
      `  consumer read ${consumed} of ${expected} acknowledged messages so far ` +
        `(${consumed >= expected ? 'none missing' : `${expected - consumed} MISSING`}` +
        `${consumed > expected ? `, ${consumed - expected} extra` : ''}); ${r.unacked} publishes never acked`,
    );
  }
} finally {
  await stopChild(devices, { graceMs: 10_000 });
  await consumer.stop();
  await stopChild(gateway, { graceMs: 10_000 });
  await nats.stop();
}
console.log(
  `load average at end: ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`,
);
process.exit(0);
