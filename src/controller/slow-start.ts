/** First batch of {@link slowStartBatch}: one call, so a systematic failure costs one request. */
export const SLOW_START_INITIAL_BATCH = 1;
/**
 * Largest batch of {@link slowStartBatch}: enough writes in flight to hide API latency, few
 * enough not to flood a small API server or open hundreds of connections.
 */
export const SLOW_START_MAX_BATCH = 16;

/**
 * Runs `call` over `items` in batches that double in size (1, 2, 4, … up to `maxBatch`), the way
 * Kubernetes' ReplicaSet controller creates pods: calls within a batch run in parallel, and the
 * first batch with a failure stops the rest, so a quota or admission error costs one request
 * rather than thousands. Returns how many calls succeeded; rethrows the batch's first error.
 */
export async function slowStartBatch<T>(
  items: readonly T[],
  call: (item: T) => Promise<void>,
  maxBatch = SLOW_START_MAX_BATCH,
): Promise<number> {
  let done = 0;
  let batch = SLOW_START_INITIAL_BATCH;
  while (done < items.length) {
    const slice = items.slice(done, done + batch);
    const results = await Promise.allSettled(slice.map(call));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    done += results.filter((r) => r.status === 'fulfilled').length;
    if (failed) throw failed.reason;
    batch = Math.min(batch * 2, maxBatch);
  }
  return done;
}
