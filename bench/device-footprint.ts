// Footprint of a whole device: a real `kedge node` process (agent and hub) idle with 5 running
// modules and one leaf device connected through the hub (the Azure IoT device SDK over MQTT/TLS,
// authenticating with its SAS key), measured after 60 s. Prints RSS, CPU and where the RSS lies
// (V8 heap, external, native), as the node's own /metrics reports it. Target ≤ 75 MB RSS.
// Needs `npm run build` (runs dist/cli/main.js).
//   npm run bench -- device-footprint [idleSecs=60]
// KEDGE_BENCH_RUNTIME=docker (default) | process; KEDGE_BENCH_NODE_ARGS: extra node flags.
import deviceSdk from 'azure-iot-device';
import mqttTransport from 'azure-iot-device-mqtt';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from '../src/localcluster/ports.js';
import { cleanup, sleep, sleeperManifest, until } from './bench-util.js';

const { Client, Message } = deviceSdk;
const MODULES = 5;
const LEAF = 'leaf-sensor';
const TARGET_MB = 75;
const AIM_MB = 60;
const idleSecs = Number(process.argv[2] ?? 60);
const runtime = process.env.KEDGE_BENCH_RUNTIME ?? 'docker';
const nodeArgs = process.env.KEDGE_BENCH_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
/** Linux reports CPU times in clock ticks; 100 per second on every common configuration. */
const CLOCK_TICKS_PER_SEC = 100;
/** Modules started by the docker runtime include image checks; a minute is plenty. */
const MODULES_RUNNING_TIMEOUT_MS = 120_000;
const MB = 1e6;
const cli = path.resolve(import.meta.dirname, '../../dist/cli/main.js');
if (!existsSync(cli)) throw new Error(`${cli} is missing: run npm run build first`);

async function rssBytes(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)![1]) * 1024;
}

/** Anonymous and file-backed (the node binary, shared libraries) parts of the RSS. */
async function rssSplit(pid: number): Promise<{ anonymous: number; file: number }> {
  const rollup = await readFile(`/proc/${pid}/smaps_rollup`, 'utf8');
  const kib = (field: string): number =>
    Number(new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(rollup)![1]);
  const anonymous = kib('Anonymous') * 1024;
  return { anonymous, file: kib('Rss') * 1024 - anonymous };
}

async function cpuTicks(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]); // utime + stime
}

/** The unlabelled samples of a Prometheus text exposition. */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const m of text.matchAll(/^([a-z_]+) (\S+)$/gm)) out.set(m[1]!, Number(m[2]));
  return out;
}

async function modulesRunning(metricsUrl: string): Promise<boolean> {
  const res = await fetch(`${metricsUrl}/status`).catch(() => undefined);
  if (!res?.ok) return false;
  const status = (await res.json()) as { modules: Record<string, { runtimeStatus?: string }> };
  const running = Object.values(status.modules).filter((m) => m.runtimeStatus === 'running');
  return running.length === MODULES;
}

/** Opens the leaf's SDK client through the hub and sends one event. */
async function connectLeaf(key: string, tlsPort: number, caPem: string): Promise<deviceSdk.Client> {
  const cs = `HostName=kedge.local;DeviceId=${LEAF};SharedAccessKey=${key};GatewayHostName=localhost:${tlsPort}`;
  const client = Client.fromConnectionString(cs, mqttTransport.Mqtt);
  client.on('error', () => undefined);
  await client.setOptions({ ca: caPem });
  await client.open();
  await client.sendEvent(new Message(JSON.stringify({ temperature: 21.5 })));
  return client;
}

