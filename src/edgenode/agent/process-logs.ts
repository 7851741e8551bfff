import { open, readFile, stat } from 'node:fs/promises';
import { PassThrough, type Readable } from 'node:stream';
import type { LogOptions } from './types.js';

/** How often a followed log file is checked for new bytes. */
const FOLLOW_POLL_MS = 250;
/** Each log line starts with `YYYY-MM-DDTHH:MM:SSZ ` (written by the process wrapper). */
const STAMP = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ) /;

function format(line: string, options: LogOptions): string | undefined {
  const match = STAMP.exec(line);
  if (
    options.since &&
    match &&
    Date.parse(match[1]!) < Math.floor(options.since.getTime() / 1000) * 1000
  ) {
    return undefined;
  }
  return options.timestamps || !match ? `${line}\n` : `${line.slice(match[0].length)}\n`;
}

/**
 * Reads a process module's log file with Docker's semantics: `tail`, `since` (second
 * resolution: the wrapper stamps whole seconds), `timestamps`, and `follow` (polls the file).
 */
export async function readProcessLog(file: string, options: LogOptions): Promise<Readable> {
  const text = await readFile(file, 'utf8').catch(() => '');
  const complete = text.endsWith('\n') ? text : text.slice(0, text.lastIndexOf('\n') + 1);
  let lines = complete.split('\n').slice(0, -1);
  if (options.tail !== undefined) lines = options.tail === 0 ? [] : lines.slice(-options.tail);
  const out = new PassThrough();
  for (const line of lines) {
    const formatted = format(line, options);
    if (formatted !== undefined) out.write(formatted);
  }
  if (!options.follow) {
    out.end();
    return out;
  }
  let offset = Buffer.byteLength(complete);
  let partial = '';
  const timer = setInterval(() => {
    void (async () => {
      const size = (await stat(file).catch(() => undefined))?.size ?? 0;
      if (size <= offset) return;
      const handle = await open(file, 'r');
      const chunk = Buffer.alloc(size - offset);
      await handle.read(chunk, 0, chunk.length, offset).finally(() => handle.close());
      offset = size;
      const pieces = (partial + chunk.toString('utf8')).split('\n');
      partial = pieces.pop() ?? '';
      for (const line of pieces) {
        const formatted = format(line, options);
        if (formatted !== undefined && !out.destroyed) out.write(formatted);
      }
    })().catch(() => undefined);
  }, FOLLOW_POLL_MS);
  out.on('close', () => clearInterval(timer));
  return out;
}
