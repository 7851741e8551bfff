import { copyFile, open, readFile, rename, stat, truncate } from 'node:fs/promises';
import { PassThrough, type Readable } from 'node:stream';
import type { LogOptions } from './types.js';

/** A module's log is rotated past this size (Docker's json-file `max-size` is often 10m). */
export const DEFAULT_LOG_MAX_BYTES = 10 * 1024 * 1024;
/** Files kept per module: the live one and two rotated ones (`.1` newest, `.2` oldest). */
export const LOG_FILES_KEPT = 3;

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

/** The rotated files of `file`, oldest first, then `file` itself. */
function generations(file: string): string[] {
  const rotated = Array.from({ length: LOG_FILES_KEPT - 1 }, (_, i) => `${file}.${i + 1}`);
  return [...rotated.reverse(), file];
}

/**
 * Rotates `file` when it is over `maxBytes`: `.1` → `.2`, a copy to `.1`, then truncation in place.
 * Copy-and-truncate, because the module's wrapper holds the file open in append mode (it then
 * writes from offset 0); lines written between the copy and the truncation are lost.
 */
export async function rotateLog(file: string, maxBytes: number): Promise<boolean> {
  const size = (await stat(file).catch(() => undefined))?.size ?? 0;
  if (size <= maxBytes) return false;
  for (let n = LOG_FILES_KEPT - 1; n > 1; n--)
    await rename(`${file}.${n - 1}`, `${file}.${n}`).catch(() => undefined);
  await copyFile(file, `${file}.1`);
  await truncate(file, 0);
  return true;
}

/**
 * Reads a process module's log file with Docker's semantics: `tail`, `since` (second
 * resolution: the wrapper stamps whole seconds), `timestamps`, and `follow` (polls the file).
 */
export async function readProcessLog(file: string, options: LogOptions): Promise<Readable> {
  const texts = await Promise.all(
    generations(file).map((f) => readFile(f, 'utf8').catch(() => '')),
  );
  const text = texts.at(-1) ?? '';
  const complete = text.endsWith('\n') ? text : text.slice(0, text.lastIndexOf('\n') + 1);
  const older = texts.slice(0, -1).flatMap((t) => t.split('\n').filter((l) => l !== ''));
  let lines = [...older, ...complete.split('\n').slice(0, -1)];
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
      if (size < offset) offset = 0; // rotated: truncated in place
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
