import { setTimeout as sleep } from 'node:timers/promises';

/** First retry delay after a failed reconcile, as controller-runtime's default rate limiter. */
export const BASE_RETRY_DELAY_MS = 5;
/** Cap on the per-key retry delay (controller-runtime uses 1000 s; edge fleets want faster). */
export const MAX_RETRY_DELAY_MS = 60_000;

/** What a reconcile returns: optionally when to look at the key again. */
export interface ReconcileResult {
  requeueAfterMs?: number;
}

/** An error that must not be retried (bad input); it is logged and counted, not requeued. */
export class TerminalError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TerminalError';
  }
}

export type Reconcile = (key: string) => Promise<ReconcileResult | void>;

/** Observes reconcile outcomes for metrics. */
export interface QueueObserver {
  reconciled?(key: string, durationMs: number, outcome: 'success' | 'error' | 'terminal'): void;
  failed?(key: string, err: unknown): void;
}

/**
 * A keyed, de-duplicating work queue with per-key exponential backoff. A key is processed by at
 * most one worker at a time; adding a key that is being processed marks it dirty so it runs
 * once more afterwards. Level-based: the reconcile reads current state, not the event.
 */
export class WorkQueue {
  readonly #queue: string[] = [];
  readonly #queued = new Set<string>();
  readonly #processing = new Set<string>();
  readonly #dirty = new Set<string>();
  readonly #failures = new Map<string, number>();
  readonly #timers = new Map<string, NodeJS.Timeout>();
  readonly #waiters: (() => void)[] = [];
  #stopped = false;

  constructor(
    private readonly reconcile: Reconcile,
    private readonly options: {
      concurrency?: number;
      observer?: QueueObserver;
      baseRetryDelayMs?: number;
    } = {},
  ) {}

  get depth(): number {
    return this.#queue.length;
  }

  add(key: string): void {
    if (this.#stopped) return;
    if (this.#processing.has(key)) {
      this.#dirty.add(key);
      return;
    }
    if (this.#queued.has(key)) return;
    this.#queued.add(key);
    this.#queue.push(key);
    this.#waiters.shift()?.();
  }

  /** Adds `key` after `delayMs`, keeping only the earliest pending delay. */
  addAfter(key: string, delayMs: number): void {
    if (this.#stopped || this.#timers.has(key)) return;
    const timer = setTimeout(() => {
      this.#timers.delete(key);
      this.add(key);
    }, delayMs);
    timer.unref();
    this.#timers.set(key, timer);
  }

  /** Starts the workers; resolves when the queue is stopped. */
  async run(): Promise<void> {
    const workers = Array.from({ length: this.options.concurrency ?? 2 }, () => this.#worker());
    await Promise.all(workers);
  }

  stop(): void {
    this.#stopped = true;
    for (const t of this.#timers.values()) clearTimeout(t);
    this.#timers.clear();
    for (const wake of this.#waiters.splice(0)) wake();
  }

  /** Resolves when nothing is queued, processing or waiting (for tests and benchmarks). */
  async idle(pollMs = 20): Promise<void> {
    while (this.#queue.length > 0 || this.#processing.size > 0) await sleep(pollMs);
  }

  async #worker(): Promise<void> {
    while (!this.#stopped) {
      const key = this.#queue.shift();
      if (key === undefined) {
        await new Promise<void>((resolve) => this.#waiters.push(resolve));
        continue;
      }
      this.#queued.delete(key);
      this.#processing.add(key);
      await this.#process(key);
      this.#processing.delete(key);
      if (this.#dirty.delete(key)) this.add(key);
    }
  }

  async #process(key: string): Promise<void> {
    const started = performance.now();
    const observer = this.options.observer;
    try {
      const result = await this.reconcile(key);
      this.#failures.delete(key);
      observer?.reconciled?.(key, performance.now() - started, 'success');
      if (result?.requeueAfterMs !== undefined) this.addAfter(key, result.requeueAfterMs);
    } catch (err) {
      const terminal = err instanceof TerminalError;
      observer?.reconciled?.(key, performance.now() - started, terminal ? 'terminal' : 'error');
      observer?.failed?.(key, err);
      if (!terminal) this.addAfter(key, this.#nextDelay(key));
    }
  }

  #nextDelay(key: string): number {
    const failures = (this.#failures.get(key) ?? 0) + 1;
    this.#failures.set(key, failures);
    const base = this.options.baseRetryDelayMs ?? BASE_RETRY_DELAY_MS;
    return Math.min(base * 2 ** (failures - 1), MAX_RETRY_DELAY_MS);
  }
}
