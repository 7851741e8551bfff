import type { KubeClient, KubeObject, ResourceRef } from '../controller/kube/client.js';
import type { Failure } from './protocol.js';
import { WatchedList } from './watch.js';

/**
 * Pages are told of changes at most this often. Over a fleet of thousands, status writes
 * (lastSeen, modules) arrive many times a second; one recomputed view per interval is what a
 * person can read, and it bounds the server's work and the bytes sent per open page.
 */
export const PUSH_INTERVAL_MS = 500;
/**
 * The watch stops when no page has shown the collection for this long. Moving from one view to
 * the next closes one stream and opens another; the grace keeps a fleet of thousands from being
 * listed again each time.
 */
export const IDLE_STOP_MS = 30_000;

/** Called with the current items, or with why they cannot be read. */
export type Listener<T> = (items: ReadonlyMap<string, T>, failure?: Failure) => void;

/**
 * One watch of a collection shared by every open page that shows it, started when the first
 * page asks. Listeners hear at most once per {@link PUSH_INTERVAL_MS}.
 */
export class SharedList<T extends KubeObject> {
  readonly #listeners = new Set<Listener<T>>();
  #list: WatchedList<T> | undefined;
  #failure: Failure | undefined;
  #synced = false;
  #timer: NodeJS.Timeout | undefined;
  #idle: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(
    private readonly client: KubeClient,
    private readonly ref: ResourceRef,
  ) {}

  get items(): ReadonlyMap<string, T> {
    return this.#list?.items ?? new Map<string, T>();
  }

  /** Adds a listener, told at once if the list is already known; returns its removal. */
  listen(listener: Listener<T>): () => void {
    if (this.#closed) return () => undefined;
    this.#listeners.add(listener);
    clearTimeout(this.#idle);
    this.#list ??= this.#start();
    if (this.#synced || this.#failure) listener(this.items, this.#failure);
    return () => {
      this.#listeners.delete(listener);
      if (this.#listeners.size === 0 && !this.#closed)
        this.#idle = setTimeout(() => this.stop(), IDLE_STOP_MS);
    };
  }

  #start(): WatchedList<T> {
    // A stopped watch may still finish a request; only the current one may speak.
    const current = (): boolean => this.#list === list;
    const list: WatchedList<T> = new WatchedList<T>(this.client, this.ref, {
      onChange: () => {
        if (!current()) return;
        this.#synced = true;
        this.#failure = undefined;
        this.#schedule();
      },
      onError: (failure) => {
        if (!current()) return;
        this.#failure = failure;
        this.#notify();
      },
    });
    return list;
  }

  /** The items once known (at once if they are), or why they cannot be read. */
  current(): Promise<{ items: ReadonlyMap<string, T>; failure?: Failure }> {
    return new Promise((resolve) => {
      let told = false;
      const stop = this.listen((items, failure) => {
        if (told) return;
        told = true;
        resolve({ items, failure });
        // A listener may be told during listen() itself, before `stop` is assigned.
        queueMicrotask(() => stop());
      });
    });
  }

  /** Stops for good: the dashboard is shutting down. */
  close(): void {
    this.#closed = true;
    this.#listeners.clear();
    this.stop();
  }

  stop(): void {
    this.#list?.stop();
    this.#list = undefined;
    this.#synced = false;
    this.#failure = undefined;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    clearTimeout(this.#idle);
  }

  #schedule(): void {
    this.#timer ??= setTimeout(() => {
      this.#timer = undefined;
      this.#notify();
    }, PUSH_INTERVAL_MS);
  }

  #notify(): void {
    for (const listener of this.#listeners) listener(this.items, this.#failure);
  }
}
