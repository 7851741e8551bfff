// Safe rollouts end to end: a real API server, the real controller with its gateway on a real
// NATS JetStream, and 20 hollow devices (real agent and cloud link, container runtime in memory).
// A broken image rolled out two devices at a time halts at the failure threshold and rolls back,
// leaving the devices that never got it untouched; a good image reaches every device, and the
// status and Argo CD health (the real Lua) never claim a device that still runs the old spec.
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { RunningController } from '../../src/controller/manager.js';
import type { EdgeDeployment } from '../../src/crds/index.js';
import { freePort } from '../../src/localcluster/ports.js';
import { ARGOCD_DIR } from '../../src/localcluster/render-deploy.js';
import { health } from '../support/argocd-health.js';
import { eventually, startTestCluster, type TestCluster } from '../support/cluster.js';
import { startHollowDevice, type HollowDevice } from '../support/hollow-device.js';
import { startTestNats, type TestNats } from '../support/nats.js';
import { startTestController } from './support.js';

const DEVICES = 20;
const NS = 'default';
const NAME = 'fleet';
const LUA = path.join(ARGOCD_DIR, 'edgedeployment.lua');
const GOOD = 'registry.example/app:1';
const BROKEN = 'registry.example/app-broken:2';
const NEXT = 'registry.example/app:3';
const MAX_UNAVAILABLE = 2;
const THRESHOLD = 2;

type Dep = EdgeDeployment & { metadata: { generation?: number } };

/** What the test saw in one status version, with the devices' state at that instant. */
interface Seen {
  obj: Dep;
  /** Devices whose memory runtime runs `image` when the version arrived. */
  runningImage: Map<string, number>;
}

