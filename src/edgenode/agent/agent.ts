import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { ErrorCode, KedgeError, errorMessage } from '../../common/errors.js';
import { silentLogger, type Logger } from '../../common/logger.js';
import {
  ManifestError,
  parseManifest,
  type DesiredDeployment,
} from '../../common/manifest/index.js';
import type { ModuleIdentityProvider } from '../../common/module-identity.js';
import { DEFAULT_RESTART_SETTINGS, type RestartSettings } from './backoff.js';
import { InvalidDocument, type DesiredMeta, type DesiredStateSource } from './desired-source.js';
import { AgentMetrics } from './metrics.js';
import type { RestartRecord } from './planner.js';
import { Reconciler } from './reconciler.js';
import {
  readDeviceReport,
  type AgentEvent,
  type AgentSnapshot,
  type DesiredStatusReport,
  type ModuleReport,
} from './reported.js';
import type { StreamOpen } from '../../common/cloudlink/streams.js';
import { openModuleSession } from './module-sessions.js';
import type { ModuleRuntime, ModuleSession } from './runtime.js';
import { readJson, writeJsonAtomic } from './state-store.js';
import type { LogOptions } from './types.js';
import { readNodeUsage } from './usage.js';
import { MAX_USAGE_MODULES, type UsageMessage } from '../../common/cloudlink/usage.js';

/** Docker's default stop grace: 10 s between SIGTERM and SIGKILL. */
export const DEFAULT_STOP_GRACE_MS = 10_000;
/** A full pass every 10 s catches anything the runtime's events missed. */
export const DEFAULT_RESYNC_INTERVAL_MS = 10_000;
/** Images of modules with pull policy `always` are pulled again every 5 minutes. */
export const DEFAULT_IMAGE_REFRESH_MS = 300_000;

/** Options for {@link Agent}. */
export interface AgentOptions {
  deviceId: string;
  /** The agent keeps `<dataDir>/agent/desired.json` and `restarts.json` there. */
  dataDir: string;
  runtime: ModuleRuntime;
  /** Gives modules their IoT Edge env; without it modules get no IOTEDGE_* variables. */
  identity?: ModuleIdentityProvider;
  logger?: Logger;
  metrics?: AgentMetrics;
  /** Restart arithmetic; defaults to edgeAgent's ({@link DEFAULT_RESTART_SETTINGS}). */
  restart?: Partial<RestartSettings>;
  /** Defaults to {@link DEFAULT_STOP_GRACE_MS}. */
  stopGraceMs?: number;
  /** Defaults to {@link DEFAULT_RESYNC_INTERVAL_MS}. */
  resyncIntervalMs?: number;
  /** How often `always` modules' images are pulled again; defaults to {@link DEFAULT_IMAGE_REFRESH_MS}. */
  imageRefreshMs?: number;
  /** Called with every accepted desired state, the restored one included (the hub takes its routes). */
  onDesired?: (desired: DesiredDeployment) => void;
}

/** What {@link Agent.apply} reports. */
export interface ApplyResult {
  version: string;
  status: DesiredStatusReport;
}

interface PersistedDesired {
  version: string;
  savedAtUtc: string;
  manifest: unknown;
}

/**
 * The device agent: keeps the modules of the desired deployment running on a runtime, and reports
 * what it sees. A library: `kedge node` composes it with the hub and the cloud link.
 */
export class Agent {
  readonly metrics: AgentMetrics;
  readonly #o: AgentOptions;
  readonly #log: Logger;
  readonly #reconciler: Reconciler;
  readonly #listeners = new Set<(event: AgentEvent) => void>();
  readonly #sources: DesiredStateSource[] = [];
  #snapshot: AgentSnapshot;
  #unwatch: (() => void) | undefined;
  #applying: Promise<unknown> = Promise.resolve();
  /** A version whose outcome the next pass reports (200, or 500 naming failed modules). */
  #pendingVersion: string | undefined;

