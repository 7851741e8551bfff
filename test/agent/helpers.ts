// Shared helpers for the agent's integration tests against the real dockerd.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Readable } from 'node:stream';
import { docker } from '../../src/localcluster/docker.js';
import { LOCAL_IMAGES } from '../../src/localcluster/images.js';
import { Agent, DockerRuntime, type AgentOptions } from '../../src/edgenode/agent/index.js';

export { LOCAL_IMAGES, docker, sleep };

/** A unique, docker-safe id for one test's device, network and containers. */
export function uniqueId(prefix: string): string {
  return `${prefix}-${randomBytes(4).toString('hex')}`;
}

export interface ModuleDef {
  image?: string;
  cmd?: string[];
  startupOrder?: number;
  restartPolicy?: string;
  status?: string;
  env?: Record<string, string>;
  imagePullPolicy?: string;
  createOptions?: unknown;
}

/** A full IoT Edge manifest with the given modules (busybox by default). */
export function manifest(modules: Record<string, ModuleDef>, registryCredentials = {}): unknown {
  const entries = Object.entries(modules).map(([name, m]) => {
    const createOptions = m.createOptions ?? (m.cmd ? { Cmd: m.cmd } : {});
    const module: Record<string, unknown> = {
      version: '1.0',
      type: 'docker',
      status: m.status ?? 'running',
      restartPolicy: m.restartPolicy ?? 'always',
      imagePullPolicy: m.imagePullPolicy ?? 'never',
      settings: {
        image: m.image ?? LOCAL_IMAGES.busybox,
        createOptions:
          typeof createOptions === 'string' ? createOptions : JSON.stringify(createOptions),
      },
      env: Object.fromEntries(Object.entries(m.env ?? {}).map(([k, v]) => [k, { value: v }])),
    };
    if (m.startupOrder !== undefined) module.startupOrder = m.startupOrder;
    return [name, module];
  });
  return {
    modulesContent: {
      $edgeAgent: {
        'properties.desired': {
          schemaVersion: '1.1',
          runtime: { type: 'docker', settings: { registryCredentials } },
          systemModules: {},
          modules: Object.fromEntries(entries),
        },
      },
      $edgeHub: {
        'properties.desired': {
          schemaVersion: '1.1',
          routes: {},
          storeAndForwardConfiguration: { timeToLiveSecs: 7200 },
        },
      },
    },
  };
}

/** A module that runs forever and ignores nothing: `sleep` under `sh` with a TERM trap. */
export const SLEEPER = [
  'sh',
  '-c',
  'trap "exit 0" TERM; echo started $HOSTNAME; while true; do sleep 1; done',
];

/** Polls `check` until it returns a truthy value or the timeout passes. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T> | T,
  timeoutMs = 30_000,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value) return value;
    } catch (err) {
      last = err;
    }
    await sleep(100);
  }
  throw new Error(
    `timed out waiting for ${what}${last instanceof Error ? `: ${last.message}` : ''}`,
  );
}

interface DockerInspect {
  Id: string;
  Name: string;
  RestartCount: number;
  Config: { Labels: Record<string, string>; Env: string[]; Image: string };
  State: { Running: boolean; StartedAt: string };
}

export interface ContainerState {
  id: string;
  name: string;
  module: string;
  running: boolean;
  startedAt: string;
  env: string[];
  image: string;
  restartCount: number;
}

/** The containers of one device, by module name, straight from `docker inspect`. */
export async function containersOf(deviceId: string): Promise<Map<string, ContainerState>> {
  const ids = (await docker(['ps', '-aq', '--filter', `label=io.kedge.device=${deviceId}`]))
    .split('\n')
    .filter(Boolean);
  const out = new Map<string, ContainerState>();
  if (ids.length === 0) return out;
  const inspected = JSON.parse(await docker(['inspect', ...ids])) as DockerInspect[];
  for (const c of inspected) {
    const module = c.Config.Labels['io.kedge.module']!;
    out.set(module, {
      id: c.Id,
      name: c.Name.slice(1),
      module,
      running: c.State.Running,
      startedAt: c.State.StartedAt,
      env: c.Config.Env,
      image: c.Config.Image,
      restartCount: c.RestartCount,
    });
  }
  return out;
}

/** Removes every container of a device and its network. */
export async function cleanupDevice(deviceId: string, network?: string): Promise<void> {
  const ids = (await docker(['ps', '-aq', '--filter', `label=io.kedge.device=${deviceId}`]))
    .split('\n')
    .filter(Boolean);
  if (ids.length > 0) await docker(['rm', '-f', ...ids]).catch(() => '');
  if (network) await docker(['network', 'rm', network]).catch(() => '');
}

/** A test device: data dir, network, container prefix, and an agent factory. */
export class TestDevice {
  readonly deviceId = uniqueId('kt');
  readonly network = `${this.deviceId}-net`;
  dataDir = '';
  readonly agents: Agent[] = [];

  async init(): Promise<this> {
    this.dataDir = await mkdtemp(path.join(tmpdir(), 'kedge-agent-test-'));
    return this;
  }

  runtime(): DockerRuntime {
    return new DockerRuntime({
      deviceId: this.deviceId,
      network: this.network,
      gatewayHostName: 'kedge-gateway',
      containerNamePrefix: `${this.deviceId}-`,
    });
  }

  agent(options: Partial<AgentOptions> = {}): Agent {
    const agent = new Agent({
      deviceId: this.deviceId,
      dataDir: this.dataDir,
      runtime: this.runtime(),
      stopGraceMs: 1000,
      resyncIntervalMs: 2000,
      ...options,
    });
    this.agents.push(agent);
    return agent;
  }

  async cleanup(): Promise<void> {
    for (const agent of this.agents) await agent.stop().catch(() => undefined);
    await cleanupDevice(this.deviceId, this.network);
    await rm(this.dataDir, { recursive: true, force: true });
  }
}

/** Reads a stream until `predicate` matches the accumulated text (or the timeout). */
export function readUntil(
  stream: Readable,
  predicate: (text: string) => boolean,
  timeoutMs = 20_000,
): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => reject(new Error(`stream timeout; got: ${text}`)), timeoutMs);
    stream.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      if (predicate(text)) {
        clearTimeout(timer);
        resolve(text);
      }
    });
    stream.on('error', reject);
  });
}

/** Reads a finite stream to its end. */
export async function readAll(stream: Readable): Promise<string> {
  let text = '';
  for await (const chunk of stream) text += (chunk as Buffer).toString();
  return text;
}
