/**
 * Runs many hollow devices in one process: for each, the real agent and cloud link, with the
 * container runtime simulated in memory. Input: a JSON file of device configs. Prints
 * `FLEET_READY` once every link has been started.
 */
import { readFileSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Registry } from 'prom-client';
import { silentLogger } from '../../src/common/logger.js';
import { Agent, AgentMetrics } from '../../src/edgenode/agent/index.js';
import { CloudLink } from '../../src/edgenode/cloudlink/link.js';
import { MemoryRuntime } from './memory-runtime.js';

export interface HollowDevice {
  namespace: string;
  device: string;
  key: string;
}

interface FleetInput {
  url: string;
  caPem: string;
  devices: HollowDevice[];
}

const input = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as FleetInput;
const root = mkdtempSync(path.join(tmpdir(), 'kedge-fleet-'));
const log = silentLogger();
const agents: Agent[] = [];
for (const d of input.devices) {
  const agent = new Agent({
    deviceId: d.device,
    dataDir: path.join(root, d.device),
    runtime: new MemoryRuntime(),
    logger: log,
    metrics: new AgentMetrics(new Registry()),
    stopGraceMs: 0,
  });
  const link = new CloudLink({
    url: input.url,
    namespace: d.namespace,
    device: d.device,
    credentials: { keyBase64: d.key },
    caPem: input.caPem,
    log,
  });
  await agent.start();
  link.attachAgent(agent);
  await agent.addSource(link);
  agents.push(agent);
  if (agents.length % 100 === 0) process.stderr.write(`started ${agents.length} devices\n`);
}
process.stdout.write('FLEET_READY\n');
process.once('SIGTERM', () => process.exit(0));
