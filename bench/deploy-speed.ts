// Deploy speed: manifest applied → 10 modules running, against `docker run -d` of the same 10
// containers one after another, in the same run. Prints both and the ratio (target ≤ 1.2).
//   npm run bench -- deploy-speed [rounds=5]
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Agent, DockerRuntime } from '../src/edgenode/agent/index.js';
import { BUSYBOX, SLEEPER, cleanup, median, run, sleeperManifest } from './bench-util.js';

const MODULES = 10;
const rounds = Number(process.argv[2] ?? 5);

async function agentRound(round: number): Promise<number> {
  const deviceId = `bench-deploy-${process.pid}-${round}`;
  const network = `${deviceId}-net`;
  const dataDir = await mkdtemp(path.join(tmpdir(), 'kedge-bench-'));
  const runtime = new DockerRuntime({
    deviceId,
    network,
    gatewayHostName: 'gw',
    containerNamePrefix: `${deviceId}-`,
  });
  const agent = new Agent({ deviceId, dataDir, runtime, stopGraceMs: 1000 });
  await agent.start(); // creates the network: not part of the measured deploy
  const started = performance.now();
  await agent.apply(sleeperManifest(MODULES));
  while (
    Object.values(agent.snapshot().modules).filter((m) => m.runtimeStatus === 'running').length <
    MODULES
  ) {
    await agent.reconcileNow();
  }
  const elapsedMs = performance.now() - started;
  await agent.stop();
  await cleanup(`io.kedge.device=${deviceId}`, network);
  await rm(dataDir, { recursive: true, force: true });
  return elapsedMs;
}

async function dockerRunRound(round: number): Promise<number> {
  const name = `bench-dockerrun-${process.pid}-${round}`;
  const network = `${name}-net`;
  await run('docker', ['network', 'create', network]);
  const started = performance.now();
  for (let i = 0; i < MODULES; i += 1) {
    await run('docker', [
      'run',
      '-d',
      '--name',
      `${name}-m${i}`,
      '--hostname',
      `m${i}`,
      '--network',
      network,
      '--label',
      `bench=${name}`,
      BUSYBOX,
      ...SLEEPER,
    ]);
  }
  const elapsedMs = performance.now() - started;
  await cleanup(`bench=${name}`, network);
  return elapsedMs;
}

const agentMs: number[] = [];
const dockerMs: number[] = [];
for (let round = 0; round < rounds; round += 1) {
  // Alternate which goes first so neither always runs on a warmer engine.
  if (round % 2 === 0) {
    agentMs.push(await agentRound(round));
    dockerMs.push(await dockerRunRound(round));
  } else {
    dockerMs.push(await dockerRunRound(round));
    agentMs.push(await agentRound(round));
  }
  console.log(
    `round ${round + 1}: kedge agent ${agentMs.at(-1)!.toFixed(0)} ms, docker run ×${MODULES} ${dockerMs.at(-1)!.toFixed(0)} ms`,
  );
}
const a = median(agentMs);
const d = median(dockerMs);
console.log(`deploy-speed: ${MODULES} modules, median of ${rounds} rounds`);
console.log(`  kedge agent (manifest applied → all running): ${a.toFixed(0)} ms`);
console.log(`  docker run -d, one after another:            ${d.toFixed(0)} ms`);
console.log(`  ratio agent / docker run: ${(a / d).toFixed(2)} (target ≤ 1.2)`);
