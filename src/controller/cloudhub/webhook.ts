import type { Logger } from '../../common/logger.js';
import type { UpstreamMessage } from '../../common/cloudlink/protocol.js';

/** Attempts per batch before it is dropped (and counted). */
const MAX_ATTEMPTS = 5;
const FIRST_RETRY_MS = 500;
const REQUEST_TIMEOUT_MS = 10_000;
/** Batches held for delivery at most; older ones are dropped first. */
const MAX_PENDING_BATCHES = 1000;

/** The JSON body POSTed to a webhook: one device's batch of upstream messages. */
export interface WebhookBatch {
  namespace: string;
  device: string;
  messages: UpstreamMessage[];
}

/** Delivers telemetry batches to HTTP endpoints, in order, with bounded retries. */
export class WebhookSink {
  readonly #pending: WebhookBatch[] = [];
  #running = false;
  dropped = 0;
  delivered = 0;

  constructor(
    private readonly urls: readonly string[],
    private readonly log: Logger,
  ) {}

  enqueue(batch: WebhookBatch): void {
    if (this.urls.length === 0) return;
    this.#pending.push(batch);
    if (this.#pending.length > MAX_PENDING_BATCHES) {
      this.#pending.shift();
      this.dropped++;
    }
    if (!this.#running) void this.#drain();
  }

  async #drain(): Promise<void> {
    this.#running = true;
    while (this.#pending.length > 0) {
      const batch = this.#pending.shift()!;
      for (const url of this.urls) await this.#deliver(url, batch);
    }
    this.#running = false;
  }

  async #deliver(url: string, batch: WebhookBatch): Promise<void> {
    for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
      try {
        const res = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(batch),
          signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
        });
        if (res.ok) {
          this.delivered += batch.messages.length;
          return;
        }
        this.log.warn({ url, status: res.status, attempt }, 'webhook answered with an error');
      } catch (err) {
        this.log.warn({ url, err: (err as Error).message, attempt }, 'webhook unreachable');
      }
      await new Promise((r) => setTimeout(r, FIRST_RETRY_MS * 2 ** (attempt - 1)));
    }
    this.dropped += batch.messages.length;
  }
}