const dir = await mkdtemp(path.join(tmpdir(), 'kedge-footprint-'));
const deviceId = `bench-footprint-${process.pid}`;
const network = `${deviceId}-net`;
const leafKey = randomBytes(32).toString('base64');
const ports = {
  tls: await freePort(),
  methods: await freePort(),
  workload: await freePort(),
  metrics: await freePort(),
};
const metricsUrl = `http://127.0.0.1:${ports.metrics}`;
await writeFile(path.join(dir, 'deployment.json'), JSON.stringify(sleeperManifest(MODULES)));
await writeFile(
  path.join(dir, 'node.yaml'),
  [
    `deviceId: ${deviceId}`,
    `dataDir: ${dir}/data`,
    'logLevel: warn',
    'agent:',
    `  runtime: ${runtime}`,
    `  network: ${network}`,
    `  containerNamePrefix: ${deviceId}-`,
    '  stopModulesOnExit: true',
    'hub:',
    `  tlsPort: ${ports.tls}`,
    `  methodsPort: ${ports.methods}`,
    `  workloadPort: ${ports.workload}`,
    '  leafDevices:',
    `    - deviceId: ${LEAF}`,
    `      primaryKey: ${leafKey}`,
    'metrics:',
    `  port: ${ports.metrics}`,
  ].join('\n'),
);
const child = spawn(
  process.execPath,
  [
    ...nodeArgs,
    cli,
    'node',
    '--config',
    path.join(dir, 'node.yaml'),
    '--manifest',
    path.join(dir, 'deployment.json'),
  ],
  { stdio: 'inherit' },
);
let leaf: deviceSdk.Client | undefined;
try {
  await until(() => modulesRunning(metricsUrl), MODULES_RUNNING_TIMEOUT_MS);
  const caPem = await readFile(path.join(dir, 'data/hub/pki/device-ca.crt'), 'utf8');
  leaf = await connectLeaf(leafKey, ports.tls, caPem);
  const ticksBefore = await cpuTicks(child.pid!);
  const startedMs = Date.now();
  await sleep(idleSecs * 1000);
  const cpuSecs = ((await cpuTicks(child.pid!)) - ticksBefore) / CLOCK_TICKS_PER_SEC;
  const wallSecs = (Date.now() - startedMs) / 1000;
  const rss = await rssBytes(child.pid!);
  const split = await rssSplit(child.pid!);
  const m = samples(await (await fetch(`${metricsUrl}/metrics`)).text());
  const heapTotal = m.get('nodejs_heap_size_total_bytes')!;
  const heapUsed = m.get('nodejs_heap_size_used_bytes')!;
  const external = m.get('nodejs_external_memory_bytes')!;
  const arrayBuffers = m.get('nodejs_array_buffers_bytes')!;
  // The node's own view of its RSS, read a moment after /proc's: the two agree within a page or so.
  const selfRss = m.get('process_resident_memory_bytes')!;
  const mb = (bytes: number): string => `${(bytes / MB).toFixed(1)} MB`;
  const verdict = rss <= TARGET_MB * MB ? 'pass' : 'MISS';
  console.log(
    `device-footprint: kedge node (${runtime} runtime, hub on), ${MODULES} running modules, ` +
      `1 leaf device connected (hub connections: ${m.get('kedge_hub_connections')}), ` +
      `idle ${idleSecs} s${nodeArgs.length ? `, node ${nodeArgs.join(' ')}` : ''}`,
  );
  console.log(
    `  RSS: ${mb(rss)} = ${(rss / 2 ** 20).toFixed(1)} MiB (target ≤ ${TARGET_MB} MB, aim ${AIM_MB} MB): ${verdict}`,
  );
  console.log(`  V8 heap: ${mb(heapUsed)} used of ${mb(heapTotal)}`);
  console.log(`  external: ${mb(external)} (array buffers ${mb(arrayBuffers)})`);
  console.log(
    `  native (RSS − heap total − external): ${mb(selfRss - heapTotal - external)} ` +
      `(node's own RSS reading ${mb(selfRss)})`,
  );
  console.log(
    `  of the RSS: anonymous ${mb(split.anonymous)}, file-backed (node binary, libraries) ${mb(split.file)}`,
  );
  console.log(
    `  CPU: ${((cpuSecs / wallSecs) * 100).toFixed(2)} % of one core over the idle window`,
  );
} finally {
  await leaf?.close().catch(() => undefined);
  child.kill('SIGTERM');
  await new Promise((resolve) => child.on('exit', resolve));
  if (runtime === 'docker') await cleanup(`io.kedge.device=${deviceId}`, network);
  await rm(dir, { recursive: true, force: true });
}
