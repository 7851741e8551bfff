/**
 * Cloud hub connections: RSS of the controller's cloud hub per connected idle device. The hub
 * (the CloudHub class `kedge controller` runs) lives in a process of its own; a second process
 * connects devices with the real CloudLink of `kedge node` (TLS, SAS token, four subscriptions,
 * heartbeats every 10 s). The hub's RSS is read from /proc before and after each step, after a
 * settle time and a full GC in the hub process.
 *
 * Usage: npm run bench -- cloudhub-connections [N …]   (default 1000 5000, cumulative)
 *        KEDGE_BENCH_HEAP_SNAPSHOT=<prefix> also writes a heap snapshot of the hub at each step.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { createCa, issueCertificate } from '../src/common/pki.js';
import { PACKAGE_ROOT } from '../src/localcluster/kubectl.js';
import { ensureNatsServer, startNats } from '../src/localcluster/nats.js';
import { say } from './fleet/stages.js';

const HUB = path.join(PACKAGE_ROOT, 'dist-bench/bench/cloudhub/hub-host.js');
const SWARM = path.join(PACKAGE_ROOT, 'dist-bench/bench/cloudhub/device-swarm.js');
/** After connecting, wait this long (two heartbeat rounds) before sampling. */
const SETTLE_MS = 20_000;
/** Samples per step; the median is used, as RSS moves a little between samples. */
const SAMPLES = 3;
const SAMPLE_GAP_MS = 2_000;
const TAG = 'cloudhub';

interface MemorySample {
  connected: number;
  rssKb: number;
  heapUsedKb: number;
  externalKb: number;
  arrayBuffersKb: number;
  procRssKb: number;
}

/**
 * Spawns a node process with the open-files limit raised to the hard limit: each connection is
 * a socket on both sides, and 5,000 of them pass the usual soft limit of 1,024.
 */
function spawnNode(script: string, nodeArgs: string[], env: Record<string, string>): ChildProcess {
  const command = `ulimit -n "$(ulimit -Hn)" && exec "$0" "$@"`;
  return spawn('sh', ['-c', command, process.execPath, ...nodeArgs, script], {
    stdio: ['pipe', 'pipe', 'inherit'],
    env: { ...process.env, ...env },
  });
}

