/**
 * Gateway connections: RSS per connected idle TLS device of a kedge gateway, beside a bare
 * Node.js TLS server and Mosquitto with TLS, in the same run, with the same device counts and
 * the same server certificate.
 *
 * - The gateway (the Gateway class `kedge gateway` runs) lives in a process of its own against
 *   the bench's nats-server, with every device's credentials in the credentials bucket. A second
 *   process connects devices with the real CloudLink of `kedge node` (TLS, SAS token, four
 *   subscriptions, heartbeats every 10 s). nats-server's RSS is read beside it: it holds one
 *   request subscription per device session.
 * - Mosquitto 2 with a TLS listener gets the same swarm (CloudLinks, four subscriptions each).
 * - The bare Node.js TLS server (no MQTT) gets the same number of TLS sockets that only
 *   finish their handshake: the floor for any Node process terminating TLS itself.
 *
 * Steps are cumulative. Each server is sampled after a settle time, three times (median);
 * the Node processes after two forced full GCs.
 *
 * Usage: npm run bench -- gateway-connections [N …]   (default 1000 5000)
 *        KEDGE_BENCH_HEAP_SNAPSHOT=<prefix> also writes a heap snapshot of the gateway at each step.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { PACKAGE_ROOT } from '../src/localcluster/kubectl.js';
import { freePort, startMosquitto } from '../src/localcluster/mosquitto.js';
import { ensureNatsServer, startNats } from '../src/localcluster/nats.js';
import { benchGatewayTls } from './gateway/bench-tls.js';
import { gatewayNodeArgs, lineReader, spawnNode, stopChild } from './lib/child-process.js';
import { say } from './fleet/stages.js';

const BENCH = path.join(PACKAGE_ROOT, 'dist-bench/bench');
const GATEWAY = path.join(BENCH, 'gateway/hub-host.js');
const SWARM = path.join(BENCH, 'gateway/device-swarm.js');
const BARE_TLS = path.join(BENCH, 'lib/bare-tls.js');
/** After connecting, wait this long (two heartbeat rounds) before sampling. */
const SETTLE_MS = 20_000;
/** Samples per step; the median is used, as RSS moves a little between samples. */
const SAMPLES = 3;
const SAMPLE_GAP_MS = 2_000;
/** Time for a signalled GC in the bare TLS server to finish before its RSS is read. */
const GC_WAIT_MS = 500;
/** The target: the gateway at most this many times the bare Node TLS figure. */
const TARGET_RATIO = 1.25;
const TAG = 'gateway-connections';

/** A server under test: how to read its RSS and how the swarm reaches it. */
interface Subject {
  name: string;
  url: string;
  /** `connect`: CloudLinks; `tls`: bare TLS sockets. */
  dial: 'connect' | 'tls';
  /** RSS in KB, after a GC where the server has one. */
  rssKb(): Promise<number>;
  /** Extra detail printed with each step (heap split, nats-server). */
  detail?: (n: number) => Promise<string>;
  stop(): Promise<void>;
}

/** RSS in KB per step, with the baseline at 0 devices. */
type Readings = Map<number, number>;

function procRssKb(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
}

async function medianOf(read: () => Promise<number>): Promise<number> {
  const values: number[] = [];
  for (let i = 0; i < SAMPLES; i++) {
    if (i > 0) await sleep(SAMPLE_GAP_MS);
    values.push(await read());
  }
  values.sort((a, b) => a - b);
  return values[Math.floor(values.length / 2)]!;
}

const steps = process.argv
  .slice(2)
  .map(Number)
  .filter((x) => x > 0);
const targets = steps.length ? steps : [1000, 5000];
const secret = randomBytes(32).toString('hex');
const { ca, serving } = benchGatewayTls();
const dir = await mkdtemp(path.join(tmpdir(), 'kedge-bench-gateway-'));
const certFile = path.join(dir, 'server.crt');
const keyFile = path.join(dir, 'server.key');
writeFileSync(certFile, serving.certPem);
writeFileSync(keyFile, serving.keyPem);

/** The kedge gateway in its own process, against a nats-server of its own. */
async function startGateway(): Promise<Subject> {
  const nats = await startNats({
    dataDir: path.join(dir, 'nats'),
    binary: await ensureNatsServer(),
  });
  const child = spawnNode(GATEWAY, ['--expose-gc', ...gatewayNodeArgs()], {
    KEDGE_BENCH_SECRET: secret,
    KEDGE_BENCH_TLS: JSON.stringify(serving),
    KEDGE_BENCH_NATS_URL: nats.url,
    KEDGE_BENCH_DEVICES: String(Math.max(...targets)),
  });
  const lines = lineReader(child);
  const port = Number((await lines('HUB_READY', 120_000)).split(' ')[1]);
  let natsBase = 0;
  let heapBase: { heapUsedKb: number; externalKb: number } | undefined;
  let last = { connected: 0, heapUsedKb: 0, externalKb: 0 };
  return {
    name: 'kedge gateway',
    url: `mqtts://localhost:${port}`,
    dial: 'connect',
    rssKb: async () => {
      child.stdin!.write('sample\n');
      last = JSON.parse((await lines('SAMPLE ', 30_000)).slice('SAMPLE '.length)) as typeof last;
      return procRssKb(child.pid!);
    },
    detail: async (n) => {
      const natsKb = procRssKb(nats.pid);
      if (n === 0) {
        natsBase = natsKb;
        heapBase = last;
        return `nats-server RSS ${(natsKb / 1024).toFixed(1)} MiB`;
      }
      const perKb = (from: number, to: number): string => ((to - from) / n).toFixed(1);
      const heap = perKb(heapBase!.heapUsedKb, last.heapUsedKb);
      const external = perKb(heapBase!.externalKb, last.externalKb);
      if (last.connected !== n) say(TAG, `note: the gateway counts ${last.connected} sessions`);
      if (process.env.KEDGE_BENCH_HEAP_SNAPSHOT) {
        child.stdin!.write(`snapshot ${process.env.KEDGE_BENCH_HEAP_SNAPSHOT}-${n}.heapsnapshot\n`);
        say(TAG, (await lines('SNAPSHOT', 120_000)).toLowerCase());
      }
      return (
        `of which JS heap ${heap} KB, external ${external} KB; ` +
        `nats-server RSS ${(natsBase / 1024).toFixed(1)} → ${(natsKb / 1024).toFixed(1)} MiB = ` +
        `${perKb(natsBase, natsKb)} KB per device session`
      );
    },
    stop: async () => {
      await stopChild(child, { graceMs: 5_000, signal: 'SIGTERM' });
      await nats.stop();
    },
  };
}

