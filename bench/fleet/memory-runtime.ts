import { Readable } from 'node:stream';
import type { ModuleRuntime, PullRequest } from '../../src/edgenode/agent/runtime.js';
import type {
  LogOptions,
  ModuleSpec,
  ObservedModule,
  RuntimeInfo,
} from '../../src/edgenode/agent/types.js';

/**
 * A container runtime simulated in memory: the "hollow node" of the fleet benchmark. Everything
 * above it (agent, hub-less cloud link, controller) is real; instances start instantly.
 */
export class MemoryRuntime implements ModuleRuntime {
  readonly name = 'docker' as const;
  readonly configSalt = 'memory';
  readonly #instances = new Map<string, ObservedModule>();
  #next = 0;
  #listeners = new Set<() => void>();

  prepare(): Promise<void> {
    return Promise.resolve();
  }

  info(): Promise<RuntimeInfo> {
    return Promise.resolve({ name: 'docker', version: 'hollow-1.0' });
  }

  list(): Promise<ObservedModule[]> {
    return Promise.resolve([...this.#instances.values()].map((i) => ({ ...i })));
  }

  ensureImage(_spec: ModuleSpec, _pull: PullRequest): Promise<void> {
    return Promise.resolve();
  }

  create(spec: ModuleSpec): Promise<string> {
    const id = `hollow${++this.#next}`;
    this.#instances.set(id, {
      name: spec.name,
      id,
      configHash: spec.configHash,
      state: 'created',
      health: 'none',
      image: spec.image,
      imageId: 'sha256:hollow',
    });
    return Promise.resolve(id);
  }

  start(id: string): Promise<void> {
    this.#update(id, { state: 'running', startedAt: new Date() });
    return Promise.resolve();
  }

  stop(id: string, _graceMs: number): Promise<void> {
    this.#update(id, { state: 'exited', exitCode: 0, finishedAt: new Date() });
    return Promise.resolve();
  }

  remove(id: string): Promise<void> {
    this.#instances.delete(id);
    this.#notify();
    return Promise.resolve();
  }

  logs(_id: string, _options: LogOptions): Promise<Readable> {
    return Promise.resolve(Readable.from([]));
  }

  watch(onChange: () => void): () => void {
    this.#listeners.add(onChange);
    return () => this.#listeners.delete(onChange);
  }

  #update(id: string, patch: Partial<ObservedModule>): void {
    const instance = this.#instances.get(id);
    if (instance) Object.assign(instance, patch);
    this.#notify();
  }

  #notify(): void {
    for (const l of this.#listeners) queueMicrotask(l);
  }
}
