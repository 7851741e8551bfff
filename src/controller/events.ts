import { randomBytes } from 'node:crypto';
import type { Logger } from '../common/logger.js';
import { Resources, type KubeClient, type KubeObject } from './kube/client.js';
import { kubeTime } from './kube/time.js';

/** The same reason on the same object is recorded at most this often. */
const REPEAT_INTERVAL_MS = 60_000;

/** Writes core/v1 Events for what a user wants to see in `kubectl describe`. */
export class EventRecorder {
  readonly #recent = new Map<string, number>();

  constructor(
    private readonly client: KubeClient,
    private readonly log: Logger,
  ) {}

  record(obj: KubeObject, type: 'Normal' | 'Warning', reason: string, message: string): void {
    const key = `${obj.metadata.uid}/${reason}/${message}`;
    const last = this.#recent.get(key);
    if (last !== undefined && Date.now() - last < REPEAT_INTERVAL_MS) return;
    this.#recent.set(key, Date.now());
    if (this.#recent.size > 10_000) this.#recent.clear();
    const namespace = obj.metadata.namespace ?? 'default';
    const now = kubeTime();
    const event: KubeObject = {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { name: `${obj.metadata.name}.${randomBytes(8).toString('hex')}`, namespace },
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
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
    };
    this.client.create(Resources.events(namespace), event).catch((err: unknown) => {
      this.log.debug({ err, reason }, 'could not record event');
    });
  }
}