  constructor(options: AgentOptions) {
    this.#o = options;
    this.#log = options.logger ?? silentLogger();
    this.metrics = options.metrics ?? new AgentMetrics();
    this.#snapshot = {
      deviceId: options.deviceId,
      modules: {},
      updatedAtUtc: new Date().toISOString(),
    };
    this.#reconciler = new Reconciler({
      runtime: options.runtime,
      settings: { ...DEFAULT_RESTART_SETTINGS, ...options.restart },
      stopGraceMs: options.stopGraceMs ?? DEFAULT_STOP_GRACE_MS,
      resyncIntervalMs: options.resyncIntervalMs ?? DEFAULT_RESYNC_INTERVAL_MS,
      imageRefreshMs: options.imageRefreshMs ?? DEFAULT_IMAGE_REFRESH_MS,
      identity: options.identity,
      metrics: this.metrics,
      logger: this.#log,
      onReports: (reports, failed) => this.#publish(reports, failed),
      onModuleReport: (report) => this.#publishOne(report),
      onRecords: (records) => void this.#saveRecords(records),
    });
  }

  get #stateDir(): string {
    return path.join(this.#o.dataDir, 'agent');
  }

  /**
   * Prepares the runtime, restores the persisted desired state and restart counters, adopts the
   * running modules, and runs the first pass. Works with no network and no source.
   */
  async start(): Promise<void> {
    await mkdir(this.#stateDir, { recursive: true, mode: 0o700 });
    await this.#o.runtime.prepare();
    const device = await readDeviceReport(this.#o.dataDir, await this.#o.runtime.info());
    this.#snapshot = { ...this.#snapshot, device };
    this.#emit({ type: 'device', device });
    const records = (await readJson(path.join(this.#stateDir, 'restarts.json'))) as
      Record<string, RestartRecord> | undefined;
    this.#reconciler.loadRecords(Object.entries(records ?? {}));
    await this.#restoreDesired();
    await this.#recoverFromEngineRestart();
    this.#unwatch = this.#o.runtime.watch(() => this.#reconciler.trigger());
    await this.#reconciler.reconcileNow();
  }

  /**
   * After a boot or an engine restart, the engine stopped every module; a module that exited 0 on
   * SIGTERM looks finished to `never` and `on-failure`. Such exits are marked as stops, so every
   * module whose desired status is running comes back whatever its restart policy.
   */
  async #recoverFromEngineRestart(): Promise<void> {
    const epoch = await this.#o.runtime.engineEpoch?.();
    if (epoch === undefined) return;
    const file = path.join(this.#stateDir, 'engine.json');
    const saved = (await readJson(file)) as { epoch?: string } | undefined;
    if (saved?.epoch !== undefined && saved.epoch !== epoch) {
      const stopped = (await this.#o.runtime.list()).filter((o) => o.state === 'exited');
      for (const o of stopped) this.#reconciler.markStoppedByAgent(o.name);
      this.#log.info(
        { modules: stopped.map((o) => o.name) },
        'the host booted or the engine restarted: starting the modules it stopped',
      );
    }
    await writeJsonAtomic(file, { epoch, savedAtUtc: new Date().toISOString() });
  }

  async #restoreDesired(): Promise<void> {
    const saved = (await readJson(path.join(this.#stateDir, 'desired.json'))) as
      PersistedDesired | undefined;
    if (!saved) return;
    try {
      const desired = parseManifest(saved.manifest);
      desired.version = saved.version;
      this.#reconciler.setDesired(desired);
      this.#o.onDesired?.(desired);
      this.#snapshot.lastDesiredVersion = saved.version;
      this.#log.info(
        { version: saved.version, modules: desired.modules.length },
        'restored desired state',
      );
    } catch (err) {
      this.#log.error(
        { err: errorMessage(err) },
        'persisted desired state is invalid; ignoring it',
      );
    }
  }

  /**
   * Validates a manifest, persists it atomically, and reconciles towards it. Resolves after the
   * first pass on the new state. A manifest that fails validation is rejected as a whole: the
   * current modules keep running and the rejection is reported (code 400).
   * @throws ManifestError naming every bad path.
   */
  apply(doc: unknown, meta: Partial<DesiredMeta> = {}): Promise<ApplyResult> {
    const run = this.#applying.then(() => this.#apply(doc, meta));
    this.#applying = run.catch(() => undefined);
    return run;
  }

  async #apply(doc: unknown, meta: Partial<DesiredMeta>): Promise<ApplyResult> {
    let desired: DesiredDeployment;
    try {
      if (doc instanceof InvalidDocument) throw doc.error;
      desired = parseManifest(doc);
    } catch (err) {
      this.#setDesiredStatus({ code: 400, description: errorMessage(err) }, meta.version);
      this.#log.error({ origin: meta.origin, err: errorMessage(err) }, 'desired state rejected');
      throw err;
    }
    if (meta.version !== undefined) desired.version = meta.version;
    const persisted: PersistedDesired = {
      version: desired.version,
      savedAtUtc: new Date().toISOString(),
      manifest: doc,
    };
    await writeJsonAtomic(path.join(this.#stateDir, 'desired.json'), persisted);
    this.#reconciler.setDesired(desired);
    this.#o.onDesired?.(desired);
    this.#snapshot.lastDesiredVersion = desired.version;
    this.#pendingVersion = desired.version;
    this.#log.info({ version: desired.version, origin: meta.origin }, 'applying desired state');
    await this.#reconciler.reconcileNow();
    return { version: desired.version, status: this.#snapshot.lastDesiredStatus ?? okStatus() };
  }

  /** Feeds the agent from a source; the source is stopped with the agent. */
  async addSource(source: DesiredStateSource): Promise<void> {
    this.#sources.push(source);
    await source.start((doc, meta) => {
      this.apply(doc, meta).catch((err: unknown) => {
        if (!(err instanceof ManifestError))
          this.#log.error({ err: errorMessage(err) }, 'apply failed');
      });
    });
  }

  /** Runs a pass now and resolves when it is done. */
  reconcileNow(): Promise<void> {
    return this.#reconciler.reconcileNow();
  }

  /** The reported state (a copy). */
  snapshot(): AgentSnapshot {
    return structuredClone(this.#snapshot);
  }

  /** Subscribes to reported-state changes; returns the unsubscribe. */
  subscribe(listener: (event: AgentEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** A module's output. @throws KedgeError NotFound when the module has no instance. */
  async logs(module: string, options: LogOptions = {}): Promise<Readable> {
    return this.#o.runtime.logs(await this.#instanceOf(module), options);
  }

  /**
   * An exec, attach or port-forward session with a module.
   * @throws KedgeError NotFound when the module has no instance, or why the session cannot open.
   */
  async openSession(open: StreamOpen): Promise<ModuleSession> {
    return openModuleSession(this.#o.runtime, await this.#instanceOf(open.module), open);
  }

  async #instanceOf(module: string): Promise<string> {
    const instanceId = this.#snapshot.modules[module]?.instanceId;
    const observed = instanceId
      ? undefined
      : (await this.#o.runtime.list()).find((o) => o.name === module);
    const id = instanceId ?? observed?.id;
    if (!id) throw new KedgeError(ErrorCode.NotFound, `module ${module} has no running instance`);
    return id;
  }

  /**
   * Reads the device's and every running module's CPU and memory now. Apart from reconciling:
   * a slow engine delays the sample, never a pass.
   */
  async usage(): Promise<UsageMessage> {
    const running = Object.values(this.#snapshot.modules).filter(
      (m) => (m.runtimeStatus === 'running' || m.runtimeStatus === 'unhealthy') && m.instanceId,
    );
    const [node, byId] = await Promise.all([
      readNodeUsage(this.#o.dataDir),
      this.#o.runtime.usage?.(running.map((m) => m.instanceId!)) ?? new Map<string, never>(),
    ]);
    const modules = running.flatMap((m) => {
      const u = byId.get(m.instanceId!);
      return u ? [{ name: m.name, ...u }] : [];
    });
    return { node, modules: modules.slice(0, MAX_USAGE_MODULES) };
  }

  /** Restarts a deployed module's instance (`$edgeAgent` RestartModule). */
  restartModule(name: string): Promise<void> {
    return this.#reconciler.restartModule(name);
  }

  /** Names of the modules the agent reports. */
  moduleNames(): string[] {
    return Object.keys(this.#snapshot.modules);
  }

  /**
   * Stops the agent. Modules keep running unless `stopModules` is set (then they are stopped in
   * reverse startup order, and the next start brings them back without counting restarts).
   */
  async stop(options: { stopModules?: boolean } = {}): Promise<void> {
    for (const source of this.#sources.splice(0)) await source.stop();
    this.#unwatch?.();
    await this.#applying;
    await this.#reconciler.stop();
    if (options.stopModules) await this.#stopModules();
  }

  async #stopModules(): Promise<void> {
    const observed = await this.#o.runtime.list();
    const order = Object.keys(this.#snapshot.modules).reverse();
    const rank = (name: string): number => order.indexOf(name);
    observed.sort((a, b) => rank(a.name) - rank(b.name));
    for (const o of observed.filter((m) => m.state === 'running')) {
      await this.#o.runtime.stop(o.id, this.#o.stopGraceMs ?? DEFAULT_STOP_GRACE_MS);
      this.#reconciler.markStoppedByAgent(o.name);
    }
    await this.#saveRecords(this.#reconciler.records);
  }

  async #saveRecords(records: ReadonlyMap<string, RestartRecord>): Promise<void> {
    try {
      await writeJsonAtomic(
        path.join(this.#stateDir, 'restarts.json'),
        Object.fromEntries(records),
      );
    } catch (err) {
      this.#log.error({ err: errorMessage(err) }, 'cannot persist restart counters');
    }
  }

  #publish(reports: ModuleReport[], failed: string[]): void {
    const next: Record<string, ModuleReport> = {};
    for (const r of reports) {
      next[r.name] = r;
      const old = this.#snapshot.modules[r.name];
      if (!old || JSON.stringify(old) !== JSON.stringify(r))
        this.#emit({ type: 'module', module: r });
    }
    for (const name of Object.keys(this.#snapshot.modules)) {
      if (!(name in next)) this.#emit({ type: 'module-removed', name });
    }
    this.#snapshot.modules = next;
    this.#snapshot.updatedAtUtc = new Date().toISOString();
    this.metrics.observeModules(reports);
    if (this.#pendingVersion !== undefined) {
      const version = this.#pendingVersion;
      this.#pendingVersion = undefined;
      const status: DesiredStatusReport =
        failed.length === 0
          ? okStatus()
          : { code: 500, description: `failed modules: ${failed.join(', ')}` };
      this.#setDesiredStatus(status, version);
    }
  }

  /** One module's report changed during a pass; the pass's own reports follow when it ends. */
  #publishOne(report: ModuleReport): void {
    this.#snapshot.modules = { ...this.#snapshot.modules, [report.name]: report };
    this.#snapshot.updatedAtUtc = new Date().toISOString();
    this.#emit({ type: 'module', module: report });
  }

  #setDesiredStatus(status: DesiredStatusReport, version: string | undefined): void {
    if (version !== undefined) this.#snapshot.lastDesiredVersion = version;
    this.#snapshot.lastDesiredStatus = status;
    const event: AgentEvent = { type: 'desired', lastDesiredStatus: status };
    if (this.#snapshot.lastDesiredVersion !== undefined)
      event.lastDesiredVersion = this.#snapshot.lastDesiredVersion;
    this.#emit(event);
  }

  #emit(event: AgentEvent): void {
    for (const listener of this.#listeners) {
      try {
        listener(event);
      } catch (err) {
        this.#log.error({ err: errorMessage(err) }, 'agent event listener threw');
      }
    }
  }
}

function okStatus(): DesiredStatusReport {
  return { code: 200, description: 'applied' };
}
