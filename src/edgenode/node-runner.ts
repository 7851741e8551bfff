/**
 * Composes `kedge node` from its parts: the agent, the local hub, a manifest file source or the
 * cloud link, and the local metrics endpoint.
 */
import type { Logger } from '../common/logger.js';
import { parseManifest, type DesiredDeployment } from '../common/manifest/index.js';
import type { ModuleIdentityProvider } from '../common/module-identity.js';
import { Agent } from './agent/agent.js';
import { FileDesiredStateSource, readManifestFile } from './agent/desired-source.js';
import type { DockerRuntime } from './agent/docker-runtime.js';
import type { ModuleRuntime } from './agent/runtime.js';
import { ProcessRuntime } from './agent/process-runtime.js';
import { createCloudLink, createHub, hubUpdateFrom } from './compose.js';
import { edgeAgentMethods } from './agent/edge-agent-methods.js';
import type { Hub } from './hub/hub.js';
import type { NodeConfig } from './config.js';
import { startLocalEndpoint, type LocalEndpoint } from './metrics-server.js';

const MS_PER_SEC = 1000;

/**
 * Builds the configured runtime. The Docker one is loaded only when configured: dockerode is
 * several MB of a device's memory that the process runtime never uses.
 */
export async function createRuntime(config: NodeConfig, logger: Logger): Promise<ModuleRuntime> {
  if (config.agent.runtime === 'process') {
    return new ProcessRuntime({
      deviceId: config.deviceId,
      dataDir: config.dataDir,
      logger,
      user: config.agent.processUser,
    });
  }
  const { DockerRuntime } = await import('./agent/docker-runtime.js');
  return new DockerRuntime({
    deviceId: config.deviceId,
    network: config.agent.network,
    gatewayHostName: config.agent.gatewayHostName,
    containerNamePrefix: config.agent.containerNamePrefix,
    logger,
  });
}

/** The agent with the configured restart arithmetic, feeding every desired state to the hub. */
function createAgent(parts: {
  config: NodeConfig;
  logger: Logger;
  runtime: ModuleRuntime;
  identity: ModuleIdentityProvider | undefined;
  hub: Hub | undefined;
}): Agent {
  const { config, logger, runtime, identity, hub } = parts;
  const a = config.agent;
  return new Agent({
    deviceId: config.deviceId,
    dataDir: config.dataDir,
    runtime,
    logger,
    restart: {
      maxRestarts: a.maxRestarts,
      backoffUnitMs: a.restartBackoffUnitSecs * MS_PER_SEC,
      backoffMaxMs: a.restartBackoffMaxSecs * MS_PER_SEC,
      healthyResetMs: a.healthyResetSecs * MS_PER_SEC,
    },
    stopGraceMs: a.stopGraceSecs * MS_PER_SEC,
    resyncIntervalMs: a.resyncIntervalSecs * MS_PER_SEC,
    imageRefreshMs: a.imagePullIntervalSecs * MS_PER_SEC,
    ...(identity ? { identity } : {}),
    ...(hub
      ? { onDesired: (desired: DesiredDeployment) => hub.applyConfig(hubUpdateFrom(desired)) }
      : {}),
  });
}

/**
 * The host's address on the module network, where the hub listens for containers; undefined for
 * the process runtime (modules dial loopback) or when the hub is off.
 */
async function moduleAddressOf(
  config: NodeConfig,
  runtime: ModuleRuntime,
  logger: Logger,
): Promise<string | undefined> {
  if (config.agent.runtime === 'process' || (config.hub as { enabled?: boolean }).enabled === false)
    return undefined;
  const address = await (runtime as DockerRuntime).hubAddress();
  if (address === undefined)
    logger.warn(
      { network: config.agent.network },
      'the module network has no IPv4 gateway; containers reach the hub only if hub.host covers them',
    );
  return address;
}

/** The local endpoint: the agent's and the hub's metrics on one `/metrics`, and `/status`. */
async function startEndpoint(
  config: NodeConfig,
  agent: Agent,
  hub: Hub | undefined,
): Promise<LocalEndpoint | undefined> {
  if (!config.metrics.enabled) return undefined;
  return startLocalEndpoint({
    host: config.metrics.host,
    port: config.metrics.port,
    registries: [agent.metrics.registry, ...(hub ? [hub.metrics.registry] : [])],
    status: () => agent.snapshot(),
  });
}

/** Inputs of {@link runNode}. */
export interface RunNodeOptions {
  config: NodeConfig;
  logger: Logger;
  /** Manifest file for standalone mode; without it the persisted desired state is used. */
  manifestFile?: string;
  identity?: ModuleIdentityProvider;
}

/** A running node. */
export interface RunningNode {
  agent: Agent;
  /** The local hub; undefined when `hub.enabled` is false. */
  hub: Hub | undefined;
  endpoint: LocalEndpoint | undefined;
  /** Stops everything; modules keep running unless `config.agent.stopModulesOnExit`. */
  stop(): Promise<void>;
}

/** Starts the agent, then its sources: the manifest file, and the cloud link with the hub's leaves. */
async function startAgent(
  agent: Agent,
  sources: {
    manifestFile: string | undefined;
    cloud: Awaited<ReturnType<typeof createCloudLink>>;
    hub: Hub | undefined;
  },
): Promise<void> {
  const { manifestFile, cloud, hub } = sources;
  await agent.start();
  if (manifestFile) await agent.addSource(new FileDesiredStateSource(manifestFile));
  if (!cloud) return;
  cloud.attachAgent(agent);
  if (hub) cloud.attachLeafHost(hub);
  await agent.addSource(cloud);
}

/**
 * Starts `kedge node`. A manifest given on the command line is validated before anything else
 * happens, so a bad one is rejected without touching the running modules.
 */
export async function runNode(options: RunNodeOptions): Promise<RunningNode> {
  const { config, logger } = options;
  if (options.manifestFile) parseManifest(await readManifestFile(options.manifestFile));
  const a = config.agent;
  const cloud = await createCloudLink(config, logger);
  const runtime = await createRuntime(config, logger);
  const hub = createHub(config, logger, cloud, await moduleAddressOf(config, runtime, logger));
  await hub?.start();
  const identity = options.identity ?? hub?.identityProvider;
  const agent = createAgent({ config, logger, runtime, identity, hub });
  hub?.setEdgeAgentMethods(edgeAgentMethods(agent));
  const endpoint = await startEndpoint(config, agent, hub);
  try {
    await startAgent(agent, { manifestFile: options.manifestFile, cloud, hub });
  } catch (err) {
    await endpoint?.close();
    await agent.stop();
    await hub?.stop();
    throw err;
  }
  logger.info(
    {
      deviceId: config.deviceId,
      runtime: a.runtime,
      metrics: endpoint?.url,
      manifest: options.manifestFile,
    },
    'kedge node started',
  );
  return {
    agent,
    hub,
    endpoint,
    stop: async () => {
      await agent.stop({ stopModules: a.stopModulesOnExit });
      await cloud?.stop();
      await hub?.stop();
      await endpoint?.close();
      logger.info({ modulesStopped: a.stopModulesOnExit }, 'kedge node stopped');
    },
  };
}
