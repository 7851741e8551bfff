/** Free space for the data directory, where the store-and-forward queue and module state live. */
import { statfs } from 'node:fs/promises';
import path from 'node:path';
import { errorMessage } from '../common/errors.js';
import { fail, ok, warn, type CheckResult } from './result.js';

const MIB = 1024 * 1024;

/**
 * Failing below both 100 MiB and 5 % of the filesystem: SQLite needs room for its WAL and a
 * checkpoint, and below that the queue stops accepting messages. Both must hold, so that a big
 * disk at 4 % (many GiB) and a small card with 90 % free do not fail.
 */
export const DISK_FAIL_BYTES = 100 * MIB;
export const DISK_FAIL_FRACTION = 0.05;
/** Warning below 10 %, or below the queue's configured size bound. */
export const DISK_WARN_FRACTION = 0.1;

/** Space on the filesystem of the data directory. */
export interface DiskSpace {
  freeBytes: number;
  totalBytes: number;
}

function mib(bytes: number): string {
  return `${(bytes / MIB).toFixed(bytes < 10 * MIB ? 1 : 0)} MiB`;
}

/** Judges the space left against the thresholds and the queue's bound (`queueMaxBytes`). */
export function judgeDisk(dataDir: string, space: DiskSpace, queueMaxBytes: number): CheckResult {
  const name = 'disk space';
  const fraction = space.totalBytes > 0 ? space.freeBytes / space.totalBytes : 0;
  const found = `${mib(space.freeBytes)} free of ${mib(space.totalBytes)} (${(fraction * 100).toFixed(1)} %) for ${dataDir}`;
  if (space.freeBytes < DISK_FAIL_BYTES && fraction < DISK_FAIL_FRACTION)
    return fail(
      name,
      found,
      `free space on the filesystem of dataDir (${dataDir}), or move dataDir to a bigger one: the queue and module state need room to write`,
    );
  if (fraction < DISK_WARN_FRACTION || space.freeBytes < queueMaxBytes)
    return warn(
      name,
      `${found}; the queue may grow to ${mib(queueMaxBytes)} (hub.storeAndForward.maxBytes)`,
      'free space, or lower hub.storeAndForward.maxBytes to what the disk holds',
    );
  return ok(name, found);
}

/** The nearest existing directory at or above `dir` (dataDir may not exist before the first run). */
async function existingAncestor(dir: string): Promise<string> {
  let current = path.resolve(dir);
  for (;;) {
    try {
      await statfs(current);
      return current;
    } catch {
      const parent = path.dirname(current);
      if (parent === current) return current;
      current = parent;
    }
  }
}

/** Measures and judges the space for `dataDir`. */
export async function checkDisk(dataDir: string, queueMaxBytes: number): Promise<CheckResult> {
  try {
    const stats = await statfs(await existingAncestor(dataDir));
    return judgeDisk(
      dataDir,
      { freeBytes: stats.bavail * stats.bsize, totalBytes: stats.blocks * stats.bsize },
      queueMaxBytes,
    );
  } catch (err) {
    return fail('disk space', `cannot measure ${dataDir}: ${errorMessage(err)}`, 'check dataDir');
  }
}