/** Lines a child prints, awaited one prefix at a time. */
function lineReader(child: ChildProcess): (prefix: string, limitMs: number) => Promise<string> {
  const waiting: { prefix: string; resolve: (line: string) => void }[] = [];
  const seen: string[] = [];
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const i = waiting.findIndex((w) => line.startsWith(w.prefix));
    if (i >= 0) waiting.splice(i, 1)[0]!.resolve(line);
    else seen.push(line);
  });
  return (prefix, limitMs) => {
    const early = seen.findIndex((l) => l.startsWith(prefix));
    if (early >= 0) return Promise.resolve(seen.splice(early, 1)[0]!);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no "${prefix}" within ${limitMs} ms`)),
        limitMs,
      );
      waiting.push({
        prefix,
        resolve: (line) => {
          clearTimeout(timer);
          resolve(line);
        },
      });
    });
  };
}

function procRssKb(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
}

async function sampleHub(
  hub: ChildProcess,
  next: (prefix: string, limitMs: number) => Promise<string>,
): Promise<MemorySample> {
  const samples: MemorySample[] = [];
  for (let i = 0; i < SAMPLES; i++) {
    if (i > 0) await sleep(SAMPLE_GAP_MS);
    hub.stdin!.write('sample\n');
    const line = await next('SAMPLE ', 30_000);
    samples.push({
      ...(JSON.parse(line.slice('SAMPLE '.length)) as MemorySample),
      procRssKb: procRssKb(hub.pid!),
    });
  }
  samples.sort((a, b) => a.procRssKb - b.procRssKb);
  return samples[Math.floor(samples.length / 2)]!;
}

function perConnection(base: MemorySample, now: MemorySample): string {
  const n = now.connected - base.connected;
  const per = (field: keyof MemorySample): string => ((now[field] - base[field]) / n).toFixed(1);
  return (
    `${n} devices: hub RSS ${(base.procRssKb / 1024).toFixed(1)} → ${(now.procRssKb / 1024).toFixed(1)} MiB = ` +
    `${per('procRssKb')} KB per connection (target ≤ 25 KB); of which JS heap ${per('heapUsedKb')} KB, ` +
    `external ${per('externalKb')} KB (array buffers ${per('arrayBuffersKb')} KB), ` +
    `rest (native: OpenSSL, libuv, allocator) ${((now.procRssKb - base.procRssKb - (now.heapUsedKb - base.heapUsedKb) - (now.externalKb - base.externalKb)) / n).toFixed(1)} KB`
  );
}

const steps = process.argv
  .slice(2)
  .map(Number)
  .filter((x) => x > 0);
const targets = steps.length ? steps : [1000, 5000];
const secret = randomBytes(32).toString('hex');
const ca = createCa('kedge-bench-ca');
const serving = issueCertificate(ca, {
  commonName: 'kedge-cloud-hub',
  altNames: ['localhost', '127.0.0.1'],
  usage: ['server'],
});
console.log('cloud hub connections: idle devices over TLS with the real cloud link');
const nats = await startNats({
  dataDir: await mkdtemp(path.join(tmpdir(), 'kedge-bench-nats-')),
  binary: await ensureNatsServer(),
});
const hub = spawnNode(HUB, ['--expose-gc'], {
  KEDGE_BENCH_SECRET: secret,
  KEDGE_BENCH_TLS: JSON.stringify(serving),
  KEDGE_BENCH_NATS_URL: nats.url,
  KEDGE_BENCH_DEVICES: String(Math.max(...targets)),
});
const fromHub = lineReader(hub);
const port = Number((await fromHub('HUB_READY', 30_000)).split(' ')[1]);
const swarm = spawnNode(SWARM, ['--max-old-space-size=8192'], {
  KEDGE_BENCH_SECRET: secret,
  KEDGE_BENCH_URL: `mqtts://localhost:${port}`,
  KEDGE_BENCH_CA: ca.certPem,
});
const fromSwarm = lineReader(swarm);
try {
  await fromSwarm('SWARM_READY', 30_000);
  await sleep(SETTLE_MS / 4);
  const base = await sampleHub(hub, fromHub);
  say(
    TAG,
    `baseline: hub RSS ${(base.procRssKb / 1024).toFixed(1)} MiB, heap ${base.heapUsedKb} KB`,
  );
  let connected = 0;
  let previous: MemorySample | undefined;
  for (const target of targets) {
    const started = Date.now();
    swarm.stdin!.write(`connect ${connected} ${target}\n`);
    const answer = await fromSwarm('', 20 * 60_000);
    if (!answer.startsWith('CONNECTED')) throw new Error(`swarm: ${answer}`);
    connected = target;
    say(
      TAG,
      `${target} devices connected in ${((Date.now() - started) / 1000).toFixed(1)} s; settling`,
    );
    await sleep(SETTLE_MS);
    const now = await sampleHub(hub, fromHub);
    if (now.connected !== target) say(TAG, `note: hub counts ${now.connected} connected`);
    console.log(`RESULT from idle: ${perConnection(base, now)}`);
    if (process.env.KEDGE_BENCH_HEAP_SNAPSHOT) {
      hub.stdin!.write(
        `snapshot ${process.env.KEDGE_BENCH_HEAP_SNAPSHOT}-${target}.heapsnapshot\n`,
      );
      say(TAG, (await fromHub('SNAPSHOT', 120_000)).toLowerCase());
    }
    if (previous) console.log(`RESULT marginal, ${perConnection(previous, now)}`);
    previous = now;
  }
} finally {
  swarm.stdin!.end();
  hub.stdin!.end();
  await sleep(2_000);
  for (const child of [swarm, hub]) if (child.exitCode === null) child.kill('SIGKILL');
}
await nats.stop();
process.exit(0);
