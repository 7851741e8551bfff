/**
 * A KV watch that outlives NATS faults. A bucket watch is an ephemeral consumer: when the server
 * holding it dies, or the client reconnects elsewhere, it can end or go quiet. This one starts
 * again after every end and every reconnect, resuming after the last revision it delivered, so
 * no update is missed and none is delivered twice.
 */
import { KvWatchInclude, type KV, type KvEntry } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { errorMessage } from '../errors.js';
import type { Logger } from '../logger.js';

/** Pause before a watch that ended is started again. */
const RESTART_DELAY_MS = 500;
/**
 * How often the bucket's last revision is compared with the watch's: a watch whose consumer lived
 * on a server that died can stay open and quiet, and is started again when it falls behind.
 */
const STALL_CHECK_MS = 5_000;

/** A running {@link watchBucket}. */
export interface BucketWatch {
  stop(): void;
}

/** Watches every key of `kv`: first what `include` asks for, then every update, for good. */
export function watchBucket(
  nc: NatsConnection,
  kv: KV,
  watch: { include: KvWatchInclude; onEntry: (entry: KvEntry) => void; log: Logger },
): BucketWatch {
  const { include, onEntry, log } = watch;
  let stopped = false;
  let lastRevision = 0;
  let behindSince = 0;
  let current: { stop(): void } | undefined;
  const run = async (): Promise<void> => {
    if (include === KvWatchInclude.UpdatesOnly) lastRevision = await lastSeq(kv).catch(() => 0);
    while (!stopped) {
      try {
        const iter = await kv.watch(
          lastRevision > 0 ? { resumeFromRevision: lastRevision + 1 } : { include },
        );
        current = iter;
        for await (const entry of iter) {
          lastRevision = entry.revision;
          onEntry(entry);
        }
      } catch (err) {
        if (!stopped) log.warn({ reason: errorMessage(err) }, 'bucket watch failed; restarting');
      }
      if (!stopped) await new Promise((r) => setTimeout(r, RESTART_DELAY_MS));
    }
  };
  void run();
  const stall = setInterval(() => {
    void lastSeq(kv)
      .then((last) => {
        if (last <= lastRevision) return void (behindSince = 0);
        if (!behindSince) return void (behindSince = Date.now());
        if (Date.now() - behindSince < STALL_CHECK_MS) return;
        behindSince = 0;
        log.info({ last, lastRevision }, 'bucket watch fell behind; restarting');
        current?.stop();
      })
      .catch(() => undefined);
  }, STALL_CHECK_MS);
  void (async () => {
    for await (const s of nc.status()) {
      if (stopped) return;
      if (s.type === 'reconnect') current?.stop();
    }
  })();
  return {
    stop: () => {
      stopped = true;
      clearInterval(stall);
      current?.stop();
    },
  };
}

/** The bucket's last revision (its stream's last sequence). */
async function lastSeq(kv: KV): Promise<number> {
  return (await kv.status()).streamInfo.state.last_seq;
}
