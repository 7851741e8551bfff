// A hollow device for cloud-plane tests: the real agent (with the container runtime simulated in
// memory) and the real cloud link, plus the hub's real forwarder draining a queue of generated
// telemetry. It records which messages its queue handed over, so a test can check that every one
// of them reached the cloud.
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Registry } from 'prom-client';
import { MemoryRuntime } from '../../bench/fleet/memory-runtime.js';
import { silentLogger } from '../../src/common/logger.js';
import { Agent, AgentMetrics } from '../../src/edgenode/agent/index.js';
import { CloudLink } from '../../src/edgenode/cloudlink/link.js';
import { HubMetrics } from '../../src/edgenode/hub/metrics.js';
import { MemoryQueue } from '../../src/edgenode/hub/queue/memory-queue.js';
import { Forwarder, type QueueHeader } from '../../src/edgenode/hub/upstream/forwarder.js';
import type { Upstream } from '../../src/edgenode/hub/upstream/upstream.js';

export interface HollowDeviceOptions {
  url: string;
  caPem: string;
  namespace: string;
  device: string;
  key: string;
  /** Telemetry messages per second; 0 for none. */
  messagesPerSec: number;
}

export interface HollowDevice {
  device: string;
  /** The simulated container runtime, to see which modules it created. */
  runtime: MemoryRuntime;
  /** Numbers of the messages the device's queue handed over (the cloud acknowledged them). */
  handedOver: Set<number>;
  /** Messages generated so far. */
  generated(): number;
  /** Messages still queued on the device. */
  queued(): number;
  /** What the device's link and forwarder are doing, for a failure message. */
  state(): string;
  stopTelemetry(): void;
  stop(): Promise<void>;
}

/** Starts a hollow device; telemetry bodies are `{"d": device, "n": counter}`. */
export async function startHollowDevice(o: HollowDeviceOptions): Promise<HollowDevice> {
  const log = silentLogger();
  const runtime = new MemoryRuntime();
  const agent = new Agent({
    deviceId: o.device,
    dataDir: await mkdtemp(path.join(tmpdir(), `kedge-hollow-${o.device}-`)),
    runtime,
    logger: log,
    metrics: new AgentMetrics(new Registry()),
    stopGraceMs: 0,
  });
  const link = new CloudLink({
    url: o.url,
    namespace: o.namespace,
    device: o.device,
    credentials: { keyBase64: o.key },
    caPem: o.caPem,
    heartbeatSecs: 2,
    log,
  });
  await agent.start();
  link.attachAgent(agent);
  await agent.addSource(link);
  const queue = new MemoryQueue({
    maxBytes: 64 * 1024 * 1024,
    maxMessages: 1_000_000,
    dropPolicy: 'reject-new',
  });
  const handedOver = new Set<number>();
  let sendingSince: number | undefined;
  const counting: Upstream = {
    name: 'counting',
    get connected() {
      return link.upstream.connected;
    },
    start: (h) => link.upstream.start(h),
    stop: () => Promise.resolve(),
    onLinkChange: (l) => link.upstream.onLinkChange(l),
    send: async (batch) => {
      sendingSince = Date.now();
      const result = await link.upstream.send(batch).finally(() => (sendingSince = undefined));
      const sent = new Set(result.sent);
      for (const m of batch)
        if (sent.has(m.seq)) handedOver.add((JSON.parse(m.body.toString()) as { n: number }).n);
      return result;
    },
  };
  const forwarder = new Forwarder(queue, counting, new HubMetrics(), log);
  forwarder.start();
  let n = 0;
  const header: QueueHeader = { kind: 'telemetry', deviceId: o.device, properties: [] };
  const timer =
    o.messagesPerSec > 0
      ? setInterval(() => {
          const body = Buffer.from(JSON.stringify({ d: o.device, n: n++ }));
          void queue.enqueue([
            {
              priority: 0,
              expiresAtMs: Date.now() + 3_600_000,
              header: JSON.stringify(header),
              body,
            },
          ]);
        }, 1000 / o.messagesPerSec)
      : undefined;
  return {
    device: o.device,
    runtime,
    handedOver,
    generated: () => n,
    queued: () => queue.stats().depth,
    state: () =>
      `link ${link.upstream.connected ? 'up' : 'down'}, ${
        sendingSince === undefined ? 'no send' : `a send pending ${Date.now() - sendingSince} ms`
      }`,
    stopTelemetry: () => clearInterval(timer),
    stop: async () => {
      clearInterval(timer);
      await forwarder.stop();
      await agent.stop(); // stops the link too
    },
  };
}
