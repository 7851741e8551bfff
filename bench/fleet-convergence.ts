/**
 * Fleet convergence with hollow devices (the real agent and cloud link, the container runtime
 * simulated in memory) against the real control plane and a real `kedge controller` process.
 * For each fleet size N: apply an EdgeDeployment of 3 modules targeting every device and time
 * it until all 3N pods run and reportedSuccessfulCount = N.
 *
 * Every step is a named stage with its own time limit (see fleet/stages.ts), so a stalled run
 * names the stage it stalled in. Controller and fleet logs are kept in the run's directory.
 *
 * Usage: npm run bench -- fleet-convergence [N …]   (default 100 300 1000)
 *        KEDGE_BENCH_CONCURRENCY=<n> sets the controller's --concurrency (default 8).
 *        KEDGE_BENCH_CPU_PROF=1 writes a V8 CPU profile of the controller into the run directory.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { silentLogger } from '../src/common/logger.js';
import { KubeClient, Resources, type KubeObject } from '../src/controller/kube/client.js';
import { Informer } from '../src/controller/kube/informer.js';
import {
  ensureBinaries,
  startControlPlane,
  type ControlPlane,
} from '../src/localcluster/control-plane.js';
import { installCrds, kubectl, PACKAGE_ROOT } from '../src/localcluster/kubectl.js';
import { freePort } from '../src/localcluster/ports.js';
import { ensureNatsServer, startNats, type NatsServer } from '../src/localcluster/nats.js';
import { slowStartBatch } from '../src/controller/slow-start.js';
import { pollUntil, say, stage } from './fleet/stages.js';

const CLI = path.join(PACKAGE_ROOT, 'dist-bench/src/cli/main.js');
const HOLLOW = path.join(PACKAGE_ROOT, 'dist-bench/bench/fleet/hollow-fleet.js');
const NAMESPACE = 'fleet';
const MODULES = ['a', 'b', 'c'];
/** Stage limits: a fixed part plus a part per device, generous for a loaded 2-core machine. */
const limitMs = (fixedSecs: number, perDeviceMs: number, n: number): number =>
  fixedSecs * 1000 + perDeviceMs * n;

interface Sample {
  rssMb: number;
  cpuSecs: number;
}

type Secret = KubeObject & { data?: Record<string, string> };
type Pod = KubeObject & { status?: { phase?: string } };
type Deployment = KubeObject & { status?: { reportedSuccessfulCount?: number } };
type NodeObj = KubeObject & { status?: { conditions?: { type: string; status: string }[] } };

function processSample(pid: number): Sample {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  const ticks = Number(stat[11]) + Number(stat[12]);
  return { rssMb: rssKb / 1024, cpuSecs: ticks / 100 };
}