describe('safe rollouts on 20 hollow devices', () => {
  let cluster: TestCluster;
  let nats: TestNats;
  let controller: RunningController;
  const devices: HollowDevice[] = [];
  const seen: Seen[] = [];
  /** Devices whose pod ever carried the broken image, and the most at once. */
  const gotBroken = new Set<string>();
  let brokenAtOnce = 0;
  /** Most devices at once whose pod carries the next image while they do not run it yet. */
  let updatingAtOnce = 0;

  const runningCount = (image: string): number =>
    devices.filter((d) =>
      d.runtime.instances().some((i) => i.image === image && i.state === 'running'),
    ).length;

  const apply = (image: string): Promise<string> =>
    cluster.kubectlOk(
      ['apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'kedge.io/v1alpha1',
        kind: 'EdgeDeployment',
        metadata: { name: NAME, namespace: NS },
        spec: {
          selector: { matchLabels: { fleet: 'rollout' } },
          rollout: { maxUnavailable: MAX_UNAVAILABLE, failureThreshold: THRESHOLD },
          modules: [{ name: 'app', image }],
        },
      }),
    );

  const current = (): Dep => controller.ctx.informers.deployments.get(`${NS}/${NAME}`) as Dep;

  /** Waits until the status of the current generation satisfies `check`. */
  const statusOf = (what: string, check: (d: Dep) => boolean, timeoutMs = 90_000): Promise<Dep> =>
    eventually(
      what,
      () => {
        const d = current();
        const fresh = d?.status?.observedGeneration === d?.metadata.generation;
        return Promise.resolve(d && fresh && check(d) ? d : undefined);
      },
      timeoutMs,
      100,
    );

  beforeAll(async () => {
    cluster = await startTestCluster('rollout');
    nats = await startTestNats('rollout');
    const ports = { hub: await freePort(), kubelet: await freePort() };
    controller = await startTestController(cluster, ports, nats.url);
    controller.ctx.informers.deployments.on((_event, obj) => {
      if (obj.metadata.name !== NAME) return;
      const runningImage = new Map(
        [GOOD, BROKEN, NEXT].map((image) => [image, runningCount(image)]),
      );
      seen.push({ obj: structuredClone(obj), runningImage });
    });
    controller.ctx.informers.pods.on((_event, pod) => {
      if (pod.metadata.labels?.['kedge.io/deployment'] !== NAME) return;
      const broken = controller.ctx.informers.pods
        .list()
        .filter((p) => p.spec.containers[0]?.image === BROKEN);
      for (const p of broken) gotBroken.add(p.metadata.labels!['kedge.io/device']!);
      brokenAtOnce = Math.max(brokenAtOnce, broken.length);
      const updating = controller.ctx.informers.pods
        .list()
        .filter((p) => p.spec.containers[0]?.image === NEXT)
        .map((p) => devices.find((d) => d.device === p.metadata.labels?.['kedge.io/device']))
        .filter(
          (d) => d && !d.runtime.instances().some((i) => i.image === NEXT && i.state === 'running'),
        );
      updatingAtOnce = Math.max(updatingAtOnce, updating.length);
    });

    const names = Array.from({ length: DEVICES }, (_, i) => `r${String(i).padStart(2, '0')}`);
    await cluster.kubectlOk(
      ['apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'List',
        items: names.map((name) => ({
          apiVersion: 'kedge.io/v1alpha1',
          kind: 'EdgeDevice',
          metadata: { name, namespace: NS, labels: { fleet: 'rollout' } },
          spec: {},
        })),
      }),
    );
    const keys = await eventually('every device key', async () => {
      const list = JSON.parse(
        await cluster.kubectlOk([
          'get',
          'secrets',
          '-n',
          NS,
          '-l',
          'kedge.io/device',
          '-o',
          'json',
        ]),
      ) as {
        items: { metadata: { labels: Record<string, string> }; data: { primaryKey: string } }[];
      };
      return list.items.length === DEVICES ? list.items : undefined;
    });
    for (const s of keys)
      devices.push(
        await startHollowDevice({
          url: `mqtts://localhost:${ports.hub}`,
          caPem: controller.caPem,
          namespace: NS,
          device: s.metadata.labels['kedge.io/device']!,
          key: Buffer.from(s.data.primaryKey, 'base64').toString(),
          messagesPerSec: 0,
        }),
      );
    await eventually('every device connected', () =>
      Promise.resolve(
        controller.ctx.informers.devices.list().filter((d) => d.status?.phase === 'Connected')
          .length === DEVICES
          ? true
          : undefined,
      ),
    );
  }, 180_000);

  afterAll(async () => {
    await Promise.all(
      devices.map((d) => Promise.race([d.stop().catch(() => undefined), sleep(5_000)])),
    );
    await controller?.stop();
    await nats?.stop();
    await cluster?.cp.stop();
  }, 60_000);

  it('deploys the first spec to every device at once and calls it the last good spec', async () => {
    await apply(GOOD);
    const done = await statusOf(
      'the first rollout to complete',
      (d) =>
        d.status?.rollout?.phase === 'Complete' && d.status.reportedSuccessfulCount === DEVICES,
    );
    expect(runningCount(GOOD)).toBe(DEVICES);
    expect(await health(LUA, done)).toMatchObject({ status: 'Healthy' });
    const revisions = await cluster.kubectlOk([
      'get',
      'controllerrevisions',
      '-n',
      NS,
      '-o',
      'name',
    ]);
    expect(revisions.trim().split('\n')).toEqual([
      `controllerrevision.apps/${NAME}-${done.status!.rollout!.stableRevision}`,
    ]);
    for (const d of devices) expect(d.runtime.created.get('app')).toBe(1);
  });

  it('halts a broken image at the threshold and rolls back; devices that never got it are untouched', async () => {
    const from = seen.length;
    const startedMs = Date.now();
    await apply(BROKEN);
    const rolledBack = await statusOf(
      'the rollback to complete',
      (d) => d.status?.rollout?.phase === 'RolledBack',
    );
    const tookMs = Date.now() - startedMs;
    // At most two devices update at once; a device that failed frees its slot, so the broken
    // spec reaches at most (threshold - 1) failed + maxUnavailable updating devices.
    expect(gotBroken.size).toBeGreaterThanOrEqual(THRESHOLD);
    expect(gotBroken.size).toBeLessThanOrEqual(THRESHOLD - 1 + MAX_UNAVAILABLE);
    expect(brokenAtOnce).toBeLessThanOrEqual(THRESHOLD - 1 + MAX_UNAVAILABLE);
    // Every device runs the last good spec; none ever ran the broken one. Pull-first: even the
    // devices that got it kept their module, and the others never had it recreated.
    expect(runningCount(GOOD)).toBe(DEVICES);
    for (const d of devices)
      expect({ device: d.device, created: d.runtime.created.get('app') }).toEqual({
        device: d.device,
        created: 1,
      });
    const status = rolledBack.status!;
    expect(status.rollout).toMatchObject({
      failedGeneration: rolledBack.metadata.generation,
      failedRevision: status.rollout!.targetRevision,
    });
    expect(status.rollout!.message).toMatch(/ErrImagePull/);
    expect(status.reportedSuccessfulCount).toBe(DEVICES);
    const condition = status.conditions!.find((c) => c.type === 'RolledBack');
    expect(condition).toMatchObject({ status: 'True', reason: 'RolledBack' });
    // Argo CD: Degraded while halted and rolling back, then Healthy with the rollback named.
    const verdicts: string[] = [];
    for (const s of seen.slice(from)) {
      const fresh = s.obj.status?.observedGeneration === s.obj.metadata.generation;
      if (!fresh) continue;
      const hs = await health(LUA, s.obj);
      if (verdicts.at(-1) !== hs.status) verdicts.push(hs.status);
    }
    const final = await health(LUA, rolledBack);
    console.log(
      `broken rollout: ${gotBroken.size} devices got it (max ${brokenAtOnce} at once), rolled back in ${tookMs} ms; Argo CD verdicts: ${verdicts.join(' → ')}; final: ${final.status}: ${final.message}`,
    );
    expect(verdicts).toContain('Degraded');
    expect(verdicts.indexOf('Degraded')).toBeLessThan(verdicts.lastIndexOf('Healthy'));
    expect(final).toMatchObject({ status: 'Healthy' });
    expect(final.message).toMatch(
      /^rolled back to revision \w+; revision \w+ \(generation \d+\) failed/,
    );
    const events = await cluster.kubectlOk([
      'get',
      'events',
      '-n',
      NS,
      '--field-selector',
      `involvedObject.name=${NAME}`,
      '-o',
      'jsonpath={.items[*].reason}',
    ]);
    expect(events.split(' ')).toEqual(
      expect.arrayContaining(['RolloutBatchStarted', 'RolloutHalted', 'RollingBack', 'RolledBack']),
    );
  }, 120_000);

  it('rolls a good image out in batches and is Healthy only once every device reports it', async () => {
    const from = seen.length;
    const startedMs = Date.now();
    await apply(NEXT);
    const done = await statusOf(
      'the second rollout to complete',
      (d) =>
        d.status?.rollout?.phase === 'Complete' && d.status.reportedSuccessfulCount === DEVICES,
    );
    const tookMs = Date.now() - startedMs;
    expect(runningCount(NEXT)).toBe(DEVICES);
    let firstHealthyRunning: number | undefined;
    for (const s of seen.slice(from)) {
      const st = s.obj.status;
      if (!st || st.observedGeneration !== s.obj.metadata.generation) continue;
      // Never more devices counted successful than ran the new image at that instant.
      expect(st.reportedSuccessfulCount ?? 0).toBeLessThanOrEqual(s.runningImage.get(NEXT)!);
      const hs = await health(LUA, s.obj);
      if (hs.status === 'Healthy' && firstHealthyRunning === undefined)
        firstHealthyRunning = s.runningImage.get(NEXT);
    }
    console.log(
      `good rollout: ${DEVICES} devices in ${tookMs} ms, at most ${updatingAtOnce} updating at once; first Healthy verdict with ${firstHealthyRunning}/${DEVICES} devices running it`,
    );
    expect(updatingAtOnce).toBeGreaterThan(0);
    expect(updatingAtOnce).toBeLessThanOrEqual(MAX_UNAVAILABLE);
    expect(firstHealthyRunning).toBe(DEVICES);
    expect(await health(LUA, done)).toMatchObject({ status: 'Healthy' });
    // The old module was replaced exactly once on each device.
    for (const d of devices) expect(d.runtime.created.get('app')).toBe(2);
    const revisions = await cluster.kubectlOk([
      'get',
      'controllerrevisions',
      '-n',
      NS,
      '-o',
      'name',
    ]);
    expect(revisions).toContain(`${NAME}-${done.status!.rollout!.stableRevision}`);
  }, 120_000);
});