/** Mosquitto 2 with a TLS listener and the same certificate. */
async function startMosquittoTls(): Promise<Subject> {
  const mosquitto = await startMosquitto(path.join(dir, 'mosquitto'), await freePort(), false, {
    certFile,
    keyFile,
  });
  return {
    name: 'Mosquitto (TLS)',
    url: `mqtts://localhost:${mosquitto.port}`,
    dial: 'connect',
    rssKb: () => Promise.resolve(procRssKb(mosquitto.pid)),
    stop: () => mosquitto.stop(),
  };
}

/** A bare Node.js TLS server with the same certificate, holding connections and nothing else. */
async function startBare(): Promise<Subject> {
  const child = spawnNode(BARE_TLS, ['--expose-gc'], {}, [certFile, keyFile]);
  const port = Number((await lineReader(child)('BARE_TLS_READY', 30_000)).split(' ')[1]);
  return {
    name: 'bare Node.js TLS',
    url: `mqtts://localhost:${port}`,
    dial: 'tls',
    rssKb: async () => {
      child.kill('SIGUSR2');
      await sleep(GC_WAIT_MS);
      return procRssKb(child.pid!);
    },
    stop: () => stopChild(child, { graceMs: 5_000, signal: 'SIGTERM' }),
  };
}

/** Connects a fresh swarm to the subject step by step and reads its RSS at each. */
async function measure(subject: Subject): Promise<Readings> {
  const readings: Readings = new Map();
  const swarm = spawnNode(SWARM, ['--max-old-space-size=8192'], {
    KEDGE_BENCH_SECRET: secret,
    KEDGE_BENCH_URL: subject.url,
    KEDGE_BENCH_CA: ca.certPem,
  });
  const fromSwarm = lineReader(swarm);
  try {
    await fromSwarm('SWARM_READY', 30_000);
    await sleep(SETTLE_MS / 4);
    const base = await medianOf(() => subject.rssKb());
    readings.set(0, base);
    const detail = subject.detail ? `; ${await subject.detail(0)}` : '';
    say(TAG, `${subject.name}: baseline RSS ${(base / 1024).toFixed(1)} MiB${detail}`);
    let connected = 0;
    for (const target of targets) {
      const started = Date.now();
      swarm.stdin!.write(`${subject.dial} ${connected} ${target}\n`);
      const answer = await fromSwarm('', 20 * 60_000);
      if (!answer.startsWith('CONNECTED')) throw new Error(`swarm: ${answer}`);
      connected = target;
      const secs = ((Date.now() - started) / 1000).toFixed(1);
      say(TAG, `${subject.name}: ${answer.split(' ')[1]} devices connected in ${secs} s; settling`);
      await sleep(SETTLE_MS);
      const now = await medianOf(() => subject.rssKb());
      readings.set(target, now);
      const extra = subject.detail ? `; ${await subject.detail(target)}` : '';
      console.log(
        `RESULT ${subject.name}, ${target} devices: RSS ${(base / 1024).toFixed(1)} → ` +
          `${(now / 1024).toFixed(1)} MiB = ${((now - base) / target).toFixed(1)} KB per connection${extra}`,
      );
    }
  } finally {
    await stopChild(swarm, { graceMs: 5_000, signal: 'SIGTERM' });
    await subject.stop();
  }
  return readings;
}

function perConnection(readings: Readings, n: number): number {
  return (readings.get(n)! - readings.get(0)!) / n;
}

console.log(
  'gateway connections: idle TLS devices; kedge gateway, Mosquitto (TLS) and a bare Node.js TLS server in one run',
);
console.log(
  `load average at start: ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`,
);
const gateway = await measure(await startGateway());
const mosquitto = await measure(await startMosquittoTls());
const bare = await measure(await startBare());
for (const n of targets) {
  const g = perConnection(gateway, n);
  const m = perConnection(mosquitto, n);
  const b = perConnection(bare, n);
  console.log(
    `RESULT ${n} devices: per connection gateway ${g.toFixed(1)} KB, bare Node TLS ${b.toFixed(1)} KB, ` +
      `Mosquitto ${m.toFixed(1)} KB; gateway / bare Node TLS ${(g / b).toFixed(2)} ` +
      `(target ≤ ${TARGET_RATIO}), gateway / Mosquitto ${(g / m).toFixed(2)}`,
  );
}
console.log(
  `load average at end: ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`,
);
process.exit(0);
