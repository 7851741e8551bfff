import { errorMessage } from '../common/errors.js';

interface Step {
  name: string;
  run: () => Promise<void>;
}

/**
 * Undo steps recorded as things start, run last-in first-out. Teardown may begin while start-up is
 * still in progress (Ctrl-C); a step that fails is reported and the rest still run.
 */
export class Teardown {
  readonly #steps: Step[] = [];
  readonly #abort = new AbortController();
  #chain: Promise<void> = Promise.resolve();

  /** True once teardown has begun: start-up stops adding work. */
  get started(): boolean {
    return this.#abort.signal.aborted;
  }

  /** Aborted when teardown begins, so long waits in start-up end early. */
  get signal(): AbortSignal {
    return this.#abort.signal;
  }

  add(name: string, run: () => Promise<void>): void {
    this.#steps.push({ name, run });
  }

  /** Runs every recorded step; calling it again runs the steps added since. */
  run(onProgress: (line: string) => void): Promise<void> {
    this.#abort.abort();
    this.#chain = this.#chain.then(() => this.#drain(onProgress));
    return this.#chain;
  }

  async #drain(onProgress: (line: string) => void): Promise<void> {
    for (let step = this.#steps.pop(); step; step = this.#steps.pop()) {
      onProgress(`stopping: ${step.name}`);
      try {
        await step.run();
      } catch (err) {
        onProgress(`stopping ${step.name} failed: ${errorMessage(err)}`);
      }
    }
  }
}
