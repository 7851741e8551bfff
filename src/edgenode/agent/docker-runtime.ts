import { PassThrough, type Readable } from 'node:stream';
import type DockerClient from 'dockerode';
import { Docker } from './dockerode-lazy.js';
import type { RegistryCredential } from '../../common/manifest/index.js';
import { ErrorCode, errorMessage } from '../../common/errors.js';
import { silentLogger, type Logger } from '../../common/logger.js';
import { containerCreateBody, LABELS, OWNER, type ContainerContext } from './docker-create.js';
import { demuxFrames, registryOf } from './docker-util.js';
import { kernelBootId, pidFileStart } from './boot.js';
import { dockerAttach, dockerExec, dockerPortAddress } from './docker-session.js';
import {
  RuntimeError,
  type ExecRequest,
  type ModuleRuntime,
  type ModuleSession,
  type PullRequest,
} from './runtime.js';
import type {
  HealthState,
  InstanceState,
  InstanceUsage,
  LogOptions,
  ModuleSpec,
  ObservedModule,
  RuntimeInfo,
} from './types.js';

/** Wait before re-subscribing to Docker events after the stream ended (dockerd restart). */
const EVENTS_RETRY_MS = 2000;
/** HTTP status Docker uses for "not modified": stop on a stopped container. */
/** dockerd's default pid file; its process start time tells one engine run from the next. */
const DOCKERD_PID_FILE = '/var/run/docker.pid';
const HTTP_NOT_MODIFIED = 304;
const HTTP_NOT_FOUND = 404;
const HTTP_CONFLICT = 409;
const HTTP_BAD_REQUEST = 400;

/** Options for {@link DockerRuntime}. */
export interface DockerRuntimeOptions extends ContainerContext {
  /** Prefix of container names (module name follows). Defaults to '' (IoT Edge naming). */
  containerNamePrefix?: string;
  /** A dockerode client. Defaults to one built from `DOCKER_HOST` (or the local socket). */
  docker?: DockerClient;
  logger?: Logger;
}

interface DockerApiError {
  statusCode?: number;
  json?: { message?: string } | null;
  message?: string;
}

/** Docker's own error text, without dockerode's "(HTTP code 400) unexpected -" prefix. */
export function dockerMessage(err: unknown): string {
  const e = err as DockerApiError;
  return e.json?.message ?? e.message ?? String(err);
}

function statusOf(err: unknown): number | undefined {
  return (err as DockerApiError).statusCode;
}

/**
 * Docker rejected the request itself, so retrying the same options cannot help: a 400, or a
 * request body that did not decode (Docker before 23 answers those with 500).
 */
function isBadRequest(err: unknown): boolean {
  return (
    statusOf(err) === HTTP_BAD_REQUEST ||
    /^json: cannot unmarshal|^invalid character/.test(dockerMessage(err))
  );
}

/** Runs modules as containers on the Docker Engine API (Docker, Moby, Podman's socket). */
export class DockerRuntime implements ModuleRuntime {
  readonly name = 'docker';
  readonly #docker: DockerClient;
  readonly #ctx: ContainerContext;
  readonly #prefix: string;
  readonly #log: Logger;

