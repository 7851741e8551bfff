/**
 * How long a status the controller has just written is not written again. Under load the watch
 * that brings the write back into the cache lags by seconds, and a reconcile in between compares
 * against the stale copy and writes the same status again; at 1,000 devices that fed back into
 * five writes per pod and nine per device. After this long a still-different cache is believed.
 */
export const RECENT_WRITE_MS = 10_000;

/** A status write: its comparable signature and when it was made (epoch ms). */
export interface RecentWrite {
  signature: string;
  at: number;
}

/** Whether `signature` is what the last write (if any) wrote, within {@link RECENT_WRITE_MS}. */
export function recentlyWritten(
  last: RecentWrite | undefined,
  signature: string,
  now = Date.now(),
): boolean {
  return last !== undefined && last.signature === signature && now - last.at < RECENT_WRITE_MS;
}
