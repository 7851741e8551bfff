// The process runtime passes the same lifecycle tests: start order, restart policy and backoff,
// logs, desired stopped, and adoption of still-running processes after kill -9 of kedge node.
import { execFileSync } from 'node:child_process';
import { chmod, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  Agent,
  DEFAULT_RESTART_SETTINGS,
  coolOffMs,
  type AgentEvent,
} from '../../src/edgenode/agent/index.js';
import { ProcessRuntime } from '../../src/edgenode/agent/process-runtime.js';
import { stringify } from 'yaml';
import { PACKAGE_ROOT } from '../../src/localcluster/kubectl.js';
import { freePort } from '../../src/localcluster/ports.js';
import { manifest, readAll, readUntil, uniqueId, waitFor } from './helpers.js';
import { startNode, type NodeProcess } from './node-process.js';

const LOOP = [
  '/bin/sh',
  '-c',
  'trap "exit 0" TERM; echo up $IOTEDGE_MODULEID; while true; do sleep 0.2; done',
];

/** `kedge node` arguments for a process-runtime device driven by a manifest file. */
function processNodeArgs(manifestFile: string, dataDir: string, deviceId: string): string[] {
  return [
    '--manifest',
    manifestFile,
    '--runtime',
    'process',
    '--data-dir',
    dataDir,
    '--device-id',
    deviceId,
    '--metrics-port',
    '0',
  ];
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('process runtime', () => {
  let dir: string;
  let deviceId: string;
  const agents: Agent[] = [];
  const nodes: NodeProcess[] = [];

  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'kedge-process-'));
    deviceId = uniqueId('kp');
  });
  afterEach(async () => {
    for (const node of nodes.splice(0)) {
      node.child.kill('SIGKILL');
      await node.exited;
    }
    for (const agent of agents.splice(0)) await agent.stop({ stopModules: true });
    // A last agent stops anything a killed node left behind.
    const sweeper = agentFor();
    await sweeper.start();
    await sweeper.apply(manifest({}));
    await sweeper.stop();
    await rm(dir, { recursive: true, force: true });
  });

  function agentFor(restart = DEFAULT_RESTART_SETTINGS, logMaxBytes?: number): Agent {
    const runtime = new ProcessRuntime({
      deviceId,
      dataDir: dir,
      ...(logMaxBytes === undefined ? {} : { logMaxBytes }),
    });
    const identity = {
      environmentFor: (m: string) =>
        Promise.resolve({ IOTEDGE_MODULEID: m, IOTEDGE_DEVICEID: deviceId }),
      removeModule: () => Promise.resolve(),
    };
    const agent = new Agent({
      deviceId,
      dataDir: dir,
      runtime,
      identity,
      restart,
      stopGraceMs: 1000,
      resyncIntervalMs: 1000,
    });
    agents.push(agent);
    return agent;
  }

  it('starts modules in startupOrder, gives them the identity env, and serves their logs', async () => {
    const agent = agentFor();
    await agent.start();
    const order = path.join(dir, 'order.txt');
    // Modules run as nobody: let them reach and append to the file.
    await chmod(dir, 0o711);
    await writeFile(order, '');
    await chmod(order, 0o666);
    const cmd = (name: string) => [
      '/bin/sh',
      '-c',
      `echo ${name} >> ${order}; exec ${LOOP.map((a) => `'${a}'`).join(' ')}`,
    ];
    await agent.apply(
      manifest({
        c: { cmd: cmd('c'), startupOrder: 3 },
        a: { cmd: cmd('a'), startupOrder: 1 },
        b: { cmd: cmd('b'), startupOrder: 2 },
      }),
    );
    await waitFor('all running', () =>
      ['a', 'b', 'c'].every((m) => agent.snapshot().modules[m]?.runtimeStatus === 'running'),
    );
    const starts = ['a', 'b', 'c'].map((m) =>
      Date.parse(agent.snapshot().modules[m]!.lastStartTimeUtc!),
    );
    expect(starts[0]).toBeLessThanOrEqual(starts[1]!);
    expect(starts[1]).toBeLessThanOrEqual(starts[2]!);
    expect(agent.snapshot().device!.runtime.name).toBe('process');
    await waitFor('greeting', async () => (await readAll(await agent.logs('a'))).includes('up a'));
    expect(await readAll(await agent.logs('a', { tail: 1 }))).toBe('up a\n');
    expect(await readAll(await agent.logs('a', { timestamps: true }))).toMatch(
      /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ up a\n$/,
    );
    expect(await readAll(await agent.logs('a', { since: new Date(Date.now() + 5000) }))).toBe('');
    const follow = await agent.logs('b', { follow: true });
    expect(await readUntil(follow, (t) => t.includes('up b'))).toContain('up b');
    follow.destroy();
    expect((await readFile(order, 'utf8')).trim().split('\n').sort()).toEqual(['a', 'b', 'c']);

    await agent.apply(manifest({ a: { cmd: cmd('a'), startupOrder: 1, status: 'stopped' } }));
    await waitFor('a stopped, b and c removed', () => {
      const s = agent.snapshot().modules;
      return s.a?.runtimeStatus === 'stopped' && !s.b && !s.c;
    });
  });

  it('applies restart policies with backoff and gives up after the maximum', async () => {
    const settings = { ...DEFAULT_RESTART_SETTINGS, backoffUnitMs: 200, maxRestarts: 3 };
    const agent = agentFor(settings);
    const delays = new Map<number, number>();
    agent.subscribe((e: AgentEvent) => {
      if (e.type !== 'module' || e.module.name !== 'crasher') return;
      const m = e.module;
      if (m.lastRestartTimeUtc && m.lastExitTimeUtc && !delays.has(m.restartCount)) {
        delays.set(
          m.restartCount,
          Date.parse(m.lastRestartTimeUtc) - Date.parse(m.lastExitTimeUtc),
        );
      }
    });
    await agent.start();
    await agent.apply(
      manifest({
        crasher: { cmd: ['/bin/sh', '-c', 'echo boom; exit 4'], restartPolicy: 'on-failure' },
        done: { cmd: ['/bin/sh', '-c', 'echo finished'], restartPolicy: 'on-failure' },
        steady: { cmd: LOOP },
      }),
    );
    const failed = await waitFor('crasher failed', () => {
      const m = agent.snapshot().modules.crasher;
      return m?.runtimeStatus === 'failed' ? m : undefined;
    });
    expect(failed).toMatchObject({ restartCount: 3, exitCode: 4, reason: 'CrashLoopBackOff' });
    // The wrapper stamps exit times to the second (file mtime), so allow up to 1 s of slack.
    [1, 2, 3].forEach((n) =>
      expect(delays.get(n)!).toBeGreaterThanOrEqual(coolOffMs(n - 1, settings) - 1000),
    );
    expect(agent.snapshot().modules.done).toMatchObject({
      runtimeStatus: 'stopped',
      exitCode: 0,
      restartCount: 0,
    });
    expect(agent.snapshot().modules.steady!.runtimeStatus).toBe('running');
    expect(await readAll(await agent.logs('crasher'))).toBe('boom\nboom\nboom\nboom\n');
  });

  it('runs modules as the unprivileged user nobody by default', async () => {
    const agent = agentFor();
    await agent.start();
    const who = ['/bin/sh', '-c', 'echo uid=$(id -u); exec sleep 60'];
    await agent.apply(manifest({ who: { cmd: who } }));
    const text = await waitFor('uid line', async () => {
      const t = await readAll(await agent.logs('who'));
      return t.includes('uid=') ? t : undefined;
    });
    const nobody = execFileSync('id', ['-u', 'nobody'], { encoding: 'utf8' }).trim();
    expect(nobody).not.toBe('0');
    expect(text).toBe(`uid=${nobody}\n`);
  });

  it('rotates module logs by size, and tail reads across the rotation', async () => {
    const maxBytes = 4096;
    const agent = agentFor(DEFAULT_RESTART_SETTINGS, maxBytes);
    await agent.start();
    const chatty = [
      '/bin/sh',
      '-c',
      'i=0; while true; do i=$((i+1)); echo line-$i; sleep 0.01; done',
    ];
    await agent.apply(manifest({ chatty: { cmd: chatty } }));
    const root = path.join(dir, 'agent', 'process', deviceId);
    const log = await waitFor('instance', async () => {
      const [id] = await readdir(root);
      return id ? path.join(root, id, 'output.log') : undefined;
    });
    await waitFor(
      'two rotations',
      () =>
        stat(`${log}.2`).then(
          () => true,
          () => false,
        ),
      60_000,
    );
    const sizes = await Promise.all(
      [log, `${log}.1`, `${log}.2`].map(async (f) => (await stat(f)).size),
    );
    // The agent checks once a second: a file may pass the limit by one second of output.
    for (const size of sizes) expect(size).toBeLessThan(maxBytes * 4);
    await expect(stat(`${log}.3`)).rejects.toThrow();
    const tail = (await readAll(await agent.logs('chatty', { tail: 50 }))).trim().split('\n');
    expect(tail).toHaveLength(50);
    const numbers = tail.map((l) => Number(/^line-(\d+)$/.exec(l)![1]));
    expect(numbers).toEqual([...numbers].sort((a, b) => a - b));
  });

  it('rejects a module without a command as failed and runs the rest', async () => {
    const agent = agentFor();
    await agent.start();
    await agent.apply(manifest({ nocmd: {}, ok: { cmd: LOOP } }));
    await waitFor('ok running', () => agent.snapshot().modules.ok?.runtimeStatus === 'running');
    expect(agent.snapshot().modules.nocmd).toMatchObject({
      runtimeStatus: 'failed',
      statusDescription: 'the process runtime needs createOptions.Cmd (or Entrypoint)',
    });
  });

  it('adopts still-running module processes after kill -9 of kedge node', async () => {
    const file = path.join(dir, 'deployment.json');
    await writeFile(
      file,
      JSON.stringify(
        manifest({ p1: { cmd: LOOP, startupOrder: 1 }, p2: { cmd: LOOP, startupOrder: 2 } }),
      ),
    );
    const args = processNodeArgs(file, dir, deviceId);
    const first = startNode(args);
    nodes.push(first);
    await first.started();
    const before = await waitFor('both running', async () => {
      const s = await first.status();
      return s.modules.p1?.runtimeStatus === 'running' && s.modules.p2?.runtimeStatus === 'running'
        ? s
        : undefined;
    });
    first.child.kill('SIGKILL');
    await first.exited;
    const second = startNode(args);
    nodes.push(second);
    await second.started();
    const settledAfter = Date.now() + 2500;
    const after = await waitFor('reconciled twice', async () => {
      const s = await second.status();
      return Date.parse(s.updatedAtUtc) > settledAfter ? s : undefined;
    });
    for (const m of ['p1', 'p2']) {
      expect(after.modules[m]).toMatchObject({
        runtimeStatus: 'running',
        instanceId: before.modules[m]!.instanceId,
        lastStartTimeUtc: before.modules[m]!.lastStartTimeUtc,
        restartCount: 0,
      });
    }
    // An adopted process that dies is still noticed and restarted (no exit event: polled).
    const instance = JSON.parse(
      await readFile(
        path.join(dir, 'agent/process', deviceId, after.modules.p1!.instanceId!, 'instance.json'),
        'utf8',
      ),
    ) as { pid: number };
    expect(pidAlive(instance.pid)).toBe(true);
    process.kill(-instance.pid, 'SIGKILL');
    await waitFor(
      'p1 restarted',
      async () => ((await second.status()).modules.p1?.restartCount ?? 0) >= 1,
      40_000,
    );
  });

  it('patches a running SDK module live when only its desired properties change: same PID', async () => {
    const file = path.join(dir, 'deployment.json');
    // The sample filter module with the Azure IoT Node SDK; it logs each desired event it gets.
    const filter = [process.execPath, path.join(PACKAGE_ROOT, 'samples/modules/filter.mjs')];
    const withDesired = (desired: Record<string, unknown>): string => {
      const doc = manifest({ filter: { cmd: filter } }) as {
        modulesContent: Record<string, unknown>;
      };
      doc.modulesContent.filter = { 'properties.desired': desired };
      return JSON.stringify(doc);
    };
    await writeFile(file, withDesired({ threshold: 30, label: 'first' }));
    const config = path.join(dir, 'node.yaml');
    // The SDK dials 8883 on IOTEDGE_GATEWAYHOSTNAME, a host name without a port (ADR 0020).
    const hub = { tlsPort: 8883, workloadPort: await freePort(), methodsPort: 443 };
    await writeFile(config, stringify({ hub }));
    const node = startNode([...processNodeArgs(file, dir, deviceId), '--config', config]);
    nodes.push(node);
    await node.started();
    const running = await waitFor('filter running', async () => {
      const s = await node.status();
      return s.modules.filter?.runtimeStatus === 'running' ? s.modules.filter : undefined;
    });
    const logFile = path.join(dir, 'agent/process', deviceId, running.instanceId!, 'output.log');
    const pidOf = async (): Promise<number> =>
      (
        JSON.parse(
          await readFile(
            path.join(dir, 'agent/process', deviceId, running.instanceId!, 'instance.json'),
            'utf8',
          ),
        ) as { pid: number }
      ).pid;
    const pid = await pidOf();
    const desiredEvents = async (): Promise<Record<string, unknown>[]> =>
      (await readFile(logFile, 'utf8').catch(() => ''))
        .split('\n')
        .map((line) => /^\S+ desired (.*)$/.exec(line)?.[1]) // `<time> <line>`
        .filter((json) => json !== undefined)
        .map((json) => JSON.parse(json) as Record<string, unknown>);
    const first = await waitFor(
      'the SDK client got its desired document',
      async () => {
        const events = await desiredEvents();
        return events.length > 0 ? events : undefined;
      },
      30_000,
    );
    expect(first).toEqual([{ threshold: 30, label: 'first', $version: expect.any(Number) }]);
    await writeFile(file, withDesired({ threshold: 35 }));
    const events = await waitFor(
      'the SDK client got the desired patch',
      async () => {
        const all = await desiredEvents();
        return all.length > 1 ? all : undefined;
      },
      30_000,
    );
    expect(events).toEqual([
      first[0],
      { threshold: 35, label: null, $version: (first[0]!.$version as number) + 1 },
    ]);
    const after = (await node.status()).modules.filter!;
    expect(after).toMatchObject({
      runtimeStatus: 'running',
      instanceId: running.instanceId,
      lastStartTimeUtc: running.lastStartTimeUtc,
      restartCount: 0,
    });
    expect(await pidOf()).toBe(pid);
    expect(pidAlive(pid)).toBe(true);
  });
});
