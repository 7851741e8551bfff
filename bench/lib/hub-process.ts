// Benchmark helpers: a hub as its own process (so it does not share the load generator's event
// loop, as Mosquitto does not), module keys written up front, percentiles.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { createSasToken, resourceUri } from '../../src/common/iothub/index.js';
import type { HubOptionsInput } from '../../src/edgenode/hub/index.js';
import { fileURLToPath } from 'node:url';

/** The hub entry compiled next to this file by the bench build. */
const STANDALONE = fileURLToPath(new URL('../../src/edgenode/hub/standalone.js', import.meta.url));

export const IOTHUB = 'kedge.local';
export const DEVICE = 'edge1';

export interface HubProcess {
  child: ChildProcess;
  ports: { tls: number; plain: number | null; metrics: number };
  dataDir: string;
  /** Milliseconds from spawn to "ready". */
  startMs: number;
}

export function benchDir(name: string): string {
  return mkdtempSync(path.join(tmpdir(), `kedge-bench-${name}-`));
}

/** Writes module identities so raw MQTT clients can sign tokens; returns module → key. */
export function writeModuleKeys(dataDir: string, modules: string[]): Map<string, string> {
  mkdirSync(dataDir, { recursive: true });
  const creds = modules.map((moduleId) => ({
    moduleId,
    generationId: randomUUID(),
    key: randomBytes(32).toString('base64'),
  }));
  writeFileSync(path.join(dataDir, 'module-identities.json'), JSON.stringify(creds));
  return new Map(creds.map((c) => [c.moduleId, c.key]));
}

export function token(key: string, deviceId: string, moduleId?: string): string {
  return createSasToken({ resource: resourceUri(IOTHUB, deviceId, moduleId), keyBase64: key });
}

export function username(clientId: string): string {
  return `${IOTHUB}/${clientId}/?api-version=2021-04-12`;
}

export async function spawnHub(
  options: HubOptionsInput,
  nodeArgs: string[] = [],
): Promise<HubProcess> {
  const config = path.join(options.dataDir, '..', `hub-${path.basename(options.dataDir)}.json`);
  writeFileSync(
    config,
    JSON.stringify({
      host: '127.0.0.1',
      workloadPort: null,
      methodsPort: null,
      workloadSocket: null,
      iotHubHostName: IOTHUB,
      ...options,
    }),
  );
  const started = Date.now();
  const profile = process.env.KEDGE_BENCH_CPU_PROF
    ? ['--cpu-prof', `--cpu-prof-dir=${path.join(options.dataDir, '..', 'cpu-prof')}`]
    : [];
  const extra = process.env.KEDGE_BENCH_HUB_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
  const child = spawn(process.execPath, [...profile, ...extra, ...nodeArgs, STANDALONE, config], {
    env: { ...process.env, KEDGE_HUB_METRICS_PORT: '0', KEDGE_LOG_LEVEL: 'error' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  // A bench that dies (or is stopped) takes its hub with it instead of leaving it running.
  const orphaned = (): void => void child.kill('SIGKILL');
  process.once('exit', orphaned);
  child.once('exit', () => process.off('exit', orphaned));
  const lines = readline.createInterface({ input: child.stdout });
  for await (const line of lines) {
    if (!line.startsWith('KEDGE_HUB_READY ')) continue;
    const ports = JSON.parse(line.slice('KEDGE_HUB_READY '.length)) as HubProcess['ports'];
    return { child, ports, dataDir: options.dataDir, startMs: Date.now() - started };
  }
  throw new Error('hub exited before it was ready');
}

export async function stopHub(hub: HubProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (hub.child.exitCode !== null) return;
  const exited = new Promise((r) => hub.child.once('exit', r));
  hub.child.kill(signal);
  await exited;
}

export async function metric(port: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(name));
  return line ? Number(line.split(' ').pop()) : 0;
}

export function rssKb(pid: number, readFile: (p: string) => string): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFile(`/proc/${pid}/status`));
  return m ? Number(m[1]) : 0;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export function fmt(n: number, digits = 0): string {
  return n.toLocaleString('en-US', {
    maximumFractionDigits: digits,
    minimumFractionDigits: digits,
  });
}
