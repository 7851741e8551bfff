import type { DesiredDeployment, ImagePullPolicy } from '../../common/manifest/index.js';
import type { ModuleIdentityProvider } from '../../common/module-identity.js';
import { ErrorCode, KedgeError, errorMessage } from '../../common/errors.js';
import type { Logger } from '../../common/logger.js';
import type { RestartSettings } from './backoff.js';
import type { AgentMetrics } from './metrics.js';
import { moduleSpec } from './module-spec.js';
import { planReconcile, type Action, type ModulePlan, type RestartRecord } from './planner.js';
import type { ModuleReport } from './reported.js';
import { RuntimeError, type ModuleRuntime } from './runtime.js';
import type { ModuleSpec, ObservedModule } from './types.js';

/** What the reconciler needs. */
export interface ReconcilerOptions {
  runtime: ModuleRuntime;
  settings: RestartSettings;
  /** SIGTERM-to-SIGKILL grace when stopping modules. */
  stopGraceMs: number;
  /** Periodic full pass even without events, as a safety net. */
  resyncIntervalMs: number;
  /** How often the images of `always` modules are pulled again; 0 never. */
  imageRefreshMs: number;
  identity: ModuleIdentityProvider | undefined;
  metrics: AgentMetrics;
  logger: Logger;
  /** Called after every pass with the reports of all desired modules. */
  onReports: (reports: ModuleReport[], failed: string[]) => void;
  /** Called during a pass when one module's report changes before the pass ends (a pull began). */
  onModuleReport?: (report: ModuleReport) => void;
  /** Called when restart records changed and should be persisted. */
  onRecords: (records: ReadonlyMap<string, RestartRecord>) => void;
}

/**
 * Runs reconcile passes one at a time. `trigger()` asks for a pass; requests during a pass
 * collapse into one follow-up pass. After a pass the next one is scheduled at the earliest
 * wake-up of the plan (end of a cool-off) or the resync interval.
 */
export class Reconciler {
  readonly #o: ReconcilerOptions;
  #desired: DesiredDeployment | undefined;
  #records = new Map<string, RestartRecord>();
  readonly #identityEnv = new Map<string, Record<string, string>>();
  /** Container name → module id of the modules this agent started, for identity removal. */
  readonly #moduleIds = new Map<string, string>();
  #timer: NodeJS.Timeout | undefined;
  #loop: Promise<void> | undefined;
  #dirty = false;
  #stopped = false;
  #requested = 0;
  #waiters: { seq: number; resolve: () => void }[] = [];
  /** When the images of `always` modules were last pulled again. */
  #imagesRefreshedMs = Date.now();
  /** Restarts asked for (`$edgeAgent` RestartModule), run at the start of the next pass. */
  #restarts: { name: string; resolve: () => void; reject: (err: unknown) => void }[] = [];

  constructor(options: ReconcilerOptions) {
    this.#o = options;
  }

  /** Restart bookkeeping loaded from disk (before the first pass). */
  loadRecords(records: Iterable<[string, RestartRecord]>): void {
    this.#records = new Map(records);
  }

  get records(): ReadonlyMap<string, RestartRecord> {
    return this.#records;
  }

  setDesired(desired: DesiredDeployment): void {
    this.#desired = desired;
  }

  /** Asks for a pass and resolves when a pass that started after this call has finished. */
  reconcileNow(): Promise<void> {
    const seq = ++this.#requested;
    const done = new Promise<void>((resolve) => this.#waiters.push({ seq, resolve }));
    this.trigger();
    return done;
  }

  /** Asks for a pass as soon as the current one (if any) is over. */
  trigger(): void {
    if (this.#stopped) return;
    this.#dirty = true;
    this.#loop ??= this.#run().finally(() => {
      this.#loop = undefined;
    });
  }

