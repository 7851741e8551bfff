/**
 * The store-and-forward queue for `$upstream`. Every backend passes one conformance suite
 * (`queue-conformance.test.ts`).
 *
 * Contract:
 * - `enqueue` resolves only once the items are durable (for SQLite: committed with fsync). Calls
 *   in the same event-loop turn share one commit (group commit).
 * - `peek` returns the oldest items of the highest priority (0 first) in enqueue order, skipping
 *   and deleting expired items (counted in `expiredTotal`).
 * - Items stay until `ack`; a crash before `ack` redelivers them (at-least-once).
 * - The bound (`maxBytes`, `maxMessages`) is enforced by the drop policy; drops are counted.
 */

/** An item to enqueue. */
export interface NewQueueItem {
  /** 0 (highest) … 10 (lowest). */
  priority: number;
  /** Absolute expiry (epoch ms). */
  expiresAtMs: number;
  /** Opaque header (JSON text) and body. */
  header: string;
  body: Buffer;
}

/** An item read from the queue. */
export interface QueueItem extends NewQueueItem {
  /** Monotonic sequence number; order within a priority. */
  seq: number;
  enqueuedAtMs: number;
}

/** Queue counters and gauges, for metrics. */
export interface QueueStats {
  depth: number;
  bytes: number;
  /** Enqueue time of the oldest item (epoch ms), or undefined when empty. */
  oldestEnqueuedAtMs: number | undefined;
  expiredTotal: number;
  droppedTotal: number;
}

/** Bound and policy. */
export interface QueueLimits {
  maxBytes: number;
  maxMessages: number;
  dropPolicy: 'drop-oldest' | 'reject-new';
}

/** The queue seam. */
export interface DurableQueue {
  /** Appends items; resolves when they are durable. Rejects with LimitExceeded under `reject-new`. */
  enqueue(items: NewQueueItem[]): Promise<void>;
  /** Up to `limit` items in delivery order (see the contract above). */
  peek(limit: number, nowMs?: number): QueueItem[];
  /** Removes delivered items. */
  ack(seqs: number[]): void;
  stats(): QueueStats;
  /** Resolves when an item is enqueued (or immediately if the queue is not empty). */
  waitForItems(signal?: AbortSignal): Promise<void>;
  /** Flushes pending commits and releases resources. */
  close(): Promise<void>;
}

/** Size of one item as counted against `maxBytes`. */
export function itemBytes(item: NewQueueItem): number {
  return item.body.length + item.header.length;
}
