import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PACKAGE_ROOT } from '../../src/localcluster/kubectl.js';
import {
  ensureNatsServer,
  startNats,
  startNatsCluster,
  type NatsCluster,
  type NatsServer,
} from '../../src/localcluster/nats.js';

/** Where a test file's NATS logs are kept: .test-artifacts/<name>-nats-<time>. */
function logDirFor(name: string): string {
  return path.join(PACKAGE_ROOT, '.test-artifacts', `${name}-nats-${Date.now()}`);
}

/** A nats-server for one test file; `stop()` also removes its JetStream store (the log stays). */
export interface TestNats {
  server: NatsServer;
  /** The client URL, as `--nats-url` / KEDGE_NATS_URL take it. */
  url: string;
  stop(): Promise<void>;
}

/** Starts a JetStream nats-server for the test file `name` (global setup has built the binary). */
export async function startTestNats(name: string): Promise<TestNats> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'kedge-nats-'));
  const logDir = logDirFor(name);
  await mkdir(logDir, { recursive: true });
  const server = await startNats({
    dataDir,
    binary: await ensureNatsServer(),
    logFile: path.join(logDir, 'nats-server.log'),
  });
  return {
    server,
    url: server.url,
    stop: async () => {
      await server.stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** A JetStream cluster of `size` nodes for the test file `name`; `stop()` removes the stores. */
export async function startTestNatsCluster(name: string, size = 3): Promise<NatsCluster> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'kedge-nats-cluster-'));
  const cluster = await startNatsCluster(size, {
    dataDir,
    binary: await ensureNatsServer(),
    logDir: logDirFor(name),
  });
  return {
    ...cluster,
    stop: async () => {
      await cluster.stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
