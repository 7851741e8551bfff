/**
 * Pumps the durable queue into the upstream: peek a batch in priority order, send, ack. On failure
 * it backs off exponentially (1 s → 60 s, as edgeHub) but wakes up at once when the link returns,
 * instead of sleeping out the backoff (the slow-drain problem of Azure/iotedge#7528).
 */
import type { Logger } from '../../../common/logger.js';
import type { HubMetrics } from '../metrics.js';
import type { DurableQueue, QueueItem } from '../queue/durable-queue.js';
import type { SendResult, Upstream, UpstreamMessage } from './upstream.js';

/** Backoff bounds, from edgeHub's endpoint executor. */
export const RETRY_MIN_MS = 1_000;
export const RETRY_MAX_MS = 60_000;
/** Messages per send: large enough to amortize acks and deletes, small enough to bound memory. */
export const FORWARD_BATCH = 1_000;

/** The header stored with each queued message. */
export interface QueueHeader {
  kind: UpstreamMessage['kind'];
  deviceId: string;
  moduleId?: string;
  properties: [string, string][];
}

function toUpstream(item: QueueItem): UpstreamMessage {
  const h = JSON.parse(item.header) as QueueHeader;
  return {
    seq: item.seq,
    kind: h.kind,
    priority: item.priority,
    enqueuedAtMs: item.enqueuedAtMs,
    source:
      h.moduleId === undefined
        ? { deviceId: h.deviceId }
        : { deviceId: h.deviceId, moduleId: h.moduleId },
    properties: h.properties,
    body: item.body,
  };
}

export class Forwarder {
  readonly #queue: DurableQueue;
  readonly #upstream: Upstream;
  readonly #metrics: HubMetrics;
  readonly #log: Logger;
  #stop = new AbortController();
  #wake = new AbortController();
  #running: Promise<void> | undefined;
  #lastExpired = 0;

  constructor(queue: DurableQueue, upstream: Upstream, metrics: HubMetrics, log: Logger) {
    this.#queue = queue;
    this.#upstream = upstream;
    this.#metrics = metrics;
    this.#log = log;
    upstream.onLinkChange((up) => {
      metrics.upstreamConnected.set(up ? 1 : 0);
      if (up) this.#wake.abort();
    });
  }

  start(): void {
    this.#running ??= this.#loop();
  }

  async stop(): Promise<void> {
    this.#stop.abort();
    this.#wake.abort();
    await this.#running;
  }

  async #loop(): Promise<void> {
    let backoffMs = RETRY_MIN_MS;
    while (!this.#stop.signal.aborted) {
      if (!this.#upstream.connected) {
        await this.#sleep(RETRY_MAX_MS);
        continue;
      }
      const batch = this.#queue.peek(FORWARD_BATCH);
      this.#countExpired();
      if (batch.length === 0) {
        await this.#queue.waitForItems(this.#anySignal());
        continue;
      }
      try {
        const result = await this.#upstream.send(batch.map(toUpstream));
        this.#settle(result);
        if (result.sent.length + result.rejected.length < batch.length)
          throw new Error(
            `${batch.length - result.sent.length - result.rejected.length} messages not sent`,
          );
        backoffMs = RETRY_MIN_MS;
      } catch (err) {
        this.#log.warn(
          { err: (err as Error).message, retryInMs: backoffMs },
          'upstream send failed',
        );
        await this.#sleep(backoffMs);
        backoffMs = Math.min(backoffMs * 2, RETRY_MAX_MS);
      }
    }
  }

  /** Sent and never-sendable messages leave the queue; the rest stay for the next attempt. */
  #settle(result: SendResult): void {
    const done = [...result.sent, ...result.rejected.map((r) => r.seq)];
    if (done.length) this.#queue.ack(done);
    this.#metrics.messagesUpstream.inc(result.sent.length);
    if (result.rejected.length === 0) return;
    this.#metrics.dropped.inc({ reason: 'rejected' }, result.rejected.length);
    for (const r of result.rejected)
      this.#log.warn(
        { seq: r.seq, reason: r.reason },
        'upstream refused a message for good; dropped',
      );
  }

  #countExpired(): void {
    const expired = this.#queue.stats().expiredTotal;
    if (expired > this.#lastExpired)
      this.#metrics.dropped.inc({ reason: 'ttl_expiry' }, expired - this.#lastExpired);
    this.#lastExpired = expired;
  }

  /**
   * The signal a wait ends on: the link coming back or the forwarder stopping (`stop()` aborts
   * the wake signal too). Not `AbortSignal.any`: every call of it leaves an entry on the
   * long-lived stop signal that Node 20 never frees, a leak of one per wait.
   */
  #anySignal(): AbortSignal {
    if (this.#stop.signal.aborted) return this.#stop.signal;
    if (this.#wake.signal.aborted) this.#wake = new AbortController();
    return this.#wake.signal;
  }

  /** Sleeps `ms`, or less when the link comes back or the forwarder stops. */
  async #sleep(ms: number): Promise<void> {
    const signal = this.#anySignal();
    if (this.#upstream.connected && ms === RETRY_MAX_MS) return;
    // The wake signal outlives this sleep, so the listener is removed whichever way it ends.
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener('abort', done, { once: true });
    });
  }
}
