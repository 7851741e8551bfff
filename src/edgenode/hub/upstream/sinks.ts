/** Standalone `$upstream` sinks: none (hold everything), stdout and a JSON-lines file. */
import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs';
import { allSent, UpstreamBase, type SendResult, type UpstreamMessage } from './upstream.js';

/** The JSON line written per message by the file and stdout sinks. */
export function toJsonLine(m: UpstreamMessage): string {
  return `${JSON.stringify({
    seq: m.seq,
    kind: m.kind,
    priority: m.priority,
    enqueuedAt: new Date(m.enqueuedAtMs).toISOString(),
    source: m.source,
    properties: Object.fromEntries(m.properties),
    body: m.body.toString('utf8'),
  })}\n`;
}

/** Never connected: messages stay queued until TTL (for devices with no upstream at all). */
export class NoUpstream extends UpstreamBase {
  readonly name = 'none';
  start(): Promise<void> {
    return Promise.resolve();
  }
  send(): Promise<SendResult> {
    return Promise.reject(new Error('no upstream configured'));
  }
  stop(): Promise<void> {
    return Promise.resolve();
  }
}

/** Writes JSON lines to stdout. */
export class StdoutUpstream extends UpstreamBase {
  readonly name = 'stdout';
  start(): Promise<void> {
    this.setConnected(true);
    return Promise.resolve();
  }
  send(batch: UpstreamMessage[]): Promise<SendResult> {
    process.stdout.write(batch.map(toJsonLine).join(''));
    return Promise.resolve(allSent(batch));
  }
  stop(): Promise<void> {
    this.setConnected(false);
    return Promise.resolve();
  }
}

/** Appends JSON lines to a file and fsyncs each batch before acknowledging it. */
export class FileUpstream extends UpstreamBase {
  readonly name = 'file';
  readonly #path: string;
  #fd: number | undefined;

  constructor(path: string) {
    super();
    this.#path = path;
  }

  start(): Promise<void> {
    this.#fd = openSync(this.#path, 'a');
    this.setConnected(true);
    return Promise.resolve();
  }

  send(batch: UpstreamMessage[]): Promise<SendResult> {
    if (this.#fd === undefined) return Promise.reject(new Error('file sink is closed'));
    writeSync(this.#fd, batch.map(toJsonLine).join(''));
    fsyncSync(this.#fd);
    return Promise.resolve(allSent(batch));
  }

  stop(): Promise<void> {
    if (this.#fd !== undefined) closeSync(this.#fd);
    this.#fd = undefined;
    this.setConnected(false);
    return Promise.resolve();
  }
}
