import { randomBytes } from 'node:crypto';
import { errorMessage } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import { Resources, type KubeClient, type KubeObject } from './kube/client.js';
import { kubeTime } from './kube/time.js';

/** An event repeated within this window raises the first one's count instead of adding one. */
const AGGREGATE_WINDOW_MS = 10 * 60_000;
/** Per object, as the kubelet's spam filter: a burst of 25 events, then one per 5 minutes. */
const OBJECT_BURST = 25;
const OBJECT_REFILL_MS = 5 * 60_000;
/** Event writes share the API server with everything else: at most 20/s, bursts of 100. */
const WRITES_PER_SEC = 20;
const WRITE_BURST = 100;
/** Writes waiting beyond this are dropped (events are best effort, as in Kubernetes). */
const MAX_PENDING = 1_000;
/** Aggregates and buckets kept at most; older ones are forgotten first. */
const MAX_TRACKED = 10_000;

export type EventType = 'Normal' | 'Warning';

/** The object an Event is about. */
export type EventSubject = Pick<KubeObject, 'apiVersion' | 'kind' | 'metadata'>;

interface Aggregate {
  name: string;
  namespace: string;
  event: KubeObject;
  count: number;
  firstAt: number;
  lastAt: number;
  /** Whether the event exists on the server yet. */
  created: boolean;
  /** Whether a write for it is waiting in the queue. */
  queued: boolean;
}

/** A token bucket: `take()` is false while empty. */
class Bucket {
  #tokens: number;
  #at = Date.now();

  constructor(
    private readonly burst: number,
    private readonly refillMs: number,
  ) {
    this.#tokens = burst;
  }

  take(now = Date.now()): boolean {
    this.#tokens = Math.min(this.burst, this.#tokens + (now - this.#at) / this.refillMs);
    this.#at = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  /** Milliseconds until a token is there. */
  waitMs(): number {
    return this.#tokens >= 1 ? 0 : Math.ceil((1 - this.#tokens) * this.refillMs);
  }
}

/**
 * Writes core/v1 Events for what a user wants to see in `kubectl describe` and `kubectl get
 * events`, the way the kubelet does: a repeat of the same event on the same object within 10
 * minutes raises its `count` and `lastTimestamp`; each object gets at most a burst of 25 events
 * and then one per 5 minutes; and all writes together stay within a small budget of the API
 * server. Events past these limits are dropped and counted, never queued without bound.
 */
export class EventRecorder {
  readonly #aggregates = new Map<string, Aggregate>();
  readonly #objects = new Map<string, Bucket>();
  readonly #writes = new Bucket(WRITE_BURST, 1000 / WRITES_PER_SEC);
  readonly #pending: string[] = [];
  #timer: NodeJS.Timeout | undefined;
  #lastFailureLogAt = 0;

  /** `dropped` counts events over the per-object limit or beyond a full write queue. */
  constructor(
    private readonly client: KubeClient,
    private readonly log: Logger,
    private readonly dropped: { inc(): void } = { inc: () => undefined },
  ) {}

  record(obj: EventSubject, type: EventType, reason: string, message: string): void {
    const now = Date.now();
    const uid = obj.metadata.uid ?? `${obj.metadata.namespace}/${obj.metadata.name}`;
    const key = `${uid}\u0000${type}\u0000${reason}\u0000${message}`;
    const known = this.#aggregates.get(key);
    if (known && now - known.lastAt < AGGREGATE_WINDOW_MS) {
      known.count += 1;
      known.lastAt = now;
      this.#enqueue(key, known);
      return;
    }
    if (!this.#objectBucket(uid).take(now)) {
      this.dropped.inc();
      return;
    }
    const namespace = obj.metadata.namespace ?? 'default';
    const aggregate: Aggregate = {
      name: `${obj.metadata.name}.${randomBytes(8).toString('hex')}`,
      namespace,
      event: eventFor(obj, namespace, { type, reason, message }),
      count: 1,
      firstAt: now,
      lastAt: now,
      created: false,
      queued: false,
    };
    this.#aggregates.delete(key);
    this.#aggregates.set(key, aggregate);
    this.#trim(this.#aggregates);
    this.#enqueue(key, aggregate);
  }

  /** Stops the writer; pending writes are dropped. */
  close(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#pending.length = 0;
  }

  #objectBucket(uid: string): Bucket {
    let bucket = this.#objects.get(uid);
    if (!bucket) {
      bucket = new Bucket(OBJECT_BURST, OBJECT_REFILL_MS);
      this.#objects.set(uid, bucket);
      this.#trim(this.#objects);
    }
    return bucket;
  }

  #enqueue(key: string, aggregate: Aggregate): void {
    if (aggregate.queued) return;
    if (this.#pending.length >= MAX_PENDING) {
      this.dropped.inc();
      return;
    }
    aggregate.queued = true;
    this.#pending.push(key);
    this.#schedule();
  }

  #schedule(): void {
    if (this.#timer || this.#pending.length === 0) return;
    this.#timer = setTimeout(() => this.#drain(), this.#writes.waitMs());
    this.#timer.unref();
  }

  #drain(): void {
    this.#timer = undefined;
    while (this.#pending.length > 0 && this.#writes.take()) {
      const key = this.#pending.shift()!;
      const aggregate = this.#aggregates.get(key);
      if (!aggregate) continue;
      aggregate.queued = false;
      void this.#write(aggregate);
    }
    this.#schedule();
  }

  async #write(a: Aggregate): Promise<void> {
    const ref = Resources.events(a.namespace);
    const times = { count: a.count, lastTimestamp: kubeTime(new Date(a.lastAt)) };
    try {
      if (a.created) {
        await this.client.patch(ref, a.name, times);
        return;
      }
      a.created = true;
      const first = kubeTime(new Date(a.firstAt));
      const metadata = { ...a.event.metadata, name: a.name };
      await this.client.create(ref, { ...a.event, metadata, firstTimestamp: first, ...times });
    } catch (err) {
      // Said once a minute at most: a missing permission would fail every write.
      const quiet = Date.now() - this.#lastFailureLogAt < 60_000;
      if (!quiet) this.#lastFailureLogAt = Date.now();
      this.log[quiet ? 'debug' : 'warn'](
        { reason: a.event.reason, err: errorMessage(err) },
        'could not record an Event',
      );
    }
  }

  #trim(map: Map<string, unknown>): void {
    if (map.size <= MAX_TRACKED) return;
    // Maps keep insertion order: the first keys are the oldest.
    for (const key of map.keys()) {
      map.delete(key);
      if (map.size <= MAX_TRACKED * 0.9) break;
    }
  }
}

function eventFor(
  obj: EventSubject,
  namespace: string,
  { type, reason, message }: { type: EventType; reason: string; message: string },
): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Event',
    metadata: { name: '', namespace },
    involvedObject: {
      apiVersion: obj.apiVersion,
      kind: obj.kind,
      name: obj.metadata.name,
      namespace: obj.metadata.namespace,
      uid: obj.metadata.uid,
      resourceVersion: obj.metadata.resourceVersion,
    },
    type,
    reason,
    message,
    source: { component: 'kedge-controller' },
    reportingComponent: 'kedge.io/controller',
  };
}