  /** Stops scheduling passes and waits for the current one. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#loop;
    for (const w of this.#waiters) w.resolve();
    this.#waiters = [];
    for (const r of this.#restarts.splice(0))
      r.reject(new KedgeError(ErrorCode.Unavailable, 'the agent is stopping'));
  }

  /**
   * Stops and starts a desired module's instance within the pass loop, so that no pass sees it
   * half-way, and counts the restart. @throws KedgeError NotFound for a module not deployed or
   * without an instance.
   */
  restartModule(name: string): Promise<void> {
    if (!this.#desired?.modules.some((m) => m.name === name))
      return Promise.reject(new KedgeError(ErrorCode.NotFound, `module ${name} is not deployed`));
    const done = new Promise<void>((resolve, reject) =>
      this.#restarts.push({ name, resolve, reject }),
    );
    this.trigger();
    return done;
  }

  async #runRestarts(observed: ObservedModule[]): Promise<boolean> {
    const asked = this.#restarts.splice(0);
    for (const r of asked) {
      const instance = observed.find((o) => o.name === r.name);
      if (!instance) {
        r.reject(new KedgeError(ErrorCode.NotFound, `module ${r.name} has no instance to restart`));
        continue;
      }
      try {
        this.#o.logger.info({ module: r.name }, 'restarting module on request');
        await this.#o.runtime.stop(instance.id, this.#o.stopGraceMs);
        await this.#o.runtime.start(instance.id);
        const record = this.#records.get(r.name);
        if (record) this.#countRestart(record, r.name);
        r.resolve();
      } catch (err) {
        r.reject(err);
      }
    }
    return asked.length > 0;
  }

  /**
   * Every `imageRefreshMs`, pulls the image of each `always` module again; a module whose tag now
   * names another image than its instance runs is recreated from it. Returns whether any was.
   */
  async #refreshImages(specs: ModuleSpec[], observed: ObservedModule[]): Promise<boolean> {
    const { runtime, imageRefreshMs } = this.#o;
    if (
      !imageRefreshMs ||
      !runtime.imageId ||
      Date.now() - this.#imagesRefreshedMs < imageRefreshMs
    )
      return false;
    this.#imagesRefreshedMs = Date.now();
    let recreated = false;
    for (const spec of specs) {
      const instance = observed.find((o) => o.name === spec.name);
      if (this.#pullPolicy(spec.name) !== 'always' || !instance?.imageId) continue;
      try {
        if (await this.#recreateOnNewImage(spec, instance)) recreated = true;
      } catch (err) {
        this.#o.logger.warn(
          { module: spec.name, reason: errorMessage(err) },
          'image refresh failed',
        );
      }
    }
    return recreated;
  }

  /** Pulls the module's image; recreates it when its tag now names another image. */
  async #recreateOnNewImage(spec: ModuleSpec, instance: ObservedModule): Promise<boolean> {
    const { runtime, logger } = this.#o;
    const credentials = this.#desired?.registryCredentials ?? [];
    await runtime.ensureImage(spec, { policy: 'always', credentials });
    const current = await runtime.imageId!(spec.image);
    if (!current || current === instance.imageId) return false;
    logger.info(
      { module: spec.name, image: spec.image, from: instance.imageId, to: current },
      'image tag names a new image: recreating module',
    );
    await runtime.stop(instance.id, this.#o.stopGraceMs);
    await runtime.remove(instance.id);
    await this.#create(spec, instance.state === 'running');
    return true;
  }

  /** Marks modules as stopped by the agent (so the next start is not counted as a restart). */
  markStoppedByAgent(name: string): void {
    const record = this.#records.get(name);
    if (record) record.stoppedByAgent = true;
  }

  async #run(): Promise<void> {
    while (this.#dirty && !this.#stopped) {
      this.#dirty = false;
      clearTimeout(this.#timer);
      const seq = this.#requested;
      const startedMs = performance.now();
      let wakeAtMs: number | undefined;
      try {
        wakeAtMs = await this.#pass();
      } catch (err) {
        this.#o.metrics.reconcileFailed();
        this.#o.logger.error({ err: errorMessage(err) }, 'reconcile pass failed');
      }
      this.#o.metrics.reconciled((performance.now() - startedMs) / 1000);
      this.#schedule(wakeAtMs);
      this.#waiters = this.#waiters.filter((w) => (w.seq <= seq ? (w.resolve(), false) : true));
    }
  }

  #schedule(wakeAtMs: number | undefined): void {
    if (this.#stopped) return;
    const resyncMs = this.#o.resyncIntervalMs;
    const delayMs = wakeAtMs === undefined ? resyncMs : Math.min(resyncMs, wakeAtMs - Date.now());
    this.#timer = setTimeout(() => this.trigger(), Math.max(0, delayMs));
    this.#timer.unref();
  }

