/**
 * Fleet convergence with hollow devices (the real agent and cloud link, the container runtime
 * simulated in memory) against the real control plane and a real `kedge controller` process.
 * For each fleet size N: apply an EdgeDeployment of 3 modules targeting every device and time
 * it until all 3N pods run and reportedSuccessfulCount = N.
 *
 * Usage: npm run bench -- fleet-convergence [N …]   (default 100 300 1000)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { KubeClient, Resources, type KubeObject } from '../src/controller/kube/client.js';
import { startControlPlane } from '../src/localcluster/control-plane.js';
import { installCrds, kubectl, PACKAGE_ROOT } from '../src/localcluster/kubectl.js';
import { freePort } from '../src/localcluster/ports.js';

const CLI = path.join(PACKAGE_ROOT, 'dist/cli/main.js');
const HOLLOW = path.join(PACKAGE_ROOT, 'dist-bench/bench/fleet/hollow-fleet.js');
const TIMEOUT_MS = 15 * 60_000;

interface Sample {
  rssMb: number;
  cpuSecs: number;
}

function processSample(pid: number): Sample {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  const ticks = Number(stat[11]) + Number(stat[12]);
  return { rssMb: rssKb / 1024, cpuSecs: ticks / 100 };
}

async function apiRequests(metricsPort: number): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  return [...text.matchAll(/^kedge_controller_api_requests_total\{[^}]*\} (\d+)/gm)].reduce(
    (n, m) => n + Number(m[1]),
    0,
  );
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined>,
  intervalMs = 500,
): Promise<T> {
  const deadline = Date.now() + TIMEOUT_MS;
  while (Date.now() < deadline) {
    const v = await check().catch(() => undefined);
    if (v !== undefined) return v;
    await sleep(intervalMs);
  }
  throw new Error(`timed out: ${what}`);
}

async function runFleet(n: number): Promise<void> {
  const cp = await startControlPlane({});
  const dir = await mkdtemp(path.join(tmpdir(), 'kedge-bench-fleet-'));
  const procs: ChildProcess[] = [];
  try {
    await installCrds(cp.binDir, cp.kubeconfigPath);
    await kubectl(cp.binDir, cp.kubeconfigPath, ['create', 'namespace', 'kedge-system']);
    await kubectl(cp.binDir, cp.kubeconfigPath, ['create', 'namespace', 'fleet']);
    writeFileSync(path.join(dir, 'ca.pem'), cp.ca.certPem);
    const ports = { hub: await freePort(), kubelet: await freePort(), metrics: await freePort() };
    const controller = spawn(
      process.execPath,
      [
        CLI,
        'controller',
        '--kubeconfig',
        cp.kubeconfigPath,
        '--no-leader-elect',
        '--hub-port',
        String(ports.hub),
        '--kubelet-port',
        String(ports.kubelet),
        '--metrics-port',
        String(ports.metrics),
        '--client-ca-file',
        path.join(dir, 'ca.pem'),
        '--concurrency',
        '8',
      ],
      { stdio: 'ignore', env: { ...process.env, KEDGE_LOG_LEVEL: 'warn' } },
    );
    procs.push(controller);
    const client = KubeClient.fromConfig(cp.kubeconfigPath);
    const devices = Array.from({ length: n }, (_, i) => ({
      apiVersion: 'kedge.io/v1alpha1',
      kind: 'EdgeDevice',
      metadata: { name: `hollow-${i}`, namespace: 'fleet', labels: { fleet: 'bench' } },
      spec: {},
    }));
    await kubectl(
      cp.binDir,
      cp.kubeconfigPath,
      ['apply', '-f', '-'],
      JSON.stringify({ apiVersion: 'v1', kind: 'List', items: devices }),
    );
    const keys = await waitFor('device keys', async () => {
      const list = await client.list<KubeObject & { data?: Record<string, string> }>(
        Resources.secrets('fleet'),
        { labelSelector: 'kedge.io/device' },
      );
      return list.items.length === n ? list.items : undefined;
    });
    const ca = await waitFor(
      'controller CA',
      async () =>
        (
          await client.find<KubeObject & { data?: Record<string, string> }>(
            Resources.secrets('kedge-system'),
            'kedge-ca',
          )
        )?.data?.['ca.crt'],
    );
    const fleetInput = {
      url: `mqtts://localhost:${ports.hub}`,
      caPem: Buffer.from(ca, 'base64').toString(),
      devices: keys.map((s) => ({
        namespace: 'fleet',
        device: s.metadata.labels!['kedge.io/device']!,
        key: Buffer.from(s.data!.primaryKey!, 'base64').toString(),
      })),
    };
    writeFileSync(path.join(dir, 'fleet.json'), JSON.stringify(fleetInput));
    const fleet = spawn(
      process.execPath,
      ['--max-old-space-size=8192', HOLLOW, path.join(dir, 'fleet.json')],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    procs.push(fleet);
    await new Promise<void>((resolve) =>
      fleet.stdout.on('data', (c: Buffer) => c.toString().includes('FLEET_READY') && resolve()),
    );
    await waitFor(
      'every node Ready',
      async () => {
        const nodes = await client.list<
          KubeObject & { status?: { conditions?: { type: string; status: string }[] } }
        >(Resources.nodes, { labelSelector: 'type=virtual-kubelet' });
        const ready = nodes.items.filter((x) =>
          x.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
        ).length;
        return ready === n ? true : undefined;
      },
      1000,
    );
    const before = {
      cpu: processSample(controller.pid!),
      api: await apiRequests(ports.metrics),
      at: Date.now(),
    };
    const deployment = {
      apiVersion: 'kedge.io/v1alpha1',
      kind: 'EdgeDeployment',
      metadata: { name: 'three', namespace: 'fleet' },
      spec: {
        selector: { matchLabels: { fleet: 'bench' } },
        modules: ['a', 'b', 'c'].map((m) => ({ name: m, image: `bench/${m}:1` })),
      },
    };
    await kubectl(cp.binDir, cp.kubeconfigPath, ['apply', '-f', '-'], JSON.stringify(deployment));
    let peakRss = 0;
    await waitFor(
      'convergence',
      async () => {
        peakRss = Math.max(peakRss, processSample(controller.pid!).rssMb);
        const d = await client.get<KubeObject & { status?: { reportedSuccessfulCount?: number } }>(
          Resources.edgeDeployments('fleet'),
          'three',
        );
        if (d.status?.reportedSuccessfulCount !== n) return undefined;
        const pods = await client.list<KubeObject & { status?: { phase?: string } }>(
          Resources.pods('fleet'),
        );
        return pods.items.filter((p) => p.status?.phase === 'Running').length === 3 * n
          ? true
          : undefined;
      },
      250,
    );
    const convergeSecs = (Date.now() - before.at) / 1000;
    const after = { cpu: processSample(controller.pid!), api: await apiRequests(ports.metrics) };
    const pods = await client.list<
      KubeObject & { status?: { conditions?: { type: string; lastTransitionTime?: string }[] } }
    >(Resources.pods('fleet'));
    const latencies = pods.items.map((p) => {
      const ready = p.status?.conditions?.find((c) => c.type === 'Ready')?.lastTransitionTime;
      return (Date.parse(ready ?? '') - Date.parse(p.metadata.creationTimestamp!)) / 1000;
    });
    const cpuPct = ((after.cpu.cpuSecs - before.cpu.cpuSecs) / convergeSecs) * 100;
    console.log(
      `N=${n}: converged in ${convergeSecs.toFixed(1)} s; pod start p50 ${percentile(latencies, 50).toFixed(1)} s, p99 ${percentile(latencies, 99).toFixed(1)} s; ` +
        `controller RSS ${after.cpu.rssMb.toFixed(0)} MB (peak ${peakRss.toFixed(0)} MB), CPU ${cpuPct.toFixed(0)} %; ` +
        `API ${((after.api - before.api) / convergeSecs).toFixed(0)} req/s`,
    );
  } finally {
    for (const p of procs) p.kill('SIGTERM');
    await sleep(500);
    await cp.stop();
  }
}

const sizes = process.argv
  .slice(2)
  .map(Number)
  .filter((x) => x > 0);
console.log(
  'fleet convergence: 3-module EdgeDeployment over N hollow devices (real agent + cloud link, in-memory runtime)',
);
console.log('targets: N=1000 converges in <= 60 s; pod start p99 <= 5 s; controller RSS <= 300 MB');
for (const n of sizes.length ? sizes : [100, 300, 1000]) await runFleet(n);
