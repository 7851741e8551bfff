import { execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { docker } from '../src/localcluster/docker.js';
import { eventually, startTestCluster, type TestCluster } from './support/cluster.js';
import {
  descendants,
  printedSteps,
  startUp,
  stopAfterFailure,
  waitForTelemetry,
  type UpRun,
} from './support/up.js';

const run = promisify(execFile);

async function sh(command: string, env: NodeJS.ProcessEnv): Promise<string> {
  const { stdout } = await run('sh', ['-c', command], { env, timeout: 60_000 });
  return stdout;
}

/** Running, not merely a zombie waiting for init to reap it. */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

function commandOf(pid: number): string {
  try {
    return `${pid} ${readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ')}`;
  } catch {
    return String(pid);
  }
}

/** The filter forwards only temperature > 25, and the route sends its output upstream. */
function expectFiltered(lines: string[]): void {
  for (const line of lines) {
    expect(line).toContain('default/demo/filter ');
    const body = JSON.parse(line.slice(line.indexOf('{'))) as { temperature: number };
    expect(body.temperature).toBeGreaterThan(25);
  }
}

async function followLogs(command: string, env: NodeJS.ProcessEnv): Promise<void> {
  const child = spawn('sh', ['-c', `exec ${command}`], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  child.stdout.on('data', (c: Buffer) => (text += c.toString()));
  try {
    // The filter logs "forwarded <seq>" for each message it passes on; -f must show new ones.
    const first = await eventually(
      'a forwarded line in kubectl logs -f',
      async () => /forwarded (\d+)/.exec(text)?.[1],
    );
    await eventually('a newer line streamed by kubectl logs -f', async () =>
      [...text.matchAll(/forwarded (\d+)/g)].some((m) => Number(m[1]) > Number(first))
        ? true
        : undefined,
    );
  } finally {
    child.kill();
  }
}

async function interruptAndCheckClean(up: UpRun, before: number[]): Promise<void> {
  up.child.kill('SIGINT');
  const code = await Promise.race([
    up.exited,
    new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 150_000)),
  ]);
  expect(code).toBe(0);
  expect(up.output()).toContain('everything it started is gone');
  // Signalled processes may take a moment to exit.
  await eventually('every process kedge up started to exit', async () =>
    before.some(alive) ? undefined : true,
  ).catch(() => undefined);
  expect(before.filter(alive).map(commandOf)).toEqual([]);
}

