// A real engine restart: dockerd stops every module, then `kedge node` must bring them all back.
import { readFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { procStartOf } from '../../src/edgenode/agent/boot.js';
import { dockerResponds, ensureDocker } from '../../src/localcluster/docker.js';
import { PACKAGE_ROOT } from '../../src/localcluster/kubectl.js';
import {
  SLEEPER,
  cleanupDevice,
  containersOf,
  manifest,
  sleep,
  uniqueId,
  waitFor,
} from './helpers.js';
import { startNode, type NodeProcess } from './node-process.js';

const DOCKERD_PID_FILE = '/var/run/docker.pid';
/** dockerd stops containers with a 10 s grace, then shuts down. */
const DOCKERD_STOP_TIMEOUT_MS = 60_000;
const ARTIFACTS = path.join(PACKAGE_ROOT, '.test-artifacts');
const MODULES = ['never', 'onfailure', 'onunhealthy', 'always'];

/** Stops the real dockerd (SIGTERM, as at shutdown) and waits until its process is gone. */
async function stopDockerd(): Promise<void> {
  const pid = Number((await readFile(DOCKERD_PID_FILE, 'utf8')).trim());
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + DOCKERD_STOP_TIMEOUT_MS;
  while ((await procStartOf(pid)) !== undefined) {
    if (Date.now() > deadline) throw new Error('dockerd did not stop');
    await sleep(200);
  }
}

describe('kedge node after a real engine restart', () => {
  let dir: string;
  let deviceId: string;
  let network: string;
  const nodes: NodeProcess[] = [];

  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'kedge-engine-restart-'));
    deviceId = uniqueId('ke');
    network = `${deviceId}-net`;
    await writeFile(
      path.join(dir, 'node.yaml'),
      [
        `deviceId: ${deviceId}`,
        `dataDir: ${dir}/data`,
        'agent:',
        `  network: ${network}`,
        `  containerNamePrefix: ${deviceId}-`,
        '  stopGraceSecs: 1',
        '  resyncIntervalSecs: 1',
        'hub:',
        '  enabled: false',
        'metrics:',
        '  port: 0',
      ].join('\n'),
    );
    const policies = ['never', 'on-failure', 'on-unhealthy', 'always'];
    const modules = Object.fromEntries(
      MODULES.map((m, i) => [m, { cmd: SLEEPER, restartPolicy: policies[i]! }]),
    );
    await writeFile(path.join(dir, 'deployment.json'), JSON.stringify(manifest(modules)));
  });

  afterEach(async () => {
    for (const node of nodes.splice(0)) {
      node.child.kill('SIGKILL');
      await node.exited;
    }
    await ensureDocker(ARTIFACTS);
    await cleanupDevice(deviceId, network);
    await rm(dir, { recursive: true, force: true });
  });

  function start(extra: string[]): NodeProcess {
    const node = startNode(['--config', path.join(dir, 'node.yaml'), ...extra]);
    nodes.push(node);
    return node;
  }

  async function running(): Promise<string[]> {
    return [...(await containersOf(deviceId)).values()]
      .filter((c) => c.running)
      .map((c) => c.module)
      .sort();
  }

  it('restarts modules with never and on-failure policies that the engine stopped (exit 0 on SIGTERM)', async () => {
    const first = start(['--manifest', path.join(dir, 'deployment.json')]);
    await first.started();
    await waitFor('4 modules running', async () => (await running()).length === 4);
    first.child.kill('SIGTERM');
    expect(await first.exited).toBe(0);

    try {
      await stopDockerd();
    } finally {
      await ensureDocker(ARTIFACTS);
    }
    expect(await dockerResponds()).toBe(true);
    expect(await running()).toEqual([]);

    const second = start([]);
    await second.started();
    await waitFor('every module back', async () => (await running()).length === 4, 30_000);
    const status = await second.status();
    expect(MODULES.map((m) => status.modules[m]?.runtimeStatus)).toEqual(
      MODULES.map(() => 'running'),
    );
    expect(MODULES.map((m) => status.modules[m]?.restartCount)).toEqual([0, 0, 0, 0]);
    expect(second.lines.some((l) => String(l.msg).includes('engine restarted'))).toBe(true);
  });
});
