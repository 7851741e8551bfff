import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Readable } from 'node:stream';
import { silentLogger, type Logger } from '../../common/logger.js';
import { KEDGE_VERSION } from '../../common/version.js';
import { kernelBootId, procStartOf } from './boot.js';
import { mergeEnv } from './docker-create.js';
import { DEFAULT_LOG_MAX_BYTES, readProcessLog, rotateLog } from './process-logs.js';
import { DEFAULT_PROCESS_USER, resolveProcessUser, type ProcessUser } from './process-user.js';
import { processExec } from './process-session.js';
import {
  RuntimeError,
  type ExecRequest,
  type ModuleRuntime,
  type ModuleSession,
} from './runtime.js';
import { readJson, writeJsonAtomic } from './state-store.js';
import type {
  InstanceUsage,
  LogOptions,
  ModuleSpec,
  ObservedModule,
  RuntimeInfo,
} from './types.js';
import { readProcessGroups } from './usage.js';

/** How often adopted processes (not our children, so no exit event) are checked. */
const ADOPTED_POLL_MS = 1000;
/** How often a stopping process is checked for exit. */
const STOP_POLL_MS = 50;
/** Exit code reported for a process the agent killed with SIGTERM / SIGKILL (128 + signal). */
const EXIT_SIGTERM = 143;

/**
 * The wrapper every module runs under: it keeps the exit code in a file (the agent may not be the
 * parent any more when the module exits) and stamps each output line with the UTC time, since
 * nothing else records when a line was written. Output goes to a file, not to the agent, so the
 * module keeps running when the agent dies. The agent opens both files and hands them over as
 * fd 1 (log) and fd 3 (exit code): the module's user cannot open them in the agent's state
 * directory, and the module itself never sees fd 3.
 */
const WRAPPER = [
  // mawk reads pipes in blocks unless interactive; gawk and busybox awk read lines already.
  'awkmode=; awk -W version 2>/dev/null | grep -q mawk && awkmode="-W interactive"',
  '{ "$@" 3>&-; echo $? >&3; } 2>&1 | TZ=UTC awk $awkmode \'{ print strftime("%Y-%m-%dT%H:%M:%SZ"), $0; fflush() }\'',
].join('\n');
/** Where a module process's ports are dialled. */
const LOOPBACK = '127.0.0.1';
/** Where a module runs when its user cannot enter the instance directory (Docker's default). */
const UNPRIVILEGED_CWD = '/';

interface Instance {
  id: string;
  name: string;
  configHash: string;
  image: string;
  command: string[];
  env: string[];
  cwd: string;
  state: 'created' | 'running' | 'exited';
  pid?: number;
  /** /proc start time of `pid`, to tell our process from a later one with a recycled pid. */
  procStart?: string;
  startedAt?: string;
  finishedAt?: string;
  exitCode?: number;
}

/** Options for {@link ProcessRuntime}. */
export interface ProcessRuntimeOptions {
  deviceId: string;
  /** Instances live in `<dataDir>/agent/process/<id>/`. */
  dataDir: string;
  logger?: Logger;
  /** A module's log is rotated past this size. Default 10 MiB. */
  logMaxBytes?: number;
  /**
   * User modules run as when kedge runs as root: a name, `uid` or `uid:gid`; `root` keeps
   * kedge's user (development only). Default `nobody`.
   */
  user?: string;
}

function asArgv(value: unknown): string[] {
  if (typeof value === 'string') return ['/bin/sh', '-c', value];
  return Array.isArray(value) ? value.map(String) : [];
}

/**
 * Runs modules as local processes, for devices without a container engine. A module's command is
 * `createOptions.Entrypoint` + `createOptions.Cmd`; `Env` and `WorkingDir` are honoured, the rest
 * of createOptions and the image are ignored. Processes run detached in their own process group,
 * so they survive the agent, and are adopted again by pid and start time.
 */
export class ProcessRuntime implements ModuleRuntime {
  readonly name = 'process';
  readonly configSalt: string;
  readonly #root: string;
  readonly #log: Logger;
  readonly #user: ProcessUser | undefined;
  readonly #logMaxBytes: number;
  #onChange: (() => void) | undefined;
  readonly #children = new Set<string>();

  constructor(options: ProcessRuntimeOptions) {
    this.#root = path.join(options.dataDir, 'agent', 'process', options.deviceId);
    this.#log = options.logger ?? silentLogger();
    this.#user = resolveProcessUser(options.user ?? DEFAULT_PROCESS_USER);
    this.#logMaxBytes = options.logMaxBytes ?? DEFAULT_LOG_MAX_BYTES;
    // Instances started as another user are recreated when the user changes.
    this.configSalt = this.#user ? `process:${this.#user.uid}:${this.#user.gid}` : 'process';
  }