describe('kedge up', () => {
  const base = { ...process.env };
  delete base.KUBECONFIG;

  it('brings up a local cluster, a Docker device and the sample; the printed steps work; Ctrl-C removes it all', async () => {
    const home = await mkdtemp(path.join(tmpdir(), 'kedge-up-home-'));
    const up = startUp({ ...base, KEDGE_HOME: home });
    try {
      expectFiltered(await waitForTelemetry(up));
      const output = up.output();
      expect(output).toContain('with the docker runtime');
      const { env, commands } = printedSteps(output, base);
      expect(env.KUBECONFIG).toBeTruthy();

      expect(await sh('kubectl get nodes', env)).toMatch(/demo\.default\.kedge\s+Ready/);
      expect(await sh('kubectl get edgedevices', env)).toMatch(/demo\s+Connected/);
      const pods = await sh('kubectl get pods', env);
      expect(pods).toMatch(/demo-telemetry-sensor-demo\s+1\/1\s+Running/);
      expect(pods).toMatch(/demo-telemetry-filter-demo\s+1\/1\s+Running/);
      const logs = commands.find((c) => c.startsWith('kubectl logs'))!;
      await followLogs(logs, env);
      const ping = commands.find((c) => c.includes(' ping '))!;
      expect(JSON.parse(await sh(ping, env))).toEqual({
        pong: true,
        payload: { from: 'kedge up' },
      });
      // No metrics-server on the local control plane: kedge serves kubectl top itself.
      const row = (pod: string): RegExp => new RegExp(`${pod}\\s+\\d+m\\s+[1-9]\\d*Mi`);
      await eventually(
        'kubectl top pods to show both sample modules',
        async () => {
          const out = await sh('kubectl top pods --no-headers', env).catch(() => '');
          return row('demo-telemetry-sensor-demo').test(out) &&
            row('demo-telemetry-filter-demo').test(out)
            ? true
            : undefined;
        },
        90_000,
      );
      expect(await sh('kubectl top nodes --no-headers', env)).toMatch(
        /^demo\.default\.kedge\s+\d+m/,
      );

      const containers = await docker([
        'ps',
        '--format',
        '{{.Names}}',
        '--filter',
        'name=^kedge-up-',
      ]);
      expect(containers.split('\n').sort()).toEqual(['kedge-up-filter', 'kedge-up-sensor']);
      const processes = await descendants(up.child.pid!);
      // etcd, apiserver, scheduler, kcm, nats-server, node
      expect(processes.length).toBeGreaterThanOrEqual(6);
      expect(processes.map(commandOf).filter((c) => c.includes('nats-server -c'))).toHaveLength(1);
      expect(existsSync(path.join(home, 'up', 'nats', 'jetstream'))).toBe(true);

      await interruptAndCheckClean(up, processes);
      expect(await docker(['ps', '-aq', '--filter', 'name=^kedge-up-'])).toBe('');
      expect(await docker(['network', 'ls', '-q', '--filter', 'name=^kedge-up$'])).toBe('');
      expect(existsSync(path.join(home, 'up', 'device'))).toBe(false);
      expect(existsSync(path.join(home, 'up', 'nats'))).toBe(false);
    } finally {
      await stopAfterFailure(up);
    }
  }, 600_000);

  describe('with KUBECONFIG set', () => {
    let cluster: TestCluster;
    beforeAll(async () => {
      cluster = await startTestCluster('kedge-up');
    }, 180_000);
    afterAll(async () => {
      await cluster?.cp.stop();
    });

    it('uses that cluster, runs the modules as processes, and leaves the cluster as it found it', async () => {
      const home = await mkdtemp(path.join(tmpdir(), 'kedge-up-home-'));
      const env = { ...base, KEDGE_HOME: home, KUBECONFIG: cluster.cp.kubeconfigPath };
      const up = startUp(env, ['--runtime', 'process']);
      try {
        expectFiltered(await waitForTelemetry(up));
        expect(up.output()).toContain(
          `using the cluster of KUBECONFIG=${cluster.cp.kubeconfigPath}`,
        );
        expect(up.output()).toContain('with the process runtime');
        expect(await cluster.kubectlOk(['get', 'nodes'])).toMatch(/demo\.default\.kedge\s+Ready/);
        const { commands } = printedSteps(up.output(), env);
        const invoke = commands.find((c) => c.includes(' setThreshold '))!;
        expect(JSON.parse(await sh(invoke, env))).toEqual({ threshold: 28 });
        const processes = await descendants(up.child.pid!);
        const modules = await run('pgrep', ['-f', 'samples/modules/(sensor|filter).mjs']);
        // Each module is its command under the runtime's wrapper shell.
        expect(modules.stdout.trim().split('\n').length).toBeGreaterThanOrEqual(2);

        await interruptAndCheckClean(up, processes);
        await expect(run('pgrep', ['-f', 'samples/modules/(sensor|filter).mjs'])).rejects.toThrow();
        expect(await cluster.kubectlOk(['get', 'nodes', '-o', 'name'])).toBe('');
        expect(
          await cluster.kubectlOk([
            'get',
            'edgedevices,edgedeployments,routes,pods',
            '-A',
            '-o',
            'name',
          ]),
        ).toBe('');
        // kedge itself (the CRDs) stays installed in a cluster that was there before.
        expect(
          await cluster.kubectlOk(['get', 'crd', 'edgedevices.kedge.io', '-o', 'name']),
        ).toContain('edgedevices.kedge.io');
      } finally {
        await stopAfterFailure(up);
      }
    }, 600_000);
  });
});
