import { Readable } from 'node:stream';
import {
  RuntimeError,
  type ModuleRuntime,
  type PullRequest,
} from '../../src/edgenode/agent/runtime.js';
import type {
  LogOptions,
  ModuleSpec,
  ObservedModule,
  RuntimeInfo,
} from '../../src/edgenode/agent/types.js';

/** Images whose repository ends with this cannot be pulled, so tests can roll out a bad image. */
const BROKEN_REPOSITORY_SUFFIX = 'broken';

/** The repository of an image reference: the reference without its tag or digest. */
function repositoryOf(image: string): string {
  const at = image.indexOf('@');
  const ref = at >= 0 ? image.slice(0, at) : image;
  const colon = ref.lastIndexOf(':');
  return colon > ref.lastIndexOf('/') ? ref.slice(0, colon) : ref;
}

/**
 * A container runtime simulated in memory: the "hollow node" of the fleet benchmark. Everything
 * above it (agent, hub-less cloud link, controller) is real; instances start instantly. An image
 * whose repository ends with `broken` fails to pull, as a missing image would.
 */
export class MemoryRuntime implements ModuleRuntime {
  readonly name = 'docker' as const;
  readonly configSalt = 'memory';
  readonly #instances = new Map<string, ObservedModule>();
  #next = 0;
  #listeners = new Set<() => void>();
  /** Instances created so far, by module name: a test's proof that a module was left alone. */
  readonly created = new Map<string, number>();

  prepare(): Promise<void> {
    return Promise.resolve();
  }

  info(): Promise<RuntimeInfo> {
    return Promise.resolve({ name: 'docker', version: 'hollow-1.0' });
  }

  /** The instances now, read synchronously (a test's view at one instant). */
  instances(): ObservedModule[] {
    return [...this.#instances.values()].map((i) => ({ ...i }));
  }

  list(): Promise<ObservedModule[]> {
    return Promise.resolve([...this.#instances.values()].map((i) => ({ ...i })));
  }

  ensureImage(spec: ModuleSpec, _pull: PullRequest): Promise<void> {
    if (repositoryOf(spec.image).endsWith(BROKEN_REPOSITORY_SUFFIX))
      return Promise.reject(
        new RuntimeError('ErrImagePull', `pull access denied for ${spec.image}`, {
          terminal: false,
        }),
      );
    return Promise.resolve();
  }

  create(spec: ModuleSpec): Promise<string> {
    const id = `hollow${++this.#next}`;
    this.created.set(spec.name, (this.created.get(spec.name) ?? 0) + 1);
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