  async prepare(): Promise<void> {
    await mkdir(this.#root, { recursive: true, mode: 0o700 });
  }

  info(): Promise<RuntimeInfo> {
    return Promise.resolve({
      name: 'process',
      version: `${KEDGE_VERSION} (node ${process.version})`,
    });
  }

  /** Processes do not survive a boot: the boot id is the epoch. */
  engineEpoch(): Promise<string> {
    return kernelBootId();
  }

  #dir(id: string): string {
    return path.join(this.#root, id);
  }

  async #load(id: string): Promise<Instance | undefined> {
    return (await readJson(path.join(this.#dir(id), 'instance.json'))) as Instance | undefined;
  }

  async #save(instance: Instance): Promise<void> {
    await writeJsonAtomic(path.join(this.#dir(instance.id), 'instance.json'), instance);
  }

  async list(): Promise<ObservedModule[]> {
    const ids = await readdir(this.#root).catch(() => []);
    const out: ObservedModule[] = [];
    for (const id of ids) {
      const instance = await this.#load(id).catch(() => undefined);
      if (!instance) continue;
      if (instance.state === 'running') await this.#refresh(instance);
      out.push(toObserved(instance));
    }
    return out;
  }

  /** Notices that a running instance's process is gone and records how it ended. */
  async #refresh(instance: Instance): Promise<void> {
    if (instance.pid !== undefined && (await procStartOf(instance.pid)) === instance.procStart)
      return;
    const exitFile = path.join(this.#dir(instance.id), 'exit-code');
    const text = (await readFile(exitFile, 'utf8').catch(() => '')).trim();
    // An empty file: the wrapper was killed before the module's exit code reached it.
    const exited = text === '' ? undefined : await stat(exitFile).catch(() => undefined);
    const code = exited ? Number(text) : EXIT_SIGTERM;
    instance.state = 'exited';
    instance.exitCode = Number.isNaN(code) ? EXIT_SIGTERM : code;
    instance.finishedAt = (exited?.mtime ?? new Date()).toISOString();
    await this.#save(instance);
  }

  ensureImage(): Promise<void> {
    return Promise.resolve(); // No images: the command must exist on the device.
  }

  async create(spec: ModuleSpec): Promise<string> {
    const o = spec.createOptions;
    const command = [...asArgv(o.Entrypoint), ...asArgv(o.Cmd)];
    if (command.length === 0) {
      throw new RuntimeError(
        'CreateContainerError',
        'the process runtime needs createOptions.Cmd (or Entrypoint)',
        {
          terminal: true,
        },
      );
    }
    const id = `${spec.name}-${spec.configHash.slice(0, 8)}-${randomBytes(3).toString('hex')}`;
    await mkdir(this.#dir(id), { recursive: true, mode: 0o700 });
    const optionEnv = Array.isArray(o.Env) ? o.Env.map(String) : [];
    const instance: Instance = {
      id,
      name: spec.name,
      configHash: spec.configHash,
      image: spec.image,
      command,
      env: mergeEnv([`PATH=${process.env.PATH ?? '/usr/bin:/bin'}`, ...optionEnv], spec.env),
      cwd:
        typeof o.WorkingDir === 'string'
          ? o.WorkingDir
          : this.#user
            ? UNPRIVILEGED_CWD
            : this.#dir(id),
      state: 'created',
    };
    await this.#save(instance);
    return id;
  }

  async start(id: string): Promise<void> {
    const instance = await this.#load(id);
    if (!instance)
      throw new RuntimeError('StartError', `no process instance ${id}`, { terminal: false });
    if (instance.state === 'running') return;
    const dir = this.#dir(id);
    const env = Object.fromEntries(
      instance.env.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]),
    );
    const logFd = openSync(path.join(dir, 'output.log'), 'a');
    const exitFd = openSync(path.join(dir, 'exit-code'), 'w');
    const child = spawn('/bin/sh', ['-c', WRAPPER, 'kedge-module', ...instance.command], {
      cwd: instance.cwd,
      env,
      detached: true,
      stdio: ['ignore', logFd, 'ignore', exitFd],
      ...(this.#user ?? {}),
    });
    const pid = await new Promise<number>((resolve, reject) => {
      child.once('spawn', () => resolve(child.pid!));
      child.once('error', (err) =>
        reject(new RuntimeError('StartError', err.message, { terminal: true, cause: err })),
      );
    }).finally(() => {
      closeSync(logFd);
      closeSync(exitFd);
    });
    child.unref();
    this.#children.add(id);
    child.once('exit', () => {
      this.#children.delete(id);
      this.#onChange?.();
    });
    Object.assign(instance, {
      state: 'running',
      pid,
      procStart: await procStartOf(pid),
      startedAt: new Date().toISOString(),
    });
    delete instance.exitCode;
    delete instance.finishedAt;
    await this.#save(instance);
    this.#log.debug({ module: instance.name, pid }, 'started process');
  }

  async stop(id: string, graceMs: number): Promise<void> {
    const instance = await this.#load(id);
    if (!instance || instance.state !== 'running' || instance.pid === undefined) return;
    const alive = async (): Promise<boolean> =>
      (await procStartOf(instance.pid!)) === instance.procStart;
    const signalGroup = (signal: NodeJS.Signals): void => {
      try {
        process.kill(-instance.pid!, signal);
      } catch {
        // Already gone.
      }
    };
    signalGroup('SIGTERM');
    const deadline = Date.now() + graceMs;
    while ((await alive()) && Date.now() < deadline) await sleep(STOP_POLL_MS);
    if (await alive()) signalGroup('SIGKILL');
    while (await alive()) await sleep(STOP_POLL_MS);
    await this.#refresh(instance);
  }

  async remove(id: string): Promise<void> {
    await this.stop(id, 0);
    await rm(this.#dir(id), { recursive: true, force: true });
  }

  /** Each instance's process group: the wrapper, the module and whatever they started. */
  async usage(ids: readonly string[]): Promise<Map<string, InstanceUsage>> {
    const pids = new Map<string, number>();
    for (const id of ids) {
      const instance = await this.#load(id).catch(() => undefined);
      if (instance?.state !== 'running' || instance.pid === undefined) continue;
      if ((await procStartOf(instance.pid)) === instance.procStart) pids.set(id, instance.pid);
    }
    const groups = await readProcessGroups(new Set(pids.values()));
    const atMs = Date.now();
    const out = new Map<string, InstanceUsage>();
    for (const [id, pid] of pids) {
      const group = groups.get(pid);
      if (group) out.set(id, { atMs, ...group });
    }
    return out;
  }

  /** Runs a command as the module runs: its environment, working directory and user. */
  async exec(id: string, request: ExecRequest): Promise<ModuleSession> {
    const instance = await this.#load(id);
    if (instance?.state !== 'running')
      throw new RuntimeError('StartError', `module instance ${id} is not running`, {
        terminal: true,
      });
    return processExec({ env: instance.env, cwd: instance.cwd, user: this.#user }, request);
  }

  /** A module process listens on the device's own addresses. */
  portAddress(): Promise<string> {
    return Promise.resolve(LOOPBACK);
  }

  logs(id: string, options: LogOptions): Promise<Readable> {
    return readProcessLog(path.join(this.#dir(id), 'output.log'), options);
  }

  watch(onChange: () => void): () => void {
    this.#onChange = onChange;
    // Adopted processes are not our children: poll them for exit.
    const timer = setInterval(() => {
      void this.#pollAdopted().catch(() => undefined);
      void this.#rotateLogs().catch(() => undefined);
    }, ADOPTED_POLL_MS);
    timer.unref();
    return () => {
      clearInterval(timer);
      this.#onChange = undefined;
    };
  }

  /** Rotates every module's log that grew past the limit. */
  async #rotateLogs(): Promise<void> {
    for (const id of await readdir(this.#root).catch(() => [])) {
      const file = path.join(this.#dir(id), 'output.log');
      if (await rotateLog(file, this.#logMaxBytes)) this.#log.debug({ id }, 'rotated module log');
    }
  }

  async #pollAdopted(): Promise<void> {
    const ids = await readdir(this.#root).catch(() => []);
    for (const id of ids.filter((i) => !this.#children.has(i))) {
      const instance = await this.#load(id).catch(() => undefined);
      if (instance?.state !== 'running' || instance.pid === undefined) continue;
      if ((await procStartOf(instance.pid)) !== instance.procStart) {
        this.#onChange?.();
        return;
      }
    }
  }
}

function toObserved(instance: Instance): ObservedModule {
  const observed: ObservedModule = {
    name: instance.name,
    id: instance.id,
    configHash: instance.configHash,
    state: instance.state,
    health: 'none',
    image: instance.image,
  };
  if (instance.exitCode !== undefined) observed.exitCode = instance.exitCode;
  if (instance.startedAt) observed.startedAt = new Date(instance.startedAt);
  if (instance.finishedAt) observed.finishedAt = new Date(instance.finishedAt);
  return observed;
}
