/**
 * A minimal ustar writer for support bundles: regular files only, names up to 100 bytes, gzipped
 * with node:zlib. Enough for `tar -xzf`; no dependency needed.
 */
import { gzipSync } from 'node:zlib';

/** One file in the archive. */
export interface TarEntry {
  /** Relative path, at most 100 bytes. */
  name: string;
  data: Buffer | string;
  /** Default 0o644. */
  mode?: number;
}

const BLOCK = 512;
/** ustar name field size. */
const NAME_BYTES = 100;

function octal(value: number, width: number): string {
  // width - 1 digits then NUL, as ustar numeric fields are written.
  return `${value.toString(8).padStart(width - 1, '0')}\0`;
}

function header(name: string, size: number, mode: number, mtimeSecs: number): Buffer {
  const nameBytes = Buffer.from(name, 'utf8');
  if (nameBytes.length > NAME_BYTES || nameBytes.length === 0)
    throw new Error(`tar entry name must be 1..${NAME_BYTES} bytes: ${name}`);
  const h = Buffer.alloc(BLOCK, 0);
  nameBytes.copy(h, 0);
  h.write(octal(mode, 8), 100, 'ascii');
  h.write(octal(0, 8), 108, 'ascii'); // uid
  h.write(octal(0, 8), 116, 'ascii'); // gid
  h.write(octal(size, 12), 124, 'ascii');
  h.write(octal(mtimeSecs, 12), 136, 'ascii');
  h.write('        ', 148, 'ascii'); // checksum counts as spaces while summing
  h.write('0', 156, 'ascii'); // regular file
  h.write('ustar\0', 257, 'ascii');
  h.write('00', 263, 'ascii');
  let sum = 0;
  for (const byte of h) sum += byte;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
  return h;
}

/** The tar stream of `entries` (uncompressed). */
export function tarBuffer(entries: readonly TarEntry[], mtime = new Date()): Buffer {
  const mtimeSecs = Math.floor(mtime.getTime() / 1000);
  const parts: Buffer[] = [];
  for (const entry of entries) {
    const data = typeof entry.data === 'string' ? Buffer.from(entry.data, 'utf8') : entry.data;
    parts.push(header(entry.name, data.length, entry.mode ?? 0o644, mtimeSecs), data);
    const pad = (BLOCK - (data.length % BLOCK)) % BLOCK;
    if (pad > 0) parts.push(Buffer.alloc(pad, 0));
  }
  parts.push(Buffer.alloc(2 * BLOCK, 0)); // end of archive
  return Buffer.concat(parts);
}

/** The `.tar.gz` bytes of `entries`. */
export function tarGzip(entries: readonly TarEntry[], mtime?: Date): Buffer {
  return gzipSync(tarBuffer(entries, mtime));
}
