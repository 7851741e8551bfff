// The real `kedge node` process: adoption after kill -9, SIGTERM behaviour, offline restart.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SLEEPER, cleanupDevice, containersOf, manifest, uniqueId, waitFor } from './helpers.js';
import { startNode, type NodeProcess } from './node-process.js';

describe('kedge node (real process) on a real dockerd', () => {
  let dir: string;
  let deviceId: string;
  let network: string;
  let args: string[];
  const nodes: NodeProcess[] = [];

  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'kedge-node-cli-'));
    deviceId = uniqueId('kc');
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
        'metrics:',
        '  port: 0',
      ].join('\n'),
    );
    await writeFile(
      path.join(dir, 'deployment.json'),
      JSON.stringify(
        manifest({
          one: { cmd: SLEEPER, startupOrder: 1 },
          two: { cmd: SLEEPER, startupOrder: 2 },
          three: { cmd: SLEEPER, startupOrder: 3 },
        }),
      ),
    );
    args = ['--config', path.join(dir, 'node.yaml')];
  });

  afterEach(async () => {
    for (const node of nodes.splice(0)) {
      node.child.kill('SIGKILL');
      await node.exited;
    }
    await cleanupDevice(deviceId, network);
    await rm(dir, { recursive: true, force: true });
  });

  function start(extra: string[], wrap: string[] = []): NodeProcess {
    const node = startNode([...args, ...extra], wrap);
    nodes.push(node);
    return node;
  }

  async function allRunning(): Promise<boolean> {
    const c = await containersOf(deviceId);
    return c.size === 3 && [...c.values()].every((x) => x.running);
  }

  it('adopts its containers after kill -9: same container IDs and start times', async () => {
    const first = start(['--manifest', path.join(dir, 'deployment.json')]);
    await first.started();
    await waitFor('3 modules running', async () => {
      const s = await first.status();
      return ['one', 'two', 'three'].every((m) => s.modules[m]?.runtimeStatus === 'running');
    });
    const before = await containersOf(deviceId);
    first.child.kill('SIGKILL');
    await first.exited;

    const second = start(['--manifest', path.join(dir, 'deployment.json')]);
    await second.started();
    const updatedAfter = Date.now() + 2500; // let two resync passes run (resync is 1 s)
    await waitFor(
      '2 s of reconciling',
      async () => Date.parse((await second.status()).updatedAtUtc) > updatedAfter,
    );
    const s = await second.status();
    expect(['one', 'two', 'three'].map((m) => s.modules[m]!.runtimeStatus)).toEqual([
      'running',
      'running',
      'running',
    ]);
    expect(await containersOf(deviceId)).toEqual(before);
    expect(s.modules.one!.instanceId).toBe(before.get('one')!.id);
    const metrics = await (await fetch(`${await second.started()}/metrics`)).text();
    expect(metrics).toContain('kedge_agent_modules{state="running"} 3');
    expect(metrics).toMatch(/kedge_agent_reconcile_duration_seconds_count [1-9]/);
  });

  it('leaves modules running on SIGTERM, stops them with --stop-modules-on-exit, and brings persisted modules back offline without a manifest', async () => {
    const first = start(['--manifest', path.join(dir, 'deployment.json')]);
    await first.started();
    await waitFor('3 running', allRunning);
    first.child.kill('SIGTERM');
    expect(await first.exited).toBe(0);
    expect(await allRunning()).toBe(true);

    const second = start(['--stop-modules-on-exit']);
    await second.started();
    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);
    const stopped = await containersOf(deviceId);
    expect([...stopped.values()].map((c) => c.running)).toEqual([false, false, false]);

    // A reboot that also lost a container; no network (own network namespace) and no manifest.
    const { docker } = await import('./helpers.js');
    await docker(['rm', '-f', stopped.get('two')!.id]);
    const offline = start(['--metrics-port', '0'], ['unshare', '--net']);
    await waitFor('persisted modules back', allRunning, 30_000);
    const back = await containersOf(deviceId);
    expect(back.get('one')!.id).toBe(stopped.get('one')!.id);
    expect(back.get('two')!.id).not.toBe(stopped.get('two')!.id);
    expect(offline.lines.some((l) => l.msg === 'restored desired state')).toBe(true);
    offline.child.kill('SIGTERM');
    expect(await offline.exited).toBe(0);
  });

  it('rejects a malformed manifest on the command line with one line and touches nothing', async () => {
    await writeFile(path.join(dir, 'bad.json'), '{"modulesContent": {"$edgeAgent": {}}}');
    const node = start(['--manifest', path.join(dir, 'bad.json')]);
    expect(await node.exited).toBe(1);
    const text = node.lines.map((l) => l.msg).join('\n');
    expect(text).toBe(
      'kedge: invalid deployment manifest: modulesContent.$edgeAgent["properties.desired"]: required',
    );
    expect((await containersOf(deviceId)).size).toBe(0);
  });
});
