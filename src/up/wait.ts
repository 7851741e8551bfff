import { setTimeout as sleep } from 'node:timers/promises';
import { ErrorCode, KedgeError } from '../common/errors.js';

const POLL_MS = 1000;

/**
 * Polls `check` until it returns a value; a check that throws counts as "not yet" (the API server
 * or device may be briefly away). Times out with an error naming what was awaited.
 */
export async function waitFor<T>(
  what: string,
  timeoutMs: number,
  check: () => Promise<T | undefined>,
  signal?: AbortSignal,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError = '';
  while (Date.now() < deadline) {
    if (signal?.aborted) throw new KedgeError(ErrorCode.Unavailable, `stopped waiting for ${what}`);
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      lastError = err instanceof Error ? `; last error: ${err.message}` : '';
    }
    await sleep(POLL_MS);
  }
  throw new KedgeError(
    ErrorCode.Timeout,
    `timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}${lastError}`,
  );
}
