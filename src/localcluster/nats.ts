/**
 * Runs real nats-server processes with JetStream on local disk: one for `kedge up`, `kedge cluster
 * up`, the tests and the benches, or a three-node cluster on loopback for fault tests. The binary
 * is built from the Go module proxy at a pinned release and cached beside the control plane.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ErrorCode, KedgeError } from '../common/errors.js';
import { PACKAGE_ROOT } from '../common/version.js';
import { runBuildScript } from './build-script.js';
import { natsServerBuild, requireGoFor } from './builds.js';
import { freePort } from './ports.js';
import { isRunning, startProcess, stopProcess, type ManagedProcess } from './processes.js';

export { NATS_SERVER_VERSION } from './builds.js';

const BUILD_SCRIPT = path.join(PACKAGE_ROOT, 'src/localcluster/build-nats-server.sh');
/** Start-up, meta-leader election or a restarted node's catch-up on a loaded 2-core machine. */
const READY_TIMEOUT_MS = 60_000;
const POLL_INTERVAL_MS = 100;
/** JetStream cluster name of {@link startNatsCluster}; servers are `<name>-0`, `<name>-1`, … */
const DEFAULT_CLUSTER_NAME = 'kedge';

/** Where the build script leaves the binary. */
export function cachedNatsServerPath(): string {
  return natsServerBuild().binary;
}

/**
 * Fails at once, with one line saying what to install, when nats-server is neither cached nor
 * buildable (no Go). Callers run it before any long step.
 */
export function checkNatsServerBuildable(): void {
  requireGoFor([natsServerBuild()]);
}

/** Builds (about a minute) or reuses the cached nats-server and returns the binary's path. */
export async function ensureNatsServer(onProgress?: (line: string) => void): Promise<string> {
  checkNatsServerBuildable();
  return runBuildScript(BUILD_SCRIPT, 'nats-server', onProgress);
}

/** Options for {@link startNats}. */
export interface NatsOptions {
  /** Holds the config file, the JetStream store (`jetstream/`) and the log. Created if missing. */
  dataDir: string;
  /** Client port on 127.0.0.1; a free one when unset. */
  port?: number;
  /** `server_name`; defaults to `kedge-nats`. */
  name?: string;
  /** The nats-server binary; built or taken from the cache when unset. */
  binary?: string;
  /** Log file; defaults to `<dataDir>/nats-server.log`. */
  logFile?: string;
}

/** A running nats-server with JetStream. */
export interface NatsServer {
  name: string;
  /** `nats://127.0.0.1:<port>` */
  url: string;
  port: number;
  /** The monitoring endpoint (`/healthz`, `/varz`, `/jsz`). */
  monitorUrl: string;
  dataDir: string;
  logFile: string;
  /** The pid of the current process; it changes on {@link NatsServer.restart}. */
  readonly pid: number;
  running(): boolean;
  /** SIGTERM (a clean shutdown), SIGKILL after a grace period. */
  stop(): Promise<void>;
  /** SIGKILL: a crash, for fault tests. */
  kill(): Promise<void>;
  /** Starts the server again with the same ports, config and store, and waits until it is ready. */
  restart(): Promise<void>;
}

/** A JetStream cluster on loopback. */
export interface NatsCluster {
  /** Every node's client URL, comma-separated (the form KEDGE_NATS_URL takes). */
  url: string;
  servers: NatsServer[];
  /** Stops every node that still runs. */
  stop(): Promise<void>;
}

interface NodePlan {
  name: string;
  port: number;
  httpPort: number;
  dataDir: string;
  logFile: string;
  binary: string;
  cluster?: { name: string; port: number; routePorts: number[] };
}

/** A nats-server configuration document; paths and names are quoted as JSON strings, which it accepts. */
export function natsConfig(plan: Omit<NodePlan, 'logFile' | 'binary'>): string {
  const q = (s: string): string => JSON.stringify(s);
  const lines = [
    `server_name: ${q(plan.name)}`,
    `listen: ${q(`127.0.0.1:${plan.port}`)}`,
    `http: ${q(`127.0.0.1:${plan.httpPort}`)}`,
    'jetstream {',
    `  store_dir: ${q(path.join(plan.dataDir, 'jetstream'))}`,
    '}',
  ];
  if (plan.cluster) {
    const routes = plan.cluster.routePorts.map((p) => q(`nats-route://127.0.0.1:${p}`));
    lines.push(
      'cluster {',
      `  name: ${q(plan.cluster.name)}`,
      `  listen: ${q(`127.0.0.1:${plan.cluster.port}`)}`,
      `  routes: [${routes.join(', ')}]`,
      '}',
    );
  }
  return `${lines.join('\n')}\n`;
}