  constructor(options: DockerRuntimeOptions) {
    this.#docker = options.docker ?? new Docker();
    this.#ctx = {
      deviceId: options.deviceId,
      network: options.network,
      gatewayHostName: options.gatewayHostName,
    };
    this.#prefix = options.containerNamePrefix ?? '';
    this.#log = options.logger ?? silentLogger();
  }

  /**
   * Part of every module's config hash: a new network, gateway name or hub address means the
   * containers' host entry is stale, so they are recreated.
   */
  get configSalt(): string {
    const c = this.#ctx;
    const base = `docker|${c.network}|${c.gatewayHostName}`;
    return c.gatewayAddress === undefined ? base : `${base}|${c.gatewayAddress}`;
  }

  /**
   * Creates the module network if needed and returns its gateway address: the host's own address
   * on that bridge, where the hub listens for modules. From then on containers resolve the gateway
   * host name to it (instead of Docker's `host-gateway`, the default bridge), so only containers on
   * the module network reach the hub. Undefined when Docker reports no IPv4 gateway.
   */
  async hubAddress(): Promise<string | undefined> {
    await this.prepare();
    const network = (await this.#docker.getNetwork(this.#ctx.network).inspect()) as {
      IPAM?: { Config?: { Gateway?: string }[] | null };
    };
    const gateway = (network.IPAM?.Config ?? [])
      .map((c) => c.Gateway?.split('/')[0])
      .find((g): g is string => g !== undefined && g !== '' && !g.includes(':'));
    if (gateway) this.#ctx.gatewayAddress = gateway;
    return gateway;
  }

  async prepare(): Promise<void> {
    const existing = await this.#docker.listNetworks({ filters: { name: [this.#ctx.network] } });
    if (existing.some((n) => n.Name === this.#ctx.network)) return;
    try {
      await this.#docker.createNetwork({
        Name: this.#ctx.network,
        Driver: 'bridge',
        CheckDuplicate: true,
        Labels: { [LABELS.owner]: OWNER },
      });
      this.#log.info({ network: this.#ctx.network }, 'created module network');
    } catch (err) {
      if (statusOf(err) === HTTP_CONFLICT) return;
      throw new RuntimeError(
        'CreateContainerError',
        `creating network ${this.#ctx.network}: ${dockerMessage(err)}`,
        {
          terminal: false,
          cause: err,
        },
      );
    }
  }

  async info(): Promise<RuntimeInfo> {
    const version = (await this.#docker.version()) as { Version: string };
    return { name: 'docker', version: version.Version };
  }

  /**
   * The boot id plus dockerd's start time (from its pid file, when the engine runs on this host):
   * a reboot or an engine restart changes it.
   */
  async engineEpoch(): Promise<string> {
    const engineStart = await pidFileStart(DOCKERD_PID_FILE);
    return `${await kernelBootId()}/${engineStart ?? 'unknown'}`;
  }

  async list(): Promise<ObservedModule[]> {
    const containers = await this.#docker.listContainers({
      all: true,
      filters: { label: [`${LABELS.owner}=${OWNER}`, `${LABELS.device}=${this.#ctx.deviceId}`] },
    });
    const observed = await Promise.all(containers.map((c) => this.#inspect(c.Id)));
    return observed.filter((o): o is ObservedModule => o !== undefined);
  }

  /** The observed state of one container; undefined when it vanished meanwhile. */
  async #inspect(id: string): Promise<ObservedModule | undefined> {
    try {
      return toObserved(await this.#docker.getContainer(id).inspect());
    } catch (err) {
      if (statusOf(err) === HTTP_NOT_FOUND) return undefined;
      throw err;
    }
  }

  async ensureImage(spec: ModuleSpec, pull: PullRequest): Promise<void> {
    const present = (await this.imageId(spec.image)) !== undefined;
    if (present && pull.policy === 'always') {
      pull.onPulling?.();
      // A device keeps running what it has while its registry is out of reach.
      await this.#pull(spec.image, pull.credentials).catch((err: unknown) =>
        this.#log.warn(
          { image: spec.image, reason: errorMessage(err) },
          'image pull failed; using the image already on the device',
        ),
      );
      return;
    }
    if (present) return;
    if (pull.policy === 'never') {
      throw new RuntimeError(
        'ErrImageNeverPull',
        `image ${spec.image} is not present and imagePullPolicy is never`,
        {
          terminal: false,
          code: ErrorCode.ImagePull,
        },
      );
    }
    pull.onPulling?.();
    await this.#pull(spec.image, pull.credentials);
  }

  async imageId(image: string): Promise<string | undefined> {
    return this.#docker
      .getImage(image)
      .inspect()
      .then(
        (info) => info.Id,
        () => undefined,
      );
  }

  async #pull(image: string, credentials: readonly RegistryCredential[]): Promise<void> {
    const registry = registryOf(image);
    const cred = credentials.find((c) => registryOf(`${c.address}/x`) === registry);
    const options = cred
      ? {
          authconfig: {
            username: cred.username,
            password: cred.password,
            serveraddress: cred.address,
          },
        }
      : {};
    this.#log.info({ image, registry, authenticated: cred !== undefined }, 'pulling image');
    try {
      const stream = await this.#docker.pull(image, options);
      await new Promise<void>((resolve, reject) => {
        this.#docker.modem.followProgress(stream, (err: Error | null) =>
          err ? reject(err) : resolve(),
        );
      });
    } catch (err) {
      throw new RuntimeError('ErrImagePull', `ErrImagePull: ${image}: ${dockerMessage(err)}`, {
        terminal: false,
        cause: err,
        code: ErrorCode.ImagePull,
      });
    }
  }

  async create(spec: ModuleSpec): Promise<string> {
    const body = containerCreateBody(spec, this.#ctx);
    try {
      const container = await this.#docker.createContainer({
        ...body,
        name: this.#prefix + spec.name,
      });
      return container.id;
    } catch (err) {
      throw new RuntimeError('CreateContainerError', dockerMessage(err), {
        terminal: isBadRequest(err),
        cause: err,
      });
    }
  }

  async start(id: string): Promise<void> {
    try {
      await this.#docker.getContainer(id).start();
    } catch (err) {
      const status = statusOf(err);
      if (status === HTTP_NOT_MODIFIED) return;
      throw new RuntimeError('StartError', dockerMessage(err), {
        terminal: isBadRequest(err),
        cause: err,
      });
    }
  }

  async stop(id: string, graceMs: number): Promise<void> {
    try {
      await this.#docker.getContainer(id).stop({ t: Math.ceil(graceMs / 1000) });
    } catch (err) {
      const status = statusOf(err);
      if (status === HTTP_NOT_MODIFIED || status === HTTP_NOT_FOUND) return;
      throw new RuntimeError('StartError', `stopping: ${dockerMessage(err)}`, {
        terminal: false,
        cause: err,
      });
    }
  }

  async remove(id: string): Promise<void> {
    try {
      await this.#docker.getContainer(id).remove({ force: true });
    } catch (err) {
      if (statusOf(err) === HTTP_NOT_FOUND) return;
      throw new RuntimeError('StartError', `removing: ${dockerMessage(err)}`, {
        terminal: false,
        cause: err,
      });
    }
  }

  /** One-shot stats of each container (no second sample to wait for), read in parallel. */
  async usage(ids: readonly string[]): Promise<Map<string, InstanceUsage>> {
    const read = async (id: string): Promise<[string, InstanceUsage | undefined]> => {
      try {
        const stats = await this.#docker
          .getContainer(id)
          .stats({ stream: false, 'one-shot': true });
        return [id, usageFromStats(stats)];
      } catch (err) {
        this.#log.debug({ id, reason: dockerMessage(err) }, 'container stats unavailable');
        return [id, undefined];
      }
    };
    const out = new Map<string, InstanceUsage>();
    for (const [id, usage] of await Promise.all(ids.map(read))) if (usage) out.set(id, usage);
    return out;
  }

  exec(id: string, request: ExecRequest): Promise<ModuleSession> {
    return dockerExec(this.#docker, id, request);
  }

  attach(id: string, request: ExecRequest): Promise<ModuleSession> {
    return dockerAttach(this.#docker, id, request);
  }

  portAddress(id: string): Promise<string> {
    return dockerPortAddress(this.#docker, id);
  }

  async logs(id: string, options: LogOptions): Promise<Readable> {
    const container = this.#docker.getContainer(id);
    const tty =
      ((await container.inspect()) as { Config?: { Tty?: boolean } }).Config?.Tty === true;
    const query = {
      stdout: true,
      stderr: true,
      timestamps: options.timestamps ?? false,
      ...(options.tail !== undefined ? { tail: options.tail } : {}),
      ...(options.since ? { since: options.since.getTime() / 1000 } : {}),
    };
    const out = new PassThrough();
    if (!options.follow) {
      const buffer = await container.logs({ ...query, follow: false });
      out.end(tty ? buffer : demuxFrames(buffer));
      return out;
    }
    const stream = await container.logs({ ...query, follow: true });
    if (tty) stream.pipe(out);
    else {
      this.#docker.modem.demuxStream(stream, out, out);
      stream.on('end', () => out.end());
    }
    out.on('close', () => (stream as Readable).destroy());
    return out;
  }

  watch(onChange: () => void): () => void {
    let stream: Readable | undefined;
    let closed = false;
    let retry: NodeJS.Timeout | undefined;
    const subscribe = (): void => {
      this.#docker
        .getEvents({
          filters: { type: ['container'], label: [`${LABELS.device}=${this.#ctx.deviceId}`] },
        })
        .then((events) => {
          stream = events as Readable;
          if (closed) return stream.destroy();
          stream.on('data', () => onChange());
          stream.on('close', () => resubscribe());
          stream.on('error', () => resubscribe());
        })
        .catch(() => resubscribe());
    };
    const resubscribe = (): void => {
      if (closed || retry) return;
      retry = setTimeout(() => {
        retry = undefined;
        onChange();
        subscribe();
      }, EVENTS_RETRY_MS);
    };
    subscribe();
    return () => {
      closed = true;
      clearTimeout(retry);
      stream?.destroy();
    };
  }
}

interface Inspect {
  Id: string;
  Image: string;
  Config: { Image: string; Labels?: Record<string, string> };
  State: {
    Status: string;
    ExitCode: number;
    Error: string;
    StartedAt: string;
    FinishedAt: string;
    Health?: { Status: string };
  };
}

/** The parts of the engine's stats answer a usage sample reads (cgroup v1 and v2 alike). */
interface StatsAnswer {
  read?: string;
  cpu_stats?: { cpu_usage?: { total_usage?: number } };
  memory_stats?: {
    usage?: number;
    stats?: { inactive_file?: number; total_inactive_file?: number };
  };
}

const NS_PER_SEC = 1e9;

/**
 * CPU seconds and memory working set from a stats answer; undefined when it holds neither (a
 * stopped container). The working set is usage minus inactive file pages, as the kubelet counts
 * it: `inactive_file` on cgroup v2, `total_inactive_file` on v1.
 */
export function usageFromStats(raw: unknown): InstanceUsage | undefined {
  const s = raw as StatsAnswer;
  const cpuNs = s.cpu_stats?.cpu_usage?.total_usage;
  const memory = s.memory_stats?.usage;
  if (cpuNs === undefined || memory === undefined) return undefined;
  const inactive = inactiveFileOf(s.memory_stats?.stats);
  const readMs = Date.parse(s.read ?? '');
  return {
    atMs: readMs > 0 ? readMs : Date.now(),
    cpuSecs: cpuNs / NS_PER_SEC,
    memoryWorkingSetBytes: Math.max(0, memory - inactive),
  };
}

function inactiveFileOf(
  stats: { inactive_file?: number; total_inactive_file?: number } | undefined,
): number {
  return stats?.inactive_file ?? stats?.total_inactive_file ?? 0;
}

/** Docker reports unset times as year 1. */
function dockerTime(value: string): Date | undefined {
  const date = new Date(value);
  return Number.isNaN(date.getTime()) || date.getUTCFullYear() < 2000 ? undefined : date;
}

function toObserved(raw: unknown): ObservedModule {
  const c = raw as Inspect;
  const labels = c.Config.Labels ?? {};
  const observed: ObservedModule = {
    name: labels[LABELS.module] ?? '',
    id: c.Id,
    configHash: labels[LABELS.configHash] ?? '',
    state: c.State.Status as InstanceState,
    health: (c.State.Health?.Status ?? 'none') as HealthState,
    exitCode: c.State.ExitCode,
    image: c.Config.Image,
    imageId: c.Image,
  };
  if (c.State.Error) observed.error = c.State.Error;
  const startedAt = dockerTime(c.State.StartedAt);
  const finishedAt = dockerTime(c.State.FinishedAt);
  if (startedAt) observed.startedAt = startedAt;
  if (finishedAt) observed.finishedAt = finishedAt;
  return observed;
}
