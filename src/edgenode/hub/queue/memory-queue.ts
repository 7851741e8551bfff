/** An in-memory {@link DurableQueue}: same semantics, no durability. For tests and development. */
import { ErrorCode, KedgeError } from '../../../common/errors.js';
import {
  itemBytes,
  type DurableQueue,
  type NewQueueItem,
  type QueueItem,
  type QueueLimits,
  type QueueStats,
} from './durable-queue.js';
import { Waiters } from './waiters.js';

export class MemoryQueue implements DurableQueue {
  #byPriority = new Map<number, QueueItem[]>();
  #seq = 0;
  #depth = 0;
  #bytes = 0;
  #expired = 0;
  #dropped = 0;
  #limits: QueueLimits;
  #waiters = new Waiters();

  constructor(limits: QueueLimits) {
    this.#limits = limits;
  }

  enqueue(items: NewQueueItem[]): Promise<void> {
    const now = Date.now();
    for (const item of items) {
      if (!this.#makeRoom(itemBytes(item)))
        return Promise.reject(new KedgeError(ErrorCode.LimitExceeded, 'upstream queue is full'));
      const queued: QueueItem = { ...item, seq: ++this.#seq, enqueuedAtMs: now };
      const list = this.#byPriority.get(item.priority) ?? [];
      list.push(queued);
      this.#byPriority.set(item.priority, list);
      this.#depth += 1;
      this.#bytes += itemBytes(item);
    }
    this.#waiters.wake();
    return Promise.resolve();
  }

  #makeRoom(size: number): boolean {
    while (
      this.#depth + 1 > this.#limits.maxMessages ||
      this.#bytes + size > this.#limits.maxBytes
    ) {
      if (this.#limits.dropPolicy === 'reject-new' || this.#depth === 0) return false;
      const lowest = Math.max(...[...this.#byPriority].filter(([, l]) => l.length).map(([p]) => p));
      this.#remove(this.#byPriority.get(lowest)!, 1);
      this.#dropped += 1;
    }
    return true;
  }

  #remove(list: QueueItem[], count: number): void {
    for (const item of list.splice(0, count)) {
      this.#depth -= 1;
      this.#bytes -= itemBytes(item);
    }
  }

  #orderedLists(): QueueItem[][] {
    return [...this.#byPriority.entries()].sort(([a], [b]) => a - b).map(([, l]) => l);
  }

  peek(limit: number, nowMs = Date.now()): QueueItem[] {
    const out: QueueItem[] = [];
    for (const list of this.#orderedLists()) {
      this.#expire(list, nowMs);
      out.push(...list.slice(0, limit - out.length));
      if (out.length >= limit) break;
    }
    return out;
  }

  #expire(list: QueueItem[], nowMs: number): void {
    const kept = list.filter((i) => i.expiresAtMs > nowMs);
    if (kept.length === list.length) return;
    for (const i of list) if (i.expiresAtMs <= nowMs) this.#bytes -= itemBytes(i);
    this.#depth -= list.length - kept.length;
    this.#expired += list.length - kept.length;
    list.splice(0, list.length, ...kept);
  }

  ack(seqs: number[]): void {
    const done = new Set(seqs);
    for (const list of this.#byPriority.values()) {
      const kept = list.filter((i) => !done.has(i.seq));
      for (const i of list) if (done.has(i.seq)) this.#bytes -= itemBytes(i);
      this.#depth -= list.length - kept.length;
      list.splice(0, list.length, ...kept);
    }
  }

  stats(): QueueStats {
    let oldest: number | undefined;
    for (const list of this.#byPriority.values())
      if (list[0] && (oldest === undefined || list[0].enqueuedAtMs < oldest))
        oldest = list[0].enqueuedAtMs;
    return {
      depth: this.#depth,
      bytes: this.#bytes,
      oldestEnqueuedAtMs: oldest,
      expiredTotal: this.#expired,
      droppedTotal: this.#dropped,
    };
  }

  waitForItems(signal?: AbortSignal): Promise<void> {
    if (this.#depth > 0) return Promise.resolve();
    return this.#waiters.wait(signal);
  }

  close(): Promise<void> {
    this.#waiters.wake();
    return Promise.resolve();
  }
}
