import type { Logger } from '../../common/logger.js';
import type { KubeClient, KubeObject, ResourceRef } from './client.js';
import { Informer, type InformerHandler } from './informer.js';

/** What reconcilers read from an informer, whether it watches one namespace, several or all. */
export interface ObjectCache<T extends KubeObject> {
  on(handler: InformerHandler<T>): void;
  get(key: string): T | undefined;
  list(): T[];
  /** See {@link Informer.addIndex}. */
  addIndex(name: string, valueOf: (obj: T) => string | undefined): void;
  /** See {@link Informer.indexed}. */
  indexed(name: string, value: string): T[];
  synced(): Promise<void>;
  start(): void;
  stop(): void;
}

/**
 * One informer per watched namespace, read as one cache. With no namespaces it watches the whole
 * cluster, which needs cluster-wide RBAC; with a list, Roles in those namespaces suffice.
 */
export function namespacedCache<T extends KubeObject>(
  client: KubeClient,
  ref: (namespace?: string) => ResourceRef,
  namespaces: readonly string[],
  { log, labelSelector }: { log: Logger; labelSelector?: string },
): ObjectCache<T> {
  if (namespaces.length === 0) return new Informer<T>(client, ref(), log, labelSelector);
  const informers = namespaces.map((ns) => new Informer<T>(client, ref(ns), log, labelSelector));
  return {
    on: (handler) => informers.forEach((i) => i.on(handler)),
    get: (key) => informers.find((i) => key.startsWith(`${nsOf(i)}/`))?.get(key),
    list: () => informers.flatMap((i) => i.list()),
    addIndex: (name, valueOf) => informers.forEach((i) => i.addIndex(name, valueOf)),
    indexed: (name, value) => informers.flatMap((i) => i.indexed(name, value)),
    synced: async () => {
      await Promise.all(informers.map((i) => i.synced()));
    },
    start: () => informers.forEach((i) => i.start()),
    stop: () => informers.forEach((i) => i.stop()),
  };

  function nsOf(informer: Informer<T>): string {
    return namespaces[informers.indexOf(informer)]!;
  }
}
