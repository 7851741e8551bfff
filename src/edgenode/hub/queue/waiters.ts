/** A set of promises resolved together when items arrive (shared by the queue backends). */
export class Waiters {
  #waiters = new Set<() => void>();

  /** Resolves on the next `wake()` or when `signal` aborts. */
  wait(signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        this.#waiters.delete(done);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      this.#waiters.add(done);
      signal?.addEventListener('abort', done, { once: true });
      if (signal?.aborted) done();
    });
  }

  wake(): void {
    for (const w of [...this.#waiters]) w();
  }
}
