// Shared helpers for the agent benchmarks.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';

export const run = promisify(execFile);
export { sleep };

/** Image and command of the benchmark modules: a shell that sleeps and exits on SIGTERM. */
export const BUSYBOX = 'kedge-local/busybox:1';
export const SLEEPER = ['sh', '-c', 'trap "exit 0" TERM; while true; do sleep 1; done'];

/** A deployment manifest with `count` identical sleeper modules `m0…`. */
export function sleeperManifest(count: number): unknown {
  const modules: Record<string, unknown> = {};
  for (let i = 0; i < count; i += 1) {
    modules[`m${i}`] = {
      status: 'running',
      restartPolicy: 'always',
      imagePullPolicy: 'never',
      settings: { image: BUSYBOX, createOptions: JSON.stringify({ Cmd: SLEEPER }) },
    };
  }
  return {
    modulesContent: {
      $edgeAgent: {
        'properties.desired': { schemaVersion: '1.1', runtime: { type: 'docker' }, modules },
      },
    },
  };
}

/** Ids of the containers carrying a label. */
export async function containersWith(label: string): Promise<string[]> {
  const { stdout } = await run('docker', ['ps', '-aq', '--filter', `label=${label}`]);
  return stdout.split('\n').filter(Boolean);
}

/** Removes containers carrying a label, and a network. */
export async function cleanup(label: string, network?: string): Promise<void> {
  const ids = await containersWith(label);
  if (ids.length > 0) await run('docker', ['rm', '-f', ...ids]);
  if (network) await run('docker', ['network', 'rm', network]).catch(() => undefined);
}

/** Polls until `check` is true. */
export async function until(
  check: () => Promise<boolean> | boolean,
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('benchmark condition timed out');
    await sleep(20);
  }
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