function sumMetric(text: string, name: string): number {
  const re = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+]+)`, 'gm');
  return [...text.matchAll(re)].reduce((n, m) => n + Number(m[1]), 0);
}

async function controllerMetric(metricsPort: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  return sumMetric(text, name);
}

/** apiserver_request_total by `verb resource/subresource`, from the apiserver itself. */
async function apiserverRequests(cp: ControlPlane): Promise<Map<string, number>> {
  const res = await kubectl(cp.binDir, cp.kubeconfigPath, ['get', '--raw', '/metrics']);
  const out = new Map<string, number>();
  for (const m of res.stdout.matchAll(/^apiserver_request_total\{([^}]*)\} ([0-9.e+]+)/gm)) {
    const labels = Object.fromEntries(
      [...m[1]!.matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1]!, l[2]!]),
    );
    const sub = labels.subresource ? `/${labels.subresource}` : '';
    const key = `${labels.verb} ${labels.resource}${sub}`;
    out.set(key, (out.get(key) ?? 0) + Number(m[2]));
  }
  return out;
}

function total(counts: Map<string, number>): number {
  return [...counts.values()].reduce((a, b) => a + b, 0);
}

/** The busiest request kinds between two snapshots, for finding what loads the API server. */
function topRequests(before: Map<string, number>, after: Map<string, number>): string {
  return [...after]
    .map(([k, v]) => [k, v - (before.get(k) ?? 0)] as const)
    .filter(([, v]) => v > 0)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 10)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
}

/** `controller=value` pairs of a labelled controller gauge, e.g. queue depths. */
async function queueDepths(metricsPort: number): Promise<string> {
  const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  const re = /^kedge_controller_queue_depth\{controller="([^"]+)"\} (\d+)/gm;
  return [...text.matchAll(re)].map((m) => `${m[1]}=${m[2]}`).join(' ');
}

/** Messages written so far to each JetStream stream (KV buckets are `KV_<bucket>` streams). */
async function streamWrites(nats: NatsServer): Promise<Map<string, number>> {
  type Jsz = {
    account_details?: { stream_detail?: { name: string; state: { last_seq: number } }[] }[];
  };
  const jsz = (await (await fetch(`${nats.monitorUrl}/jsz?streams=true`)).json()) as Jsz;
  const out = new Map<string, number>();
  for (const account of jsz.account_details ?? [])
    for (const s of account.stream_detail ?? []) out.set(s.name, s.state.last_seq);
  return out;
}

/** CPU seconds used so far by every process of the run, by name (comm). */
function cpuByProcess(pids: number[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const pid of pids) {
    try {
      const comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
      out.set(`${comm}(${pid})`, processSample(pid).cpuSecs);
    } catch {
      // exited
    }
  }
  return out;
}

function cpuShare(before: Map<string, number>, after: Map<string, number>, secs: number): string {
  return [...after]
    .map(([name, cpu]) => `${name} ${(((cpu - (before.get(name) ?? 0)) / secs) * 100).toFixed(0)}%`)
    .join(', ');
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

/** Resolves when the child prints `marker`; rejects when it exits first. */
function waitForLine(child: ChildProcess, marker: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = '';
    child.stdout!.on('data', (c: Buffer) => {
      seen = (seen + c.toString()).slice(-4096);
      if (seen.includes(marker)) resolve();
    });
    child.once('exit', (code, sig) =>
      reject(new Error(`process exited (${code ?? sig}) before printing ${marker}`)),
    );
  });
}

interface Run {
  n: number;
  tag: string;
  dir: string;
  cp: ControlPlane;
  client: KubeClient;
  procs: ChildProcess[];
  ports: { hub: number; kubelet: number; metrics: number };
  nats: NatsServer;
}

function startControllerProcess(run: Run): ChildProcess {
  const out = openSync(path.join(run.dir, 'controller.log'), 'a');
  const prof = process.env.KEDGE_BENCH_CPU_PROF
    ? ['--cpu-prof', `--cpu-prof-dir=${path.join(run.dir, 'prof')}`]
    : [];
  const p = run.ports;
  const child = spawn(
    process.execPath,
    [
      ...prof,
      CLI,
      'controller',
      ...['--kubeconfig', run.cp.kubeconfigPath, '--no-leader-elect'],
      ...['--nats-url', run.nats.url, '--embedded-gateway', '--gateway-port', String(p.hub)],
      ...['--gateway-hostname', 'localhost', '--kubelet-port', String(p.kubelet)],
      ...['--metrics-port', String(p.metrics)],
      ...['--client-ca-file', path.join(run.dir, 'ca.pem')],
      ...['--concurrency', process.env.KEDGE_BENCH_CONCURRENCY ?? '8'],
    ],
    { stdio: ['ignore', out, out], env: { ...process.env, KEDGE_LOG_LEVEL: 'warn' } },
  );
  run.procs.push(child);
  return child;
}

async function createDevices(run: Run): Promise<Secret[]> {
  const devices = Array.from({ length: run.n }, (_, i) => ({
    apiVersion: 'kedge.io/v1alpha1',
    kind: 'EdgeDevice',
    metadata: { name: `hollow-${i}`, namespace: NAMESPACE, labels: { fleet: 'bench' } },
    spec: {},
  }));
  await stage(run.tag, 'create EdgeDevices', limitMs(60, 100, run.n), () =>
    slowStartBatch(devices, async (d) => {
      await run.client.create(Resources.edgeDevices(NAMESPACE), d);
    }),
  );
  let keys: Secret[] = [];
  await stage(run.tag, 'device key Secrets', limitMs(60, 100, run.n), (signal) =>
    pollUntil(
      run.tag,
      async () => {
        const list = await run.client.list<Secret>(Resources.secrets(NAMESPACE), {
          labelSelector: 'kedge.io/device',
        });
        keys = list.items;
        return { done: keys.length === run.n, progress: `${keys.length}/${run.n} key Secrets` };
      },
      1000,
      signal,
    ),
  );
  return keys;
}

async function startFleet(run: Run, keys: Secret[]): Promise<void> {
  const ca = await run.client.get<Secret>(Resources.secrets('kedge-system'), 'kedge-ca');
  const fleetInput = {
    url: `mqtts://localhost:${run.ports.hub}`,
    caPem: Buffer.from(ca.data!['ca.crt']!, 'base64').toString(),
    devices: keys.map((s) => ({
      namespace: NAMESPACE,
      device: s.metadata.labels!['kedge.io/device']!,
      key: Buffer.from(s.data!.primaryKey!, 'base64').toString(),
    })),
  };
  writeFileSync(path.join(run.dir, 'fleet.json'), JSON.stringify(fleetInput));
  const err = openSync(path.join(run.dir, 'fleet.log'), 'a');
  const fleet = spawn(
    process.execPath,
    ['--max-old-space-size=8192', HOLLOW, path.join(run.dir, 'fleet.json')],
    { stdio: ['ignore', 'pipe', err] },
  );
  run.procs.push(fleet);
  await stage(run.tag, 'hollow fleet start', limitMs(30, 100, run.n), () =>
    waitForLine(fleet, 'FLEET_READY'),
  );
}

