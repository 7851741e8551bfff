import { spawn } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ErrorCode, KedgeError } from '../common/errors.js';
import { startControlPlane, type ControlPlane } from './control-plane.js';
import { installCrds } from './kubectl.js';
import { localClusterBuilds, requireGoFor } from './builds.js';
import { ensureNatsServer, startNats } from './nats.js';
import { freePortPreferring } from './ports.js';
import { pidAlive } from './processes.js';

/** What a running background cluster records about itself. */
export interface ClusterState {
  pid: number;
  kubeconfigPath: string;
  server: string;
  binDir: string;
  logDir: string;
  /** The local nats-server (JetStream), for `--nats-url` / KEDGE_NATS_URL. */
  natsUrl: string;
}

/** The client port `kedge controller` and `kedge gateway` use when KEDGE_NATS_URL is unset. */
const DEFAULT_NATS_PORT = 4222;

/** A control plane and a nats-server running in this process. */
export interface LocalCluster {
  cp: ControlPlane;
  natsUrl: string;
  /** Stops both and removes their data (logs stay). */
  stop(): Promise<void>;
}

const START_TIMEOUT_MS = 60 * 60 * 1000;
const POLL_MS = 500;

/** Where the background cluster keeps its state: `$KEDGE_HOME/local-cluster` (default ~/.kedge). */
export function clusterHome(): string {
  return path.join(process.env.KEDGE_HOME ?? path.join(homedir(), '.kedge'), 'local-cluster');
}

const statePath = (): string => path.join(clusterHome(), 'state.json');

/** The running background cluster, or undefined. */
export async function readClusterState(): Promise<ClusterState | undefined> {
  const text = await readFile(statePath(), 'utf8').catch(() => undefined);
  if (!text) return undefined;
  const state = JSON.parse(text) as ClusterState;
  return pidAlive(state.pid) ? state : undefined;
}

/**
 * Starts a nats-server with JetStream (its store under the cluster home) and the control plane in
 * this process; the caller stops them on SIGINT/SIGTERM.
 */
export async function runClusterForeground(
  onProgress: (line: string) => void,
): Promise<LocalCluster> {
  // A missing prerequisite is named before any long step (a cold build takes minutes).
  requireGoFor(localClusterBuilds());
  await mkdir(clusterHome(), { recursive: true });
  const logDir = path.join(clusterHome(), 'logs');
  await mkdir(logDir, { recursive: true });
  const natsDir = path.join(clusterHome(), 'nats');
  const nats = await startNats({
    dataDir: natsDir,
    port: await freePortPreferring(DEFAULT_NATS_PORT),
    binary: await ensureNatsServer(onProgress),
    logFile: path.join(logDir, 'nats-server.log'),
  });
  const stopNats = async (): Promise<void> => {
    await nats.stop();
    await rm(natsDir, { recursive: true, force: true });
  };
  onProgress(`[nats-server] ready at ${nats.url}`);
  const cp = await startControlPlane({ logDir, onProgress }).catch(async (err: unknown) => {
    await stopNats();
    throw err;
  });
  const stop = async (): Promise<void> => {
    await cp.stop();
    await stopNats();
  };
  await installCrds(cp.binDir, cp.kubeconfigPath).catch(async (err: unknown) => {
    await stop();
    throw err;
  });
  const state: ClusterState = {
    pid: process.pid,
    kubeconfigPath: path.join(clusterHome(), 'kubeconfig'),
    server: cp.server,
    binDir: cp.binDir,
    logDir: cp.logDir,
    natsUrl: nats.url,
  };
  await writeFile(state.kubeconfigPath, await readFile(cp.kubeconfigPath), { mode: 0o600 });
  await writeFile(statePath(), JSON.stringify(state, null, 2));
  return { cp, natsUrl: nats.url, stop };
}

/** Starts the control plane as a background process and waits until it is ready. */
export async function startClusterInBackground(
  cliPath: string,
  onProgress: (line: string) => void,
): Promise<ClusterState> {
  const running = await readClusterState();
  if (running) return running;
  requireGoFor(localClusterBuilds());
  await mkdir(clusterHome(), { recursive: true });
  await rm(statePath(), { force: true });
  const logFile = path.join(clusterHome(), 'cluster.log');
  const fd = openSync(logFile, 'w');
  const child = spawn(process.execPath, [cliPath, 'cluster', 'up', '--foreground'], {
    detached: true,
    stdio: ['ignore', fd, fd],
  });
  closeSync(fd);
  child.unref();
  const deadline = Date.now() + START_TIMEOUT_MS;
  let shown = 0;
  while (Date.now() < deadline) {
    const state = await readClusterState();
    if (state) return state;
    if (!pidAlive(child.pid!))
      throw new KedgeError(ErrorCode.Unavailable, `local cluster failed to start; see ${logFile}`);
    const lines = (await readFile(logFile, 'utf8').catch(() => '')).split('\n').filter(Boolean);
    for (const line of lines.slice(shown)) onProgress(line);
    shown = lines.length;
    await sleep(POLL_MS);
  }
  throw new KedgeError(ErrorCode.Timeout, `local cluster did not start; see ${logFile}`);
}

/** Stops the background cluster, if one runs. Returns whether one was stopped. */
export async function stopBackgroundCluster(): Promise<boolean> {
  const state = await readClusterState();
  if (!state) return false;
  process.kill(state.pid, 'SIGTERM');
  while (pidAlive(state.pid)) await sleep(POLL_MS);
  await rm(statePath(), { force: true });
  return true;
}
