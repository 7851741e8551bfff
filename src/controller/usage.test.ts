import { pino } from 'pino';
import type { UsageMessage } from '../common/cloudlink/usage.js';
import type { ControllerContext } from './context.js';
import { DeviceStates } from './device-state.js';
import { acceptUsage } from './manager.js';
import { ControllerMetrics } from './metrics.js';
import { resourceUsageOf } from './resource-usage.js';

const GIB = 1024 ** 3;
const sample = (memoryWorkingSetBytes: number): UsageMessage => ({
  node: {
    atMs: 1_000,
    cpuSecs: 50,
    memoryWorkingSetBytes,
    memoryBytes: 2 * GIB,
    diskAvailableBytes: 50 * GIB,
    diskBytes: 100 * GIB,
  },
  modules: [
    { name: 'sensor', atMs: 1_000, cpuSecs: 1.5, memoryWorkingSetBytes: 4096 },
    { name: 'orphan', atMs: 1_000, cpuSecs: 9, memoryWorkingSetBytes: 1 },
  ],
});

function context(): { ctx: ControllerContext; enqueued: string[] } {
  const enqueued: string[] = [];
  const pod = {
    metadata: { name: 'telemetry-sensor-cam', namespace: 'site', creationTimestamp: 'x' },
    spec: { nodeName: 'cam.site.kedge', containers: [{ name: 'sensor' }] },
  };
  const ctx = {
    log: pino({ level: 'silent' }),
    metrics: new ControllerMetrics(),
    states: new DeviceStates(),
    informers: { pods: { indexed: () => [pod] } },
    enqueue: { device: (key: string) => enqueued.push(key) },
  } as unknown as ControllerContext;
  return { ctx, enqueued };
}

describe('device usage samples in the controller', () => {
  it('drops and counts a malformed sample, keeping the last good one', async () => {
    const { ctx, enqueued } = context();
    acceptUsage(ctx, 'site', 'cam', sample(GIB));
    acceptUsage(ctx, 'site', 'cam', { node: 'full', modules: [] });
    expect(ctx.states.peek('site/cam')!.usage).toEqual(sample(GIB));
    const rejected = await ctx.metrics.usageRejected.get();
    expect(rejected.values[0]!.value).toBe(1);
    expect(enqueued).toEqual(['site/cam']);
  });

  it('reconciles the device only when a pressure condition changes status', () => {
    const { ctx, enqueued } = context();
    acceptUsage(ctx, 'site', 'cam', sample(GIB));
    acceptUsage(ctx, 'site', 'cam', sample(GIB + 1));
    expect(enqueued).toHaveLength(1);
    acceptUsage(ctx, 'site', 'cam', sample(2 * GIB - 1024));
    expect(ctx.states.peek('site/cam')!.pressure!.MemoryPressure.status).toBe('True');
    expect(enqueued).toHaveLength(2);
  });

  it('serves the readings of a connected device, for the modules pods own', () => {
    const { ctx } = context();
    acceptUsage(ctx, 'site', 'cam', sample(GIB));
    expect(resourceUsageOf(ctx, 'cam.site.kedge')).toBeUndefined();
    const state = ctx.states.get('site/cam');
    state.connected = true;
    const usage = resourceUsageOf(ctx, 'cam.site.kedge')!;
    expect(usage.node.cpuSecs).toBe(50);
    expect(usage.containers).toEqual([
      {
        namespace: 'site',
        pod: 'telemetry-sensor-cam',
        container: 'sensor',
        atMs: 1_000,
        cpuSecs: 1.5,
        memoryWorkingSetBytes: 4096,
      },
    ]);
    expect(resourceUsageOf(ctx, 'not-a-kedge-node')).toBeUndefined();
  });
});
