// Footprint: RSS and CPU% of a real `kedge node` process idle with 5 modules, after 60 s.
// Target ≤ 75 MB RSS. Needs `npm run build` (runs dist/cli/main.js).
//   npm run bench -- agent-footprint [idleSecs=60]
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { cleanup, containersWith, run, sleep, sleeperManifest, until } from './bench-util.js';

const MODULES = 5;
const idleSecs = Number(process.argv[2] ?? 60);
/** Linux reports CPU times in clock ticks; 100 per second on every common configuration. */
const CLOCK_TICKS_PER_SEC = 100;
const cli = path.resolve(import.meta.dirname, '../../dist/cli/main.js');
if (!existsSync(cli)) throw new Error(`${cli} is missing: run npm run build first`);

async function rssKiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)![1]);
}

async function cpuTicks(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]); // utime + stime
}

const dir = await mkdtemp(path.join(tmpdir(), 'kedge-footprint-'));
const deviceId = `bench-footprint-${process.pid}`;
const network = `${deviceId}-net`;
await writeFile(path.join(dir, 'deployment.json'), JSON.stringify(sleeperManifest(MODULES)));
await writeFile(
  path.join(dir, 'node.yaml'),
  [
    `deviceId: ${deviceId}`,
    `dataDir: ${dir}/data`,
    'logLevel: warn',
    'agent:',
    `  network: ${network}`,
    `  containerNamePrefix: ${deviceId}-`,
    'metrics:',
    '  port: 0',
  ].join('\n'),
);
const child = spawn(
  process.execPath,
  [
    cli,
    'node',
    '--config',
    path.join(dir, 'node.yaml'),
    '--manifest',
    path.join(dir, 'deployment.json'),
  ],
  {
    stdio: 'inherit',
  },
);
try {
  await until(async () => {
    const ids = await containersWith(`io.kedge.device=${deviceId}`);
    if (ids.length < MODULES) return false;
    const { stdout } = await run('docker', ['inspect', '--format', '{{.State.Running}}', ...ids]);
    return stdout.split('\n').filter((s) => s === 'true').length === MODULES;
  });
  const ticksBefore = await cpuTicks(child.pid!);
  const startedMs = Date.now();
  await sleep(idleSecs * 1000);
  const cpuSecs = (await cpuTicks(child.pid!)) - ticksBefore;
  const wallSecs = (Date.now() - startedMs) / 1000;
  const rssBytes = (await rssKiB(child.pid!)) * 1024;
  console.log(
    `agent-footprint: kedge node (agent only), idle with ${MODULES} running modules, after ${idleSecs} s`,
  );
  console.log(
    `  RSS: ${(rssBytes / 1e6).toFixed(1)} MB = ${(rssBytes / 2 ** 20).toFixed(1)} MiB (target ≤ 75 MB)`,
  );
  console.log(
    `  CPU: ${((cpuSecs / CLOCK_TICKS_PER_SEC / wallSecs) * 100).toFixed(2)} % of one core over the idle window`,
  );
} finally {
  child.kill('SIGTERM');
  await new Promise((resolve) => child.on('exit', resolve));
  await cleanup(`io.kedge.device=${deviceId}`, network);
  await rm(dir, { recursive: true, force: true });
}
