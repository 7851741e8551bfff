import { createInterface } from 'node:readline';
import type { IncomingMessage } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../../common/logger.js';
import {
  KubeApiError,
  resourcePath,
  type KubeClient,
  type KubeObject,
  type ResourceRef,
} from './client.js';

/** Server-side watch timeout; the informer re-watches from the last resourceVersion. */
const WATCH_TIMEOUT_SECS = 300;
/** Pause before re-listing after an error, so a down API server is not hammered. */
const RETRY_DELAY_MS = 1000;

export type InformerEvent = 'add' | 'update' | 'delete';
export type InformerHandler<T> = (event: InformerEvent, obj: T, old?: T) => void;

/** The cache key of an object: `namespace/name`, or `name` for cluster-scoped objects. */
export function keyOf(obj: KubeObject): string {
  return obj.metadata.namespace
    ? `${obj.metadata.namespace}/${obj.metadata.name}`
    : (obj.metadata.name ?? '');
}

/** Objects grouped by one derived value: value → (cache key → object). */
interface SecondaryIndex<T> {
  valueOf: (obj: T) => string | undefined;
  buckets: Map<string, Map<string, T>>;
}

function indexAdd<T>(index: SecondaryIndex<T>, key: string, obj: T): void {
  const value = index.valueOf(obj);
  if (value === undefined) return;
  let bucket = index.buckets.get(value);
  if (!bucket) {
    bucket = new Map<string, T>();
    index.buckets.set(value, bucket);
  }
  bucket.set(key, obj);
}

function indexRemove<T>(index: SecondaryIndex<T>, key: string, obj: T): void {
  const value = index.valueOf(obj);
  if (value === undefined) return;
  const bucket = index.buckets.get(value);
  bucket?.delete(key);
  if (bucket?.size === 0) index.buckets.delete(value);
}

interface WatchEvent<T> {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: T;
}

/**
 * List-then-watch cache of one resource, as client-go's reflector does: it keeps a local copy,
 * re-watches from the last resourceVersion, and re-lists after 410 Gone or any error.
 */
export class Informer<T extends KubeObject> {
  readonly #cache = new Map<string, T>();
  readonly #indexes = new Map<string, SecondaryIndex<T>>();
  readonly #handlers: InformerHandler<T>[] = [];
  #resourceVersion = '';
  #stopped = false;
  #current: IncomingMessage | undefined;
  #synced: Promise<void>;
  #markSynced!: () => void;

  constructor(
    private readonly client: KubeClient,
    private readonly ref: ResourceRef,
    private readonly log: Logger,
    private readonly labelSelector?: string,
  ) {
    this.#synced = new Promise((resolve) => (this.#markSynced = resolve));
  }

  on(handler: InformerHandler<T>): void {
    this.#handlers.push(handler);
  }

  get(key: string): T | undefined {
    return this.#cache.get(key);
  }

  list(): T[] {
    return [...this.#cache.values()];
  }

  /**
   * Adds a secondary index kept in step with the cache, so reconcilers can look objects up by a
   * field (pods by node) without scanning every object. Add indexes before {@link start}.
   */
  addIndex(name: string, valueOf: (obj: T) => string | undefined): void {
    const index: SecondaryIndex<T> = { valueOf, buckets: new Map() };
    for (const [key, obj] of this.#cache) indexAdd(index, key, obj);
    this.#indexes.set(name, index);
  }

  /** Objects whose index `name` has `value`; empty for an unknown index. */
  indexed(name: string, value: string): T[] {
    const bucket = this.#indexes.get(name)?.buckets.get(value);
    return bucket ? [...bucket.values()] : [];
  }

  /** Resolves after the first full list. */
  async synced(): Promise<void> {
    return this.#synced;
  }

  start(): void {
    void this.#run();
  }

  stop(): void {
    this.#stopped = true;
    this.#current?.destroy();
  }

  async #run(): Promise<void> {
    while (!this.#stopped) {
      try {
        if (!this.#resourceVersion) await this.#relist();
        await this.#watch();
      } catch (err) {
        if (this.#stopped) return;
        if (err instanceof KubeApiError && err.status === 410) this.#resourceVersion = '';
        else this.log.warn({ err, resource: this.ref.plural }, 'watch failed; retrying');
        await sleep(RETRY_DELAY_MS);
      }
    }
  }

  async #relist(): Promise<void> {
    const list = await this.client.list<T>(this.ref, { labelSelector: this.labelSelector });
    this.log.debug(
      { resource: this.ref.plural, namespace: this.ref.namespace, items: list.items.length },
      'listed',
    );
    const seen = new Set<string>();
    // List items come without apiVersion and kind (watch events have them); Events need both.
    const kind = list.kind?.replace(/List$/, '');
    for (const item of list.items) {
      item.apiVersion ??= list.apiVersion;
      item.kind ??= kind;
      const key = keyOf(item);
      seen.add(key);
      this.#apply('ADDED', item);
    }
    for (const [key, obj] of this.#cache) {
      if (!seen.has(key)) this.#apply('DELETED', obj);
    }
    this.#resourceVersion = list.metadata.resourceVersion ?? '';
    this.#markSynced();
  }

  async #watch(): Promise<void> {
    const res = await this.client.stream({
      method: 'GET',
      path: resourcePath(this.ref),
      query: {
        watch: true,
        resourceVersion: this.#resourceVersion,
        allowWatchBookmarks: true,
        timeoutSeconds: WATCH_TIMEOUT_SECS,
        labelSelector: this.labelSelector,
      },
    });
    this.#current = res;
    const lines = createInterface({ input: res, crlfDelay: Infinity });
    for await (const line of lines) {
      if (!line.trim()) continue;
      const event = JSON.parse(line) as WatchEvent<T>;
      if (event.type === 'ERROR') {
        const status = event.object as unknown as { code?: number; message?: string };
        throw new KubeApiError(status.code ?? 500, '', status.message ?? 'watch error');
      }
      this.#resourceVersion = event.object.metadata.resourceVersion ?? this.#resourceVersion;
      if (event.type !== 'BOOKMARK') this.#apply(event.type, event.object);
    }
  }

  #apply(type: 'ADDED' | 'MODIFIED' | 'DELETED', obj: T): void {
    // managedFields are often the largest part of an object and kedge never reads them; dropping
    // them keeps a fleet's pods, Nodes and devices in far less memory (controller-runtime
    // recommends the same transform).
    delete (obj.metadata as { managedFields?: unknown }).managedFields;
    const key = keyOf(obj);
    const old = this.#cache.get(key);
    if (type !== 'DELETED' && old?.metadata.resourceVersion === obj.metadata.resourceVersion)
      return;
    for (const index of this.#indexes.values()) {
      if (old) indexRemove(index, key, old);
      if (type !== 'DELETED') indexAdd(index, key, obj);
    }
    if (type === 'DELETED') {
      this.#cache.delete(key);
      this.#emit('delete', obj, old);
      return;
    }
    this.#cache.set(key, obj);
    this.#emit(old ? 'update' : 'add', obj, old);
  }

  #emit(event: InformerEvent, obj: T, old?: T): void {
    for (const handler of this.#handlers) {
      try {
        handler(event, obj, old);
      } catch (err) {
        this.log.error({ err, resource: this.ref.plural }, 'informer handler failed');
      }
    }
  }
}
