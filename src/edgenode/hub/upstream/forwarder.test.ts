import { silentLogger } from '../../../common/logger.js';
import { HubMetrics } from '../metrics.js';
import { MemoryQueue } from '../queue/memory-queue.js';
import { Forwarder, type QueueHeader } from './forwarder.js';
import { allSent, UpstreamBase, type SendResult, type UpstreamMessage } from './upstream.js';

/** An upstream whose link the test switches, recording what it was sent. */
class SwitchedUpstream extends UpstreamBase {
  readonly name = 'switched';
  readonly received: string[] = [];
  fail = false;
  link(up: boolean): void {
    this.setConnected(up);
  }
  start(): Promise<void> {
    return Promise.resolve();
  }
  send(batch: UpstreamMessage[]): Promise<SendResult> {
    if (this.fail) return Promise.reject(new Error('link broke'));
    this.received.push(...batch.map((m) => m.body.toString()));
    return Promise.resolve(allSent(batch));
  }
  stop(): Promise<void> {
    return Promise.resolve();
  }
}

const header: QueueHeader = { kind: 'telemetry', deviceId: 'd1', properties: [] };

function enqueue(queue: MemoryQueue, body: string): Promise<void> {
  return queue.enqueue([
    {
      priority: 0,
      expiresAtMs: Date.now() + 60_000,
      header: JSON.stringify(header),
      body: Buffer.from(body),
    },
  ]);
}

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !check(); i++) await new Promise((r) => setTimeout(r, 2));
  expect(check()).toBe(true);
}

describe('Forwarder', () => {
  const setup = () => {
    const queue = new MemoryQueue({
      maxBytes: 1 << 20,
      maxMessages: 1_000,
      dropPolicy: 'reject-new',
    });
    const upstream = new SwitchedUpstream();
    const forwarder = new Forwarder(queue, upstream, new HubMetrics(), silentLogger());
    return { queue, upstream, forwarder };
  };

  it('drains through many empty-queue waits and stops while waiting', async () => {
    const { queue, upstream, forwarder } = setup();
    upstream.link(true);
    forwarder.start();
    for (let i = 0; i < 200; i++) {
      await enqueue(queue, `m${i}`);
      await until(() => upstream.received.length === i + 1);
    }
    expect(upstream.received.at(-1)).toBe('m199');
    expect(queue.stats().depth).toBe(0);
    await forwarder.stop();
  });

  it('wakes at once when the link returns, and stops while sleeping', async () => {
    const { queue, upstream, forwarder } = setup();
    await enqueue(queue, 'queued offline');
    forwarder.start();
    await new Promise((r) => setTimeout(r, 20));
    expect(upstream.received).toEqual([]);
    upstream.link(true);
    await until(() => upstream.received.length === 1);
    upstream.fail = true;
    await enqueue(queue, 'failing');
    await new Promise((r) => setTimeout(r, 20));
    const started = Date.now();
    await forwarder.stop();
    // The backoff sleep (1 s) ended on stop, not on its timer.
    expect(Date.now() - started).toBeLessThan(500);
  });
});