function readyNodes(nodes: Informer<NodeObj>): number {
  return nodes
    .list()
    .filter((x) => x.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'))
    .length;
}

async function waitNodesReady(run: Run, nodes: Informer<NodeObj>): Promise<void> {
  await stage(run.tag, 'devices connected and nodes Ready', limitMs(60, 120, run.n), (signal) =>
    pollUntil(
      run.tag,
      async () => {
        const connected = await controllerMetric(
          run.ports.metrics,
          'kedge_controller_connected_devices',
        );
        const ready = readyNodes(nodes);
        return {
          done: ready === run.n,
          progress: `${connected}/${run.n} connected, ${nodes.list().length} nodes, ${ready} Ready`,
        };
      },
      500,
      signal,
    ),
  );
}

/** Watches the fleet's pods and notes, in ms, when each was first seen and first seen Running. */
function podClock(pods: Informer<Pod>): {
  added: Map<string, number>;
  running: Map<string, number>;
} {
  const added = new Map<string, number>();
  const running = new Map<string, number>();
  pods.on((event, pod) => {
    const name = pod.metadata.name!;
    if (event === 'delete') return;
    if (!added.has(name)) added.set(name, Date.now());
    if (pod.status?.phase === 'Running' && !running.has(name)) running.set(name, Date.now());
  });
  return { added, running };
}

async function converge(
  run: Run,
  controller: ChildProcess,
  clock: ReturnType<typeof podClock>,
): Promise<{ peakRssMb: number }> {
  const deployment = {
    apiVersion: 'kedge.io/v1alpha1',
    kind: 'EdgeDeployment',
    metadata: { name: 'three', namespace: NAMESPACE },
    spec: {
      selector: { matchLabels: { fleet: 'bench' } },
      modules: MODULES.map((m) => ({ name: m, image: `bench/${m}:1` })),
    },
  };
  const deployments = new Informer<Deployment>(
    run.client,
    Resources.edgeDeployments(NAMESPACE),
    silentLogger(),
  );
  deployments.start();
  await deployments.synced();
  await run.client.create(Resources.edgeDeployments(NAMESPACE), deployment);
  let peakRssMb = 0;
  const want = MODULES.length * run.n;
  try {
    await stage(run.tag, 'convergence', limitMs(120, 600, run.n), (signal) =>
      pollUntil(
        run.tag,
        async () => {
          peakRssMb = Math.max(peakRssMb, processSample(controller.pid!).rssMb);
          const successful =
            deployments.get(`${NAMESPACE}/three`)?.status?.reportedSuccessfulCount ?? 0;
          return {
            done: successful === run.n && clock.running.size === want,
            progress: async () =>
              `pods ${clock.added.size}/${want} created, ${clock.running.size} Running; ` +
              `reportedSuccessfulCount ${successful}/${run.n}; ` +
              `controller RSS ${processSample(controller.pid!).rssMb.toFixed(0)} MB; ` +
              `queues ${await queueDepths(run.ports.metrics)}`,
          };
        },
        50,
        signal,
      ),
    );
  } finally {
    deployments.stop();
  }
  return { peakRssMb };
}

async function measure(run: Run, controller: ChildProcess): Promise<void> {
  const pods = new Informer<Pod>(run.client, Resources.pods(NAMESPACE), silentLogger());
  const nodes = new Informer<NodeObj>(
    run.client,
    Resources.nodes,
    silentLogger(),
    'type=virtual-kubelet',
  );
  const clock = podClock(pods);
  pods.start();
  nodes.start();
  try {
    await waitNodesReady(run, nodes);
    const pids = [...run.procs.map((p) => p.pid!), ...run.cp.pids(), run.nats.pid];
    const before = {
      streams: await streamWrites(run.nats),
      all: cpuByProcess(pids),
      cpu: processSample(controller.pid!),
      api: await controllerMetric(run.ports.metrics, 'kedge_controller_api_requests_total'),
      apiserver: await apiserverRequests(run.cp),
      at: Date.now(),
    };
    const { peakRssMb } = await converge(run, controller, clock);
    const secs = (Date.now() - before.at) / 1000;
    const after = {
      streams: await streamWrites(run.nats),
      all: cpuByProcess(pids),
      cpu: processSample(controller.pid!),
      api: await controllerMetric(run.ports.metrics, 'kedge_controller_api_requests_total'),
      apiserver: await apiserverRequests(run.cp),
    };
    const latencies = [...clock.running].map(([name, at]) => (at - clock.added.get(name)!) / 1000);
    const cpuPct = ((after.cpu.cpuSecs - before.cpu.cpuSecs) / secs) * 100;
    console.log(
      `RESULT N=${run.n}: converged in ${secs.toFixed(1)} s; pod start p50 ${percentile(latencies, 50).toFixed(2)} s, ` +
        `p99 ${percentile(latencies, 99).toFixed(2)} s; controller RSS ${after.cpu.rssMb.toFixed(0)} MB ` +
        `(peak ${Math.max(peakRssMb, after.cpu.rssMb).toFixed(0)} MB), CPU ${cpuPct.toFixed(0)} % of one core; ` +
        `controller API ${((after.api - before.api) / secs).toFixed(0)} req/s (${after.api - before.api} requests), ` +
        `apiserver ${((total(after.apiserver) - total(before.apiserver)) / secs).toFixed(0)} req/s from all clients`,
    );
    console.log(`  apiserver requests: ${topRequests(before.apiserver, after.apiserver)}`);
    console.log(`  JetStream writes: ${topRequests(before.streams, after.streams)}`);
    const metrics = await (await fetch(`http://127.0.0.1:${run.ports.metrics}/metrics`)).text();
    writeFileSync(path.join(run.dir, 'controller-metrics.txt'), metrics);
    console.log(`  CPU during convergence: ${cpuShare(before.all, after.all, secs)}`);
  } finally {
    pods.stop();
    nodes.stop();
  }
}

async function runFleet(n: number): Promise<void> {
  const tag = `N=${n}`;
  const dir = await mkdtemp(path.join(tmpdir(), `kedge-bench-fleet-${n}-`));
  say(tag, `logs in ${dir}`);
  const binDir = await ensureBinaries();
  const cp = await stage(tag, 'control plane', 180_000, () =>
    startControlPlane({ binDir, logDir: path.join(dir, 'control-plane') }),
  );
  const run: Run = {
    n,
    tag,
    dir,
    cp,
    client: KubeClient.fromConfig(cp.kubeconfigPath),
    procs: [],
    ports: { hub: await freePort(), kubelet: await freePort(), metrics: await freePort() },
    nats: await startNats({ dataDir: path.join(dir, 'nats'), binary: await ensureNatsServer() }),
  };
  try {
    await installCrds(cp.binDir, cp.kubeconfigPath);
    for (const ns of ['kedge-system', NAMESPACE])
      await kubectl(cp.binDir, cp.kubeconfigPath, ['create', 'namespace', ns]);
    writeFileSync(path.join(dir, 'ca.pem'), cp.ca.certPem);
    const controller = startControllerProcess(run);
    await stage(tag, 'controller ready', 60_000, (signal) =>
      pollUntil(
        tag,
        async () => {
          const res = await fetch(`http://127.0.0.1:${run.ports.metrics}/readyz`);
          return { done: res.ok, progress: `readyz ${res.status}` };
        },
        250,
        signal,
      ),
    );
    const keys = await createDevices(run);
    await startFleet(run, keys);
    await measure(run, controller);
  } finally {
    await stopAll(run);
  }
}

async function stopAll(run: Run): Promise<void> {
  for (const p of run.procs) {
    if (p.exitCode !== null || p.signalCode !== null) continue;
    p.kill('SIGTERM');
    const exited = new Promise((r) => p.once('exit', r));
    await Promise.race([exited, sleep(10_000)]);
    if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  }
  await run.nats.stop();
  await run.cp.stop();
}

const sizes = process.argv
  .slice(2)
  .map(Number)
  .filter((x) => x > 0);
console.log(
  'fleet convergence: 3-module EdgeDeployment over N hollow devices (real agent + cloud link, in-memory runtime)',
);
console.log(
  'targets (cloud plane): N=1000 converges in <= 30 s; pod start p99 <= 2 s; print the N=5000 figures',
);
console.log(
  `load average at start: ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`,
);
for (const n of sizes.length ? sizes : [100, 300, 1000]) await runFleet(n);