  /** One pass; returns the earliest wake-up the plan asked for. */
  async #pass(): Promise<number | undefined> {
    const desired = this.#desired;
    if (!desired) return undefined; // No desired state yet: leave whatever runs alone.
    const specs = await this.#specs(desired);
    let observed = await this.#o.runtime.list();
    if (await this.#runRestarts(observed)) observed = await this.#o.runtime.list();
    if (await this.#refreshImages(specs, observed)) observed = await this.#o.runtime.list();
    const plan = planReconcile({
      desired: specs,
      observed,
      records: this.#records,
      nowMs: Date.now(),
      settings: this.#o.settings,
    });
    for (const orphan of plan.removals) await this.#removeOrphan(orphan, desired);
    const before = JSON.stringify([...this.#records]);
    this.#records = new Map(plan.modules.map((m) => [m.name, m.record]));
    let acted = false;
    const failed: string[] = [];
    for (const module of plan.modules) {
      if (!module.action) continue;
      acted = true;
      if (!(await this.#execute(module.action, module))) failed.push(module.name);
    }
    if (JSON.stringify([...this.#records]) !== before) this.#o.onRecords(this.#records);
    const byName = new Map(observed.map((o) => [o.name, o]));
    const reports = plan.modules.map((m) => report(m, byName.get(m.name), specs));
    this.#o.onReports(reports, failed);
    // After acting, look again right away: the next pass reports the outcome.
    if (acted) this.#dirty = true;
    return plan.wakeAtMs;
  }

  /** Identity env per module id (the hub identity), not per container name. */
  async #specs(desired: DesiredDeployment): Promise<ModuleSpec[]> {
    const wanted = new Set(desired.modules.map((m) => m.moduleId));
    for (const id of this.#identityEnv.keys()) if (!wanted.has(id)) this.#identityEnv.delete(id);
    const specs: ModuleSpec[] = [];
    for (const module of desired.modules) {
      let env = this.#identityEnv.get(module.moduleId);
      if (!env) {
        env = (await this.#o.identity?.environmentFor(module.moduleId, this.#o.runtime.name)) ?? {};
        this.#identityEnv.set(module.moduleId, env);
      }
      this.#moduleIds.set(module.name, module.moduleId);
      specs.push(moduleSpec(module, env, this.#o.runtime.configSalt));
    }
    return specs;
  }

  async #removeOrphan(orphan: ObservedModule, desired: DesiredDeployment): Promise<void> {
    this.#o.logger.info({ module: orphan.name, id: orphan.id }, 'removing module instance');
    await this.#o.runtime.stop(orphan.id, this.#o.stopGraceMs);
    await this.#o.runtime.remove(orphan.id);
    if (!desired.modules.some((m) => m.name === orphan.name)) {
      // The identity it ran as; after an agent restart only the name is known, as before moduleId.
      const moduleId = this.#moduleIds.get(orphan.name) ?? orphan.name;
      this.#moduleIds.delete(orphan.name);
      if (!desired.modules.some((m) => m.moduleId === moduleId))
        await this.#o.identity?.removeModule(moduleId);
    }
  }

  /** Runs one action; records failures on the module's record. Returns false on failure. */
  async #execute(action: Action, plan: ModulePlan): Promise<boolean> {
    const { runtime, logger } = this.#o;
    const record = plan.record;
    const name = action.spec.name;
    try {
      switch (action.kind) {
        case 'replace':
          // Pull first, as IoT Edge's ModuleUpdateMode does: a failed pull throws here and the
          // old instance keeps running; only a present image stops it.
          await this.#pull(action.spec, plan);
          logger.info({ module: name }, 'configuration changed: recreating module');
          await runtime.stop(action.id, this.#o.stopGraceMs);
          await runtime.remove(action.id);
          await this.#createPulled(action.spec, action.start);
          break;
        case 'create':
          await this.#create(action.spec, action.start, plan);
          break;
        case 'start':
          await runtime.start(action.id);
          if (action.restart) this.#countRestart(record, name);
          break;
        case 'restart':
          logger.info({ module: name }, 'restarting unhealthy module');
          await runtime.stop(action.id, this.#o.stopGraceMs);
          await runtime.start(action.id);
          this.#countRestart(record, name);
          delete record.unhealthySinceMs;
          break;
        case 'stop':
          await runtime.stop(action.id, this.#o.stopGraceMs);
          record.stoppedByAgent = true;
          return true;
      }
      delete record.failure;
      delete record.stoppedByAgent;
      return true;
    } catch (err) {
      this.#recordFailure(record, action.spec, err);
      return false;
    }
  }

  async #create(spec: ModuleSpec, start: boolean, plan?: ModulePlan): Promise<void> {
    await this.#pull(spec, plan);
    await this.#createPulled(spec, start);
  }

  /**
   * Makes the module's image present, by its pull policy. A pull that really begins is recorded
   * and reported at once, so the cluster can tell `Pulling` while it lasts.
   */
  async #pull(spec: ModuleSpec, plan?: ModulePlan): Promise<void> {
    const onPulling = plan
      ? () => {
          plan.record.pullStartedMs = Date.now();
          this.#o.onModuleReport?.(report(plan, undefined, [spec]));
        }
      : undefined;
    await this.#o.runtime.ensureImage(spec, {
      policy: this.#pullPolicy(spec.name),
      credentials: this.#desired?.registryCredentials ?? [],
      ...(onPulling ? { onPulling } : {}),
    });
  }

  /** Creates (and starts) an instance whose image is present. */
  async #createPulled(spec: ModuleSpec, start: boolean): Promise<void> {
    const { runtime, logger } = this.#o;
    const id = await runtime.create(spec);
    logger.info({ module: spec.name, id: id.slice(0, 12) }, 'created module');
    if (start) await runtime.start(id);
  }

  #pullPolicy(name: string): ImagePullPolicy {
    return this.#desired?.modules.find((m) => m.name === name)?.imagePullPolicy ?? 'on-create';
  }

  #countRestart(record: RestartRecord, name: string): void {
    record.restartCount += 1;
    record.lastRestartMs = Date.now();
    this.#o.metrics.restarted(name);
  }

  #recordFailure(record: RestartRecord, spec: ModuleSpec, err: unknown): void {
    const runtimeError = err instanceof RuntimeError ? err : undefined;
    const reason = runtimeError?.reason ?? 'StartError';
    const previous = record.failure?.configHash === spec.configHash ? record.failure.attempts : 0;
    record.failure = {
      configHash: spec.configHash,
      reason,
      message: errorMessage(err),
      terminal: runtimeError?.terminal ?? false,
      atMs: Date.now(),
      attempts: previous + 1,
    };
    if (reason === 'ErrImagePull') this.#o.metrics.pullFailed(spec.name);
    this.#o.logger.warn(
      { module: spec.name, reason, err: errorMessage(err) },
      'module action failed',
    );
  }
}

function isoOf(ms: number | undefined): string | undefined {
  return ms === undefined ? undefined : new Date(ms).toISOString();
}

function report(
  plan: ModulePlan,
  observed: ObservedModule | undefined,
  specs: ModuleSpec[],
): ModuleReport {
  const spec = specs.find((s) => s.name === plan.name);
  const current = spec && observed?.configHash === spec.configHash ? observed : undefined;
  const out: ModuleReport = {
    name: plan.name,
    runtimeStatus: plan.status.runtimeStatus,
    restartCount: plan.record.restartCount,
    desiredStatus: spec?.desiredStatus ?? 'running',
    image: spec?.image ?? '',
  };
  return compact(out, {
    reason: plan.status.reason,
    statusDescription: plan.status.statusDescription,
    lastRestartTimeUtc: isoOf(plan.record.lastRestartMs),
    pullStartedTimeUtc: isoOf(plan.record.pullStartedMs),
    specHash: spec?.specHash,
    ...(current ? instanceFields(current) : {}),
  });
}

function instanceFields(current: ObservedModule): Partial<ModuleReport> {
  return {
    exitCode: current.state !== 'running' ? current.exitCode : undefined,
    lastStartTimeUtc: current.startedAt?.toISOString(),
    lastExitTimeUtc: current.finishedAt?.toISOString(),
    imageId: current.imageId,
    instanceId: current.id,
  };
}

/** Copies the defined fields of `extra` onto `out` (exactOptionalPropertyTypes-friendly). */
function compact<T extends object>(out: T, extra: Partial<T>): T {
  for (const [key, value] of Object.entries(extra)) {
    if (value !== undefined) (out as Record<string, unknown>)[key] = value;
  }
  return out;
}
