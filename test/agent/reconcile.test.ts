import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ManifestError } from '../../src/common/manifest/index.js';
import {
  coolOffMs,
  DEFAULT_RESTART_SETTINGS,
  type AgentEvent,
} from '../../src/edgenode/agent/index.js';
import {
  LOCAL_IMAGES,
  SLEEPER,
  TestDevice,
  containersOf,
  docker,
  manifest,
  waitFor,
} from './helpers.js';

const UNHEALTHY_IMAGE = 'kedge-test/unhealthy:1';

describe('agent reconcile on a real dockerd', () => {
  let device: TestDevice;
  beforeEach(async () => {
    device = await new TestDevice().init();
  });
  afterEach(async () => {
    await device.cleanup();
  });

  it('replaces only the module whose image or env changed, and keeps the others', async () => {
    const agent = device.agent();
    await agent.start();
    const base = {
      a: { cmd: SLEEPER },
      b: { cmd: SLEEPER, env: { MODE: 'one' } },
      c: { cmd: SLEEPER },
    };
    await agent.apply(manifest(base));
    const running = () =>
      ['a', 'b', 'c'].every((m) => agent.snapshot().modules[m]?.runtimeStatus === 'running');
    await waitFor('all running', running);
    const before = await containersOf(device.deviceId);

    await agent.apply(manifest({ ...base, b: { cmd: SLEEPER, env: { MODE: 'two' } } }));
    await waitFor('b replaced and running', async () => {
      const b = (await containersOf(device.deviceId)).get('b');
      return b && b.id !== before.get('b')!.id && b.running;
    });
    const afterEnv = await containersOf(device.deviceId);
    expect(afterEnv.get('b')!.env).toContain('MODE=two');
    expect(afterEnv.get('a')).toEqual(before.get('a'));
    expect(afterEnv.get('c')).toEqual(before.get('c'));
    expect(afterEnv.size).toBe(3);

    const retagged = `kedge-test/busybox-copy:${device.deviceId}`;
    await docker(['tag', LOCAL_IMAGES.busybox, retagged]);
    try {
      await agent.apply(
        manifest({
          ...base,
          b: { cmd: SLEEPER, env: { MODE: 'two' } },
          c: { cmd: SLEEPER, image: retagged },
        }),
      );
      await waitFor('c replaced', async () => {
        const c = (await containersOf(device.deviceId)).get('c');
        return c && c.image === retagged && c.running;
      });
      const afterImage = await containersOf(device.deviceId);
      expect(afterImage.get('a')).toEqual(before.get('a'));
      expect(afterImage.get('b')).toEqual(afterEnv.get('b'));
      expect(afterImage.get('c')!.id).not.toBe(before.get('c')!.id);
    } finally {
      await device.cleanup();
      await docker(['rmi', retagged]).catch(() => '');
    }
  });

  it('removes orphans and honours desired stopped', async () => {
    const agent = device.agent();
    await agent.start();
    await agent.apply(manifest({ keep: { cmd: SLEEPER }, drop: { cmd: SLEEPER } }));
    await waitFor('both running', async () => (await containersOf(device.deviceId)).size === 2);
    await agent.apply(manifest({ keep: { cmd: SLEEPER, status: 'stopped' } }));
    await waitFor('drop removed, keep stopped', async () => {
      const c = await containersOf(device.deviceId);
      return c.size === 1 && c.get('keep')?.running === false;
    });
    expect(agent.snapshot().modules.keep!.runtimeStatus).toBe('stopped');
    expect(agent.snapshot().modules.drop).toBeUndefined();
    await agent.apply(manifest({ keep: { cmd: SLEEPER } }));
    await waitFor(
      'keep running again',
      () => agent.snapshot().modules.keep?.runtimeStatus === 'running',
    );
    expect(agent.snapshot().modules.keep!.restartCount).toBe(0);
  });

  it('backs a crash-looping module off with growing delays, then reports failed after the maximum', async () => {
    const settings = { ...DEFAULT_RESTART_SETTINGS, backoffUnitMs: 300, maxRestarts: 3 };
    const agent = device.agent({ restart: settings });
    // Restart n is reported with the exit that preceded it: delay = restart time - that exit time.
    const delayOf = new Map<number, number>();
    const statuses: string[] = [];
    agent.subscribe((e: AgentEvent) => {
      if (e.type !== 'module' || e.module.name !== 'crasher') return;
      const m = e.module;
      statuses.push(m.runtimeStatus);
      if (m.lastRestartTimeUtc && m.lastExitTimeUtc && !delayOf.has(m.restartCount)) {
        delayOf.set(
          m.restartCount,
          Date.parse(m.lastRestartTimeUtc) - Date.parse(m.lastExitTimeUtc),
        );
      }
    });
    await agent.start();
    await agent.apply(
      manifest({
        crasher: { cmd: ['sh', '-c', 'echo crashing; exit 3'] },
        steady: { cmd: SLEEPER },
      }),
    );
    const failed = await waitFor('failed', () => {
      const m = agent.snapshot().modules.crasher;
      return m?.runtimeStatus === 'failed' ? m : undefined;
    });
    expect(failed).toMatchObject({ restartCount: 3, exitCode: 3, reason: 'CrashLoopBackOff' });
    expect(failed.statusDescription).toMatch(/gave up after 3 restarts; last: exited with code 3/);
    expect(statuses).toContain('backoff');
    const delays = [1, 2, 3].map((n) => delayOf.get(n)!);
    delays.forEach((delay, i) => expect(delay).toBeGreaterThanOrEqual(coolOffMs(i, settings) - 5));
    expect(delays[2]!).toBeGreaterThan(delays[0]!);
    expect(agent.snapshot().modules.steady!.runtimeStatus).toBe('running');
    const restartsBefore = failed.restartCount;
    await new Promise((r) => setTimeout(r, 1500));
    expect(agent.snapshot().modules.crasher!.restartCount).toBe(restartsBefore);
    const metrics = await agent.metrics.registry.getSingleMetricAsString(
      'kedge_agent_module_restarts_total',
    );
    expect(metrics).toContain('kedge_agent_module_restarts_total{module="crasher"} 3');
  });

  it('restarts an on-unhealthy module whose Docker HEALTHCHECK fails, but not an on-failure one', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'kedge-unhealthy-'));
    await writeFile(
      path.join(dir, 'Dockerfile'),
      [
        `FROM ${LOCAL_IMAGES.busybox}`,
        'HEALTHCHECK --interval=1s --timeout=1s --retries=1 CMD false',
        `CMD ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]`,
      ].join('\n'),
    );
    await docker(['build', '-q', '-t', UNHEALTHY_IMAGE, dir]);
    await rm(dir, { recursive: true, force: true });
    const agent = device.agent({
      restart: { ...DEFAULT_RESTART_SETTINGS, backoffUnitMs: 200, maxRestarts: 2 },
    });
    const seen = new Set<string>();
    agent.subscribe((e) => {
      if (e.type === 'module') seen.add(`${e.module.name}:${e.module.runtimeStatus}`);
    });
    await agent.start();
    await agent.apply(
      manifest({
        sick: { image: UNHEALTHY_IMAGE, restartPolicy: 'on-unhealthy' },
        tolerated: { image: UNHEALTHY_IMAGE, restartPolicy: 'on-failure' },
      }),
    );
    await waitFor('sick restarted', () => (agent.snapshot().modules.sick?.restartCount ?? 0) >= 1);
    expect(seen).toContain('sick:unhealthy');
    const containers = await containersOf(device.deviceId);
    expect(agent.snapshot().modules.sick!.instanceId).toBe(containers.get('sick')!.id);
    expect(agent.snapshot().modules.sick!.lastRestartTimeUtc).toBeDefined();
    await waitFor(
      'tolerated unhealthy',
      () => agent.snapshot().modules.tolerated?.runtimeStatus === 'unhealthy',
    );
    expect(agent.snapshot().modules.tolerated!.restartCount).toBe(0);
  });

  it('reports a module with invalid createOptions as failed with the Docker error, and runs the rest', async () => {
    const agent = device.agent();
    await agent.start();
    const result = await agent.apply(
      manifest({
        broken: { createOptions: { Cmd: SLEEPER, HostConfig: { Memory: 'lots' } } },
        nocap: { createOptions: { Cmd: SLEEPER, HostConfig: { CapAdd: ['NOPE'] } } },
        fine: { cmd: SLEEPER },
      }),
    );
    expect(result.status).toEqual({ code: 500, description: 'failed modules: broken, nocap' });
    await waitFor('fine running', () => agent.snapshot().modules.fine?.runtimeStatus === 'running');
    const broken = await waitFor('broken failed', () => {
      const m = agent.snapshot().modules.broken;
      return m?.runtimeStatus === 'failed' ? m : undefined;
    });
    expect(broken.reason).toBe('CreateContainerError');
    expect(broken.statusDescription).toMatch(
      /cannot unmarshal string into Go struct field .*Memory/,
    );
  });

  it('rejects a malformed manifest as a whole and keeps the old modules running', async () => {
    const agent = device.agent();
    await agent.start();
    const good = await agent.apply(manifest({ a: { cmd: SLEEPER }, b: { cmd: SLEEPER } }));
    await waitFor('running', () => agent.snapshot().modules.b?.runtimeStatus === 'running');
    const before = await containersOf(device.deviceId);
    const bad = manifest({ a: { cmd: SLEEPER, restartPolicy: 'sometimes' }, c: { cmd: SLEEPER } });
    const error = await agent.apply(bad).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ManifestError);
    expect((error as ManifestError).problems).toEqual([
      {
        path: 'modulesContent.$edgeAgent["properties.desired"].modules.a.restartPolicy',
        message: 'must be one of never, on-failure, on-unhealthy, always',
      },
    ]);
    expect(agent.snapshot().lastDesiredStatus).toEqual({
      code: 400,
      description: (error as Error).message,
    });
    await agent.reconcileNow();
    expect(await containersOf(device.deviceId)).toEqual(before);
    expect(agent.snapshot().lastDesiredVersion).toBe(good.version);
  });
});
