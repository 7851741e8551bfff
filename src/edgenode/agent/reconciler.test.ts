import { Readable } from 'node:stream';
import { Registry } from 'prom-client';
import { silentLogger } from '../../common/logger.js';
import type { DesiredDeployment, DesiredModule } from '../../common/manifest/index.js';
import { DEFAULT_RESTART_SETTINGS } from './backoff.js';
import { AgentMetrics } from './metrics.js';
import { Reconciler } from './reconciler.js';
import type { ModuleReport } from './reported.js';
import { RuntimeError, type ModuleRuntime, type PullRequest } from './runtime.js';
import type { ModuleSpec, ObservedModule } from './types.js';

/**
 * A runtime that logs every call in order, fails pulls of images named `…broken…`, and really
 * pulls (telling `onPulling`) only images named `…remote…`.
 */
class LoggingRuntime implements ModuleRuntime {
  readonly name = 'docker' as const;
  readonly configSalt = 'test';
  readonly calls: string[] = [];
  readonly #instances = new Map<string, ObservedModule>();
  #next = 0;

  prepare = (): Promise<void> => Promise.resolve();
  info = (): Promise<{ name: 'docker'; version: string }> =>
    Promise.resolve({ name: 'docker', version: 'test' });
  list = (): Promise<ObservedModule[]> =>
    Promise.resolve([...this.#instances.values()].map((i) => ({ ...i })));
  ensureImage(spec: ModuleSpec, pull: PullRequest): Promise<void> {
    this.calls.push(`pull ${spec.image}`);
    if (spec.image.includes('remote')) pull.onPulling?.();
    if (spec.image.includes('broken'))
      return Promise.reject(
        new RuntimeError('ErrImagePull', `pull access denied for ${spec.image}`, {
          terminal: false,
        }),
      );
    return Promise.resolve();
  }
  create(spec: ModuleSpec): Promise<string> {
    const id = `i${++this.#next}`;
    this.calls.push(`create ${spec.image}`);
    this.#instances.set(id, {
      name: spec.name,
      id,
      configHash: spec.configHash,
      state: 'created',
      health: 'none',
      image: spec.image,
    });
    return Promise.resolve(id);
  }
  start(id: string): Promise<void> {
    this.calls.push(`start ${this.#instances.get(id)!.image}`);
    Object.assign(this.#instances.get(id)!, { state: 'running', startedAt: new Date() });
    return Promise.resolve();
  }
  stop(id: string): Promise<void> {
    this.calls.push(`stop ${this.#instances.get(id)!.image}`);
    Object.assign(this.#instances.get(id)!, { state: 'exited', exitCode: 0 });
    return Promise.resolve();
  }
  remove(id: string): Promise<void> {
    this.calls.push(`remove ${this.#instances.get(id)!.image}`);
    this.#instances.delete(id);
    return Promise.resolve();
  }
  logs = (): Promise<Readable> => Promise.resolve(Readable.from([]));
  watch = (): (() => void) => () => undefined;
  running(): string[] {
    return [...this.#instances.values()].filter((i) => i.state === 'running').map((i) => i.image);
  }
}

function desired(image: string, specHash: string): DesiredDeployment {
  const module: DesiredModule = {
    name: 'app',
    moduleId: 'app',
    image,
    specHash,
    createOptions: {},
    env: {},
    status: 'running',
    restartPolicy: 'always',
    imagePullPolicy: 'on-create',
    startupOrder: 0,
  };
  return {
    schemaVersion: '1.1',
    version: specHash,
    registryCredentials: [],
    modules: [module],
    systemModules: {},
    hub: { schemaVersion: '1.1', routes: {}, storeAndForwardTimeToLiveSecs: 7200 },
    twins: {},
  };
}

describe('Reconciler: image updates', () => {
  let runtime: LoggingRuntime;
  let reports: ModuleReport[];
  let during: ModuleReport[];
  let reconciler: Reconciler;

  beforeEach(() => {
    runtime = new LoggingRuntime();
    reports = [];
    during = [];
    reconciler = new Reconciler({
      runtime,
      settings: DEFAULT_RESTART_SETTINGS,
      stopGraceMs: 0,
      resyncIntervalMs: 60_000,
      imageRefreshMs: 0,
      identity: undefined,
      metrics: new AgentMetrics(new Registry()),
      logger: silentLogger(),
      onReports: (r) => (reports = r),
      onModuleReport: (r) => during.push(r),
      onRecords: () => undefined,
    });
  });
  afterEach(() => reconciler.stop());

  it('pulls the new image before it stops the old module, and echoes the spec hash', async () => {
    reconciler.setDesired(desired('app:1', 'hash1'));
    await reconciler.reconcileNow();
    runtime.calls.length = 0;
    reconciler.setDesired(desired('app:2', 'hash2'));
    await reconciler.reconcileNow();
    await reconciler.reconcileNow(); // the pass after acting reports the outcome
    expect(runtime.calls).toEqual([
      'pull app:2',
      'stop app:1',
      'remove app:1',
      'create app:2',
      'start app:2',
    ]);
    expect(reports).toEqual([
      expect.objectContaining({ name: 'app', runtimeStatus: 'running', specHash: 'hash2' }),
    ]);
  });

  it('reports a pull as it begins, and keeps its start in the reports after it', async () => {
    reconciler.setDesired(desired('app:1', 'hash1'));
    await reconciler.reconcileNow();
    expect(during).toEqual([]); // the image was present: nothing pulled, nothing to tell
    expect(reports[0]!.pullStartedTimeUtc).toBeUndefined();
    const before = Date.now();
    reconciler.setDesired(desired('registry.example/remote-app:2', 'hash2'));
    await reconciler.reconcileNow();
    expect(during).toEqual([
      expect.objectContaining({ name: 'app', image: 'registry.example/remote-app:2' }),
    ]);
    const started = Date.parse(during[0]!.pullStartedTimeUtc!);
    expect(started).toBeGreaterThanOrEqual(before);
    await reconciler.reconcileNow();
    expect(reports).toEqual([
      expect.objectContaining({
        runtimeStatus: 'running',
        pullStartedTimeUtc: during[0]!.pullStartedTimeUtc,
      }),
    ]);
  });

  it('keeps the old module running when the new image cannot be pulled', async () => {
    reconciler.setDesired(desired('app:1', 'hash1'));
    await reconciler.reconcileNow();
    runtime.calls.length = 0;
    reconciler.setDesired(desired('registry.example/app-broken:2', 'hash2'));
    await reconciler.reconcileNow();
    await reconciler.reconcileNow(); // within the cool-off: no second pull
    expect(runtime.calls).toEqual(['pull registry.example/app-broken:2']);
    expect(runtime.running()).toEqual(['app:1']);
    expect(reports).toEqual([
      expect.objectContaining({
        runtimeStatus: 'backoff',
        reason: 'ErrImagePull',
        specHash: 'hash2',
      }),
    ]);
  });
});
