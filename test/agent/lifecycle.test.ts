import {
  TestDevice,
  SLEEPER,
  containersOf,
  manifest,
  readAll,
  readUntil,
  waitFor,
} from './helpers.js';

describe('agent on a real dockerd: deploy, order, logs', () => {
  let device: TestDevice;
  beforeEach(async () => {
    device = await new TestDevice().init();
  });
  afterEach(async () => {
    await device.cleanup();
  });

  it('brings 3 modules with different startupOrder to running in that order', async () => {
    const agent = device.agent();
    await agent.start();
    const result = await agent.apply(
      manifest({
        third: { cmd: SLEEPER, startupOrder: 30 },
        first: { cmd: SLEEPER, startupOrder: 1 },
        second: { cmd: SLEEPER, startupOrder: 2 },
      }),
    );
    expect(result.status.code).toBe(200);
    await waitFor('all running', () =>
      ['first', 'second', 'third'].every(
        (m) => agent.snapshot().modules[m]?.runtimeStatus === 'running',
      ),
    );
    const containers = await containersOf(device.deviceId);
    const starts = ['first', 'second', 'third'].map((m) =>
      Date.parse(containers.get(m)!.startedAt),
    );
    expect(starts[0]).toBeLessThan(starts[1]!);
    expect(starts[1]).toBeLessThan(starts[2]!);
    const report = agent.snapshot().modules.first!;
    expect(report).toMatchObject({
      runtimeStatus: 'running',
      restartCount: 0,
      desiredStatus: 'running',
      image: 'kedge-local/busybox:1',
      instanceId: containers.get('first')!.id,
    });
    expect(report.imageId).toMatch(/^sha256:/);
    expect(report.lastStartTimeUtc).toBe(
      new Date(containers.get('first')!.startedAt).toISOString(),
    );
    const snap = agent.snapshot();
    expect(snap.device).toMatchObject({
      os: 'linux',
      runtime: { name: 'docker' },
      kedgeVersion: expect.any(String),
    });
    expect(snap.device!.cpus).toBeGreaterThan(0);
    expect(snap.lastDesiredVersion).toBe(result.version);
  });

  it('samples each running container: CPU climbs for a busy one, memory is its working set', async () => {
    const agent = device.agent();
    await agent.start();
    const busy = [
      'sh',
      '-c',
      'trap "exit 0" TERM; while true; do i=0; while [ $i -lt 10000 ]; do i=$((i+1)); done; sleep 0.05; done',
    ];
    await agent.apply(manifest({ busy: { cmd: busy }, idle: { cmd: SLEEPER } }));
    await waitFor('both running', () =>
      ['busy', 'idle'].every((m) => agent.snapshot().modules[m]?.runtimeStatus === 'running'),
    );
    const first = await agent.usage();
    await new Promise((r) => setTimeout(r, 2_000));
    const second = await agent.usage();
    const of = (u: typeof first, m: string) => u.modules.find((x) => x.name === m)!;
    expect(first.modules.map((m) => m.name).sort()).toEqual(['busy', 'idle']);
    expect(of(second, 'busy').cpuSecs).toBeGreaterThan(of(first, 'busy').cpuSecs);
    expect(of(second, 'busy').atMs).toBeGreaterThan(of(first, 'busy').atMs);
    for (const m of ['busy', 'idle'])
      expect(of(second, m).memoryWorkingSetBytes).toBeGreaterThan(0);
    expect(second.node.cpuSecs).toBeGreaterThan(first.node.cpuSecs);
    process.stdout.write(
      `docker usage: busy ${(of(second, 'busy').cpuSecs - of(first, 'busy').cpuSecs).toFixed(3)} s CPU in 2 s, ` +
        `memory busy ${of(second, 'busy').memoryWorkingSetBytes} B, idle ${of(second, 'idle').memoryWorkingSetBytes} B\n`,
    );
  });

  it('serves logs with tail, since, timestamps and follow', async () => {
    const agent = device.agent();
    await agent.start();
    const script =
      'for i in 1 2 3 4 5; do echo line$i; done; echo oops >&2; i=6; while true; do sleep 0.3; echo line$i; i=$((i+1)); done';
    await agent.apply(manifest({ talker: { cmd: ['sh', '-c', script] } }));
    await waitFor('five lines', async () =>
      (await readAll(await agent.logs('talker'))).includes('line5'),
    );
    const all = await readAll(await agent.logs('talker'));
    expect(all).toContain('oops\n');
    const tail = (await readAll(await agent.logs('talker', { tail: 2 }))).trim().split('\n');
    expect(tail).toHaveLength(2);
    const stamped = await readAll(await agent.logs('talker', { tail: 1, timestamps: true }));
    expect(stamped).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z (line\d+|oops)\n$/);
    const since = new Date();
    await waitFor(
      'a new line',
      async () => (await readAll(await agent.logs('talker', { since }))).length > 0,
    );
    expect(await readAll(await agent.logs('talker', { since }))).not.toContain('line1\n');
    const follow = await agent.logs('talker', { follow: true, tail: 0 });
    const before = (await readAll(await agent.logs('talker'))).trim().split('\n').length;
    const followed = await readUntil(follow, (t) => t.split('\n').filter(Boolean).length >= 2);
    follow.destroy();
    const firstFollowed = Number(/line(\d+)/.exec(followed)![1]);
    expect(firstFollowed).toBeGreaterThanOrEqual(before - 1);
  });
});
