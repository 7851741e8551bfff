import { readFile } from 'node:fs/promises';
import { unwatchFile, watchFile, type Stats } from 'node:fs';
import { ErrorCode, KedgeError } from '../../common/errors.js';

/** Metadata that comes with a desired document. */
export interface DesiredMeta {
  /** Version assigned by the source (the twin `$version`); else the manifest decides. */
  version?: string;
  /** Where it came from, for logs. */
  origin: string;
}

/** Receives desired documents; the agent validates them (a bad one is rejected as a whole). */
export type DesiredHandler = (doc: unknown, meta: DesiredMeta) => void;

/**
 * Where desired state comes from: a local manifest file in standalone mode, the cloud link later.
 * A source calls the handler with every new document, starting with the current one if any.
 */
export interface DesiredStateSource {
  start(onDesired: DesiredHandler): Promise<void>;
  stop(): Promise<void>;
}

/** How often the manifest file is checked for changes: cheap (one stat) and quick enough. */
export const DEFAULT_FILE_POLL_MS = 2000;

/** Reads and parses a JSON manifest file. @throws KedgeError InvalidInput / NotFound */
export async function readManifestFile(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new KedgeError(ErrorCode.NotFound, `cannot read manifest ${file}`, { cause: err });
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    const detail = err instanceof Error ? err.message : String(err);
    throw new KedgeError(ErrorCode.InvalidInput, `manifest ${file} is not valid JSON: ${detail}`, {
      cause: err,
    });
  }
}

/** A manifest file, re-read whenever it changes. */
export class FileDesiredStateSource implements DesiredStateSource {
  readonly #file: string;
  readonly #pollMs: number;
  #listener: ((curr: Stats, prev: Stats) => void) | undefined;

  /** @param pollMs change check interval; defaults to {@link DEFAULT_FILE_POLL_MS}. */
  constructor(file: string, pollMs = DEFAULT_FILE_POLL_MS) {
    this.#file = file;
    this.#pollMs = pollMs;
  }

  /** Reads the file once (throwing when it is unreadable or not JSON), then watches it. */
  async start(onDesired: DesiredHandler): Promise<void> {
    onDesired(await readManifestFile(this.#file), { origin: this.#file });
    this.#listener = (curr, prev) => {
      if (curr.mtimeMs === prev.mtimeMs && curr.size === prev.size) return;
      readManifestFile(this.#file).then(
        (doc) => onDesired(doc, { origin: this.#file }),
        (err: unknown) => onDesired(new InvalidDocument(err), { origin: this.#file }),
      );
    };
    watchFile(this.#file, { interval: this.#pollMs, persistent: false }, this.#listener);
  }

  stop(): Promise<void> {
    if (this.#listener) unwatchFile(this.#file, this.#listener);
    this.#listener = undefined;
    return Promise.resolve();
  }
}

/** Passed to the handler when a changed file cannot be read, so the rejection is reported. */
export class InvalidDocument {
  constructor(readonly error: unknown) {}
}
