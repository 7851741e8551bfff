import type { KubeClient, KubeObject, ResourceRef } from '../controller/kube/client.js';
import type { Failure } from './protocol.js';
import { WatchedList } from './watch.js';

/**
 * Pages are told of changes at most this often. Over a fleet of thousands, status writes
 * (lastSeen, modules) arrive many times a second; one recomputed view per interval is what a
 * person can read, and it bounds the server's work and the bytes sent per open page.
 */
export const PUSH_INTERVAL_MS = 500;

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

  constructor(
    private readonly client: KubeClient,
    private readonly ref: ResourceRef,
  ) {}

  get items(): ReadonlyMap<string, T> {
    return this.#list?.items ?? new Map<string, T>();
  }

  /** Adds a listener, told at once if the list is already known; returns its removal. */
  listen(listener: Listener<T>): () => void {
    this.#listeners.add(listener);
    this.#list ??= new WatchedList<T>(this.client, this.ref, {
      onChange: () => {
        this.#synced = true;
        this.#failure = undefined;
        this.#schedule();
      },
      onError: (failure) => {
        this.#failure = failure;
        this.#notify();
      },
    });
    if (this.#synced || this.#failure) listener(this.items, this.#failure);
    return () => this.#listeners.delete(listener);
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

  stop(): void {
    this.#list?.stop();
    clearTimeout(this.#timer);
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
