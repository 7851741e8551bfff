import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { ErrorCode, KedgeError } from '../../common/errors.js';

/** Owner-only: the desired state holds registry passwords. */
const FILE_MODE = 0o600;
const DIR_MODE = 0o700;

/**
 * Writes `data` as JSON so that a crash at any moment leaves either the old or the new file:
 * write a temporary file, fsync it, rename it over the target, fsync the directory.
 */
export async function writeJsonAtomic(file: string, data: unknown): Promise<void> {
  const dir = path.dirname(file);
  await mkdir(dir, { recursive: true, mode: DIR_MODE });
  const temp = `${file}.${process.pid}.tmp`;
  const handle = await open(temp, 'w', FILE_MODE);
  try {
    await handle.writeFile(`${JSON.stringify(data, null, 2)}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await rename(temp, file);
  } catch (err) {
    await rm(temp, { force: true });
    throw new KedgeError(ErrorCode.Internal, `cannot replace ${file}`, { cause: err });
  }
  const dirHandle = await open(dir, 'r');
  try {
    await dirHandle.sync();
  } finally {
    await dirHandle.close();
  }
}

/** Reads a JSON file written by {@link writeJsonAtomic}; undefined when it does not exist. */
export async function readJson(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new KedgeError(ErrorCode.InvalidConfig, `cannot read ${file}`, { cause: err });
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new KedgeError(ErrorCode.InvalidConfig, `${file} is not valid JSON`, { cause: err });
  }
}
