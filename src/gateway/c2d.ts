/**
 * Cloud-to-device messages for one device session. The gateway that holds the device hands it
 * every message queued for its leaf devices, one at a time and in order, and deletes a message
 * from the stream only once the device says its hub holds it. Messages outlive any session; one
 * that outlives its TTL expires in the stream and is never delivered.
 */
import type { JetStreamManager, MsgRequest, StoredMsg } from '@nats-io/jetstream';
import { Leaf, type C2dAck, type C2dMessage } from '../common/cloudlink/protocol.js';
import { Streams, Subjects, untoken, type StoredC2d } from '../common/cloudplane/layout.js';
import { errorMessage } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import type { CloudIdentity } from './auth.js';
import type { GatewayMetrics } from './metrics.js';

/** How long the device has to acknowledge a message before the gateway tries again. */
const ACK_TIMEOUT_MS = 30_000;
/** Wait before reading the stream again after a failure (JetStream failing over, a lost ack). */
const RETRY_MS = 2_000;

type Waiting = { id: string; resolve: (ack: C2dAck) => void; timer: NodeJS.Timeout };

export class SessionC2d {
  #draining = false;
  #again = false;
  #stopped = false;
  #retry: NodeJS.Timeout | undefined;
  #waiting: Waiting | undefined;

  private readonly jsm: JetStreamManager;
  private readonly who: CloudIdentity;
  private readonly toDevice: (leaf: string, body: C2dMessage) => Promise<void>;
  private readonly metrics: GatewayMetrics;
  private readonly log: Logger;

  constructor(deps: {
    jsm: JetStreamManager;
    who: CloudIdentity;
    toDevice: (leaf: string, body: C2dMessage) => Promise<void>;
    metrics: GatewayMetrics;
    log: Logger;
  }) {
    ({
      jsm: this.jsm,
      who: this.who,
      toDevice: this.toDevice,
      metrics: this.metrics,
      log: this.log,
    } = deps);
  }

  /** Delivers what is queued; {@link kick} brings what arrives later. */
  start(): void {
    this.#kick();
  }

  /** A message arrived for this device: read the stream (again). */
  kick(): void {
    this.#kick();
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#retry);
    if (this.#waiting) {
      clearTimeout(this.#waiting.timer);
      this.#waiting.resolve({ error: 'device disconnected' });
    }
  }

  /** Routes the device's `c2d/ack/{id}`; false when it acknowledges nothing this session sent. */
  acknowledged(id: string, payload: Buffer): boolean {
    const waiting = this.#waiting;
    if (!waiting || waiting.id !== id) return false;
    clearTimeout(waiting.timer);
    this.#waiting = undefined;
    waiting.resolve(parseAck(payload));
    return true;
  }

  #kick(): void {
    if (this.#stopped) return;
    if (this.#draining) {
      this.#again = true;
      return;
    }
    void this.#drain();
  }

  async #drain(): Promise<void> {
    this.#draining = true;
    try {
      do {
        this.#again = false;
        for (let m = await this.#next(0); m && !this.#stopped; m = await this.#next(m.seq + 1))
          await this.#deliver(m);
      } while (this.#again && !this.#stopped);
    } catch (err) {
      if (this.#stopped) return;
      this.log.info(
        { device: `${this.who.namespace}/${this.who.device}`, reason: errorMessage(err) },
        'C2D delivery interrupted; retrying',
      );
      this.#retry = setTimeout(() => this.#kick(), RETRY_MS);
    } finally {
      this.#draining = false;
    }
  }

  /** The first message for this device at or after `seq`, read from the stream's leader. */
  #next(seq: number): Promise<StoredMsg | null> {
    // The server's MSG.GET takes `next_by_subj` (a wildcard too); the client types it for direct
    // gets only, which followers answer and could answer with a message already deleted.
    const query = {
      next_by_subj: Subjects.c2dOf(this.who.namespace, this.who.device),
      seq,
    } as unknown as MsgRequest;
    return this.jsm.streams.getMessage(Streams.c2d, query);
  }

  async #deliver(m: StoredMsg): Promise<void> {
    const stored = m.json<StoredC2d>();
    const id = String(m.seq);
    const message: C2dMessage = {
      id,
      deviceId: untoken(m.subject.slice(m.subject.lastIndexOf('.') + 1)),
      body: stored.body,
      properties: stored.properties,
    };
    const acked = new Promise<C2dAck>((resolve) => {
      const timer = setTimeout(() => {
        this.#waiting = undefined;
        resolve({ error: 'no acknowledgement' });
      }, ACK_TIMEOUT_MS);
      this.#waiting = { id, resolve, timer };
    });
    await this.toDevice(Leaf.c2d, message);
    const ack = await acked;
    if (this.#stopped || ack.retry || ack.error === 'no acknowledgement')
      throw new Error(ack.error ?? 'session ended');
    await this.jsm.streams.deleteMessage(Streams.c2d, m.seq, false);
    if (ack.error) {
      this.metrics.c2d.inc({ outcome: 'rejected' });
      this.log.warn(
        {
          device: `${this.who.namespace}/${this.who.device}`,
          leaf: message.deviceId,
          reason: ack.error,
        },
        'the device refused a C2D message; dropped',
      );
    } else this.metrics.c2d.inc({ outcome: 'delivered' });
  }
}

function parseAck(payload: Buffer): C2dAck {
  try {
    const ack = JSON.parse(payload.toString('utf8')) as unknown;
    return typeof ack === 'object' && ack !== null ? ack : {};
  } catch {
    return { error: 'unreadable acknowledgement', retry: true };
  }
}