/** Starts one nats-server with JetStream on disk and waits until JetStream answers. */
export async function startNats(options: NatsOptions): Promise<NatsServer> {
  const plan: NodePlan = {
    name: options.name ?? 'kedge-nats',
    port: options.port ?? (await freePort()),
    httpPort: await freePort(),
    dataDir: options.dataDir,
    logFile: options.logFile ?? path.join(options.dataDir, 'nats-server.log'),
    binary: options.binary ?? (await ensureNatsServer()),
  };
  const server = await launch(plan);
  await server.restart();
  return server;
}

/** Options for {@link startNatsCluster}. */
export interface NatsClusterOptions {
  /** Each node keeps its config and store in `<dataDir>/<server name>`. */
  dataDir: string;
  /** Cluster name and server-name prefix; defaults to `kedge`. */
  name?: string;
  /** The nats-server binary; built or taken from the cache when unset. */
  binary?: string;
  /** Logs go to `<logDir>/<server name>.log`; by default beside each node's store. */
  logDir?: string;
}

/**
 * Starts `size` nats-servers forming one JetStream cluster on 127.0.0.1 (no JetStream domain),
 * each with its store in `<dataDir>/<name>-<i>`, and waits until every node reports healthy, so a
 * replicated stream can be created at once.
 */
export async function startNatsCluster(
  size: number,
  options: NatsClusterOptions,
): Promise<NatsCluster> {
  const clusterName = options.name ?? DEFAULT_CLUSTER_NAME;
  const binary = options.binary ?? (await ensureNatsServer());
  const routePorts: number[] = [];
  for (let i = 0; i < size; i++) routePorts.push(await freePort());
  const plans: NodePlan[] = [];
  for (let i = 0; i < size; i++) {
    const name = `${clusterName}-${i}`;
    const dataDir = path.join(options.dataDir, name);
    plans.push({
      name,
      port: await freePort(),
      httpPort: await freePort(),
      dataDir,
      logFile: options.logDir
        ? path.join(options.logDir, `${name}.log`)
        : path.join(dataDir, 'nats-server.log'),
      binary,
      cluster: {
        name: clusterName,
        port: routePorts[i]!,
        routePorts: routePorts.filter((_, j) => j !== i),
      },
    });
  }
  if (options.logDir) await mkdir(options.logDir, { recursive: true });
  const servers = await Promise.all(plans.map(launch));
  const stopAll = async (): Promise<void> => {
    await Promise.all(servers.map((s) => s.stop()));
  };
  // Nodes start together: each waits for the others' routes before JetStream is healthy.
  await Promise.all(servers.map((s) => s.restart())).catch(async (err: unknown) => {
    await stopAll();
    throw err;
  });
  return { url: servers.map((s) => s.url).join(','), servers, stop: stopAll };
}

/** Writes the node's config and returns its handle; the first `restart()` starts it. */
async function launch(plan: NodePlan): Promise<NatsServer> {
  await mkdir(plan.dataDir, { recursive: true });
  const configFile = path.join(plan.dataDir, 'nats-server.conf');
  await writeFile(configFile, natsConfig(plan));
  const monitorUrl = `http://127.0.0.1:${plan.httpPort}`;
  // A cluster node is ready when it has a meta leader and its streams are current.
  const health = `${monitorUrl}/healthz${plan.cluster ? '' : '?js-enabled-only=true'}`;
  let proc: ManagedProcess | undefined;
  return {
    name: plan.name,
    url: `nats://127.0.0.1:${plan.port}`,
    port: plan.port,
    monitorUrl,
    dataDir: plan.dataDir,
    logFile: plan.logFile,
    get pid(): number {
      return proc?.child.pid ?? 0;
    },
    running: () => proc !== undefined && isRunning(proc),
    stop: async () => {
      if (proc) await stopProcess(proc);
    },
    kill: async () => {
      if (!proc || !isRunning(proc)) return;
      proc.child.kill('SIGKILL');
      await proc.exited;
    },
    restart: async () => {
      if (proc && isRunning(proc)) await stopProcess(proc);
      proc = startProcess(plan.name, plan.binary, ['-c', configFile], plan.logFile);
      await waitReady(proc, health);
    },
  };
}

async function healthy(url: string): Promise<boolean> {
  const res = await fetch(url).catch(() => undefined);
  await res?.body?.cancel();
  return res?.ok === true;
}

async function waitReady(proc: ManagedProcess, healthUrl: string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (!isRunning(proc))
      throw new KedgeError(
        ErrorCode.Unavailable,
        `nats-server ${proc.name} exited during start-up; see ${proc.logFile}`,
      );
    if (await healthy(healthUrl)) return;
    await sleep(POLL_INTERVAL_MS);
  }
  await stopProcess(proc);
  throw new KedgeError(
    ErrorCode.Timeout,
    `nats-server ${proc.name} was not ready within ${READY_TIMEOUT_MS / 1000} s; see ${proc.logFile}`,
  );
}
