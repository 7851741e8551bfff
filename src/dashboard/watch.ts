/**
 * A list-then-watch of one collection, done as the dashboard's user. Unlike the controller's
 * informer it reports why it cannot read (a 403 above all), because the dashboard shows that
 * to the user instead of retrying quietly behind a blank page.
 */
import { createInterface } from 'node:readline';
import type { IncomingMessage } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  KubeApiError,
  resourcePath,
  type KubeClient,
  type KubeObject,
  type ResourceRef,
} from '../controller/kube/client.js';
import { errorMessage } from '../common/errors.js';

/** The API server ends a watch after this; the watch resumes from the last resourceVersion. */
const WATCH_TIMEOUT_SECS = 300;
/** Wait before listing again after an error, so a down API server or a denial is not hammered. */
const RETRY_DELAY_MS = 2_000;

/** Why a collection cannot be read: the API server's status code and message. */
export interface ReadFailure {
  status: number;
  message: string;
}

/** What a {@link WatchedList} tells its owner. */
export interface WatchListHandlers<T> {
  /** The collection changed; `items` is the whole current collection, keyed by namespace/name. */
  onChange(items: ReadonlyMap<string, T>): void;
  /** Listing or watching failed; the watch retries on its own. */
  onError(failure: ReadFailure): void;
}

/** Query parameters of the list and watch, e.g. a field selector. */
export type ListQuery = Record<string, string | undefined>;

interface WatchEvent<T> {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: T;
}

/** The cache key of an object: `namespace/name`. */
export function objectKey(obj: KubeObject): string {
  return `${obj.metadata.namespace ?? ''}/${obj.metadata.name ?? ''}`;
}

/** A failure as the user should read it. */
export function readFailure(err: unknown): ReadFailure {
  if (err instanceof KubeApiError) {
    return { status: err.status, message: err.message.replace(/^GET \S+: \d+ /, '') };
  }
  return { status: 503, message: errorMessage(err) };
}

/** Keeps `items` in step with one collection until {@link WatchedList.stop}. */
export class WatchedList<T extends KubeObject> {
  readonly items = new Map<string, T>();
  #resourceVersion = '';
  #stopped = false;
  #current: IncomingMessage | undefined;

  constructor(
    private readonly client: KubeClient,
    private readonly ref: ResourceRef,
    private readonly handlers: WatchListHandlers<T>,
    private readonly query: ListQuery = {},
  ) {
    void this.#run();
  }

  stop(): void {
    this.#stopped = true;
    this.#current?.destroy();
  }

  async #run(): Promise<void> {
    while (!this.#stopped) {
      try {
        if (!this.#resourceVersion) await this.#list();
        await this.#watch();
      } catch (err) {
        if (this.#stopped) return;
        if (err instanceof KubeApiError && err.status === 410) this.#resourceVersion = '';
        else {
          this.#resourceVersion = '';
          this.handlers.onError(readFailure(err));
          await sleep(RETRY_DELAY_MS);
        }
      }
    }
  }

  async #list(): Promise<void> {
    const list = await this.client.list<T>(this.ref, this.query);
    this.items.clear();
    for (const item of list.items) this.items.set(objectKey(item), slim(item));
    this.#resourceVersion = list.metadata.resourceVersion ?? '';
    this.handlers.onChange(this.items);
  }

  async #watch(): Promise<void> {
    const res = await this.client.stream({
      method: 'GET',
      path: resourcePath(this.ref),
      query: {
        ...this.query,
        watch: true,
        resourceVersion: this.#resourceVersion,
        allowWatchBookmarks: true,
        timeoutSeconds: WATCH_TIMEOUT_SECS,
      },
    });
    this.#current = res;
    if (this.#stopped) return void res.destroy();
    const lines = createInterface({ input: res, crlfDelay: Infinity });
    // readline ends only on 'end'; a dropped or destroyed response must end the loop too.
    res.once('close', () => lines.close());
    for await (const line of lines) {
      if (line.trim()) this.#apply(JSON.parse(line) as WatchEvent<T>);
    }
  }

  #apply(event: WatchEvent<T>): void {
    if (event.type === 'ERROR') {
      const status = event.object as unknown as { code?: number; message?: string };
      throw new KubeApiError(status.code ?? 500, '', status.message ?? 'watch error');
    }
    this.#resourceVersion = event.object.metadata.resourceVersion ?? this.#resourceVersion;
    if (event.type === 'BOOKMARK') return;
    const key = objectKey(event.object);
    if (event.type === 'DELETED') this.items.delete(key);
    else this.items.set(key, slim(event.object));
    this.handlers.onChange(this.items);
  }
}

/** managedFields are the largest part of most objects and the dashboard never shows them. */
function slim<T extends KubeObject>(obj: T): T {
  delete (obj.metadata as { managedFields?: unknown }).managedFields;
  return obj;
}
