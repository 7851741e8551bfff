/**
 * What a gateway does with a device's messages before it acknowledges them: telemetry into the
 * telemetry stream (the device's PUBACK waits for JetStream's PubAck), reports and reported
 * twins into their buckets. A message the cloud can never store is dead-lettered and counted, so
 * it never blocks the device's queue.
 */
import { JetStreamApiError, type JetStreamClient } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import { headers, InvalidArgumentError } from '@nats-io/transport-node';
import type {
  TelemetryMessage,
  TwinReportedMessage,
  UpstreamMessage,
} from '../common/cloudlink/protocol.js';
import {
  deviceKey,
  Headers,
  leafTwinModule,
  Subjects,
  twinKey,
  type StoredTwin,
} from '../common/cloudplane/layout.js';
import { ErrorCode, KedgeError, errorMessage } from '../common/errors.js';
import { MAX_TWIN_SECTION_BYTES, mergePatch } from '../common/iothub/twin-patch.js';
import type { Logger } from '../common/logger.js';

import type { CloudIdentity } from './auth.js';
import type { GatewayMetrics } from './metrics.js';

/** JetStream: "message size exceeds maximum allowed". */
const JS_MESSAGE_TOO_LARGE = 10054;
/** A device report (modules and facts) larger than this is refused. */
const MAX_REPORT_BYTES = 256 * 1024;
/** A dead letter keeps at most this much of the refused message. */
const MAX_DEAD_LETTER_BYTES = 64 * 1024;
/** Optimistic-concurrency retries when two reported patches for one twin race. */
const TWIN_MERGE_ATTEMPTS = 5;

export class DeviceIo {
  constructor(
    private readonly js: JetStreamClient,
    private readonly buckets: { reported: KV; twins: KV },
    private readonly metrics: GatewayMetrics,
    private readonly log: Logger,
  ) {}

  /** Stores every message of a batch; resolves once each is stored or dead-lettered. */
  async storeTelemetry(who: CloudIdentity, payload: Buffer): Promise<void> {
    let batch: TelemetryMessage;
    try {
      batch = parseBatch(payload);
    } catch (err) {
      return this.#deadLetter(who, payload, `unreadable batch: ${errorMessage(err)}`);
    }
    await Promise.all(batch.messages.map((m) => this.#storeOne(who, m)));
  }

  async #storeOne(who: CloudIdentity, message: UpstreamMessage & { seq?: number }): Promise<void> {
    const data = Buffer.from(JSON.stringify(message));
    // The queue's seq plus its enqueue time: a re-sent copy repeats both, while a device whose
    // queue started over (new data directory) never repeats the pair.
    const msgID =
      message.seq === undefined
        ? undefined
        : `${deviceKey(who.namespace, who.device)}.${message.seq}.${message.enqueuedAt}`;
    try {
      await this.js.publish(Subjects.telemetry(who.namespace, who.device), data, { msgID });
      this.metrics.telemetryStored.inc();
    } catch (err) {
      if (!isPermanent(err)) throw err;
      await this.#deadLetter(who, data, errorMessage(err));
    }
  }

  async #deadLetter(who: CloudIdentity, data: Buffer, reason: string): Promise<void> {
    const h = headers();
    h.set(Headers.deadLetterReason, reason.slice(0, 256));
    await this.js.publish(
      Subjects.deadLetter(who.namespace, who.device),
      data.subarray(0, MAX_DEAD_LETTER_BYTES),
      { headers: h },
    );
    this.metrics.deadLetters.inc();
    this.log.warn(
      { device: `${who.namespace}/${who.device}`, bytes: data.length, reason },
      'telemetry dead-lettered',
    );
  }

  /** Keeps the device's latest report for the controller. */
  async storeReport(who: CloudIdentity, payload: Buffer): Promise<void> {
    if (payload.length > MAX_REPORT_BYTES)
      throw new KedgeError(ErrorCode.LimitExceeded, `report of ${payload.length} bytes refused`);
    await this.buckets.reported.put(deviceKey(who.namespace, who.device), payload);
  }

  /** Merges a reported patch into the module's twin (JSON merge patch, as IoT Hub). */
  async mergeReportedTwin(who: CloudIdentity, payload: Buffer): Promise<void> {
    const message = JSON.parse(payload.toString('utf8')) as TwinReportedMessage;
    const module = message.leaf ? leafTwinModule(message.leaf) : message.module;
    const key = twinKey(who.namespace, who.device, module);
    for (let attempt = 1; ; attempt++) {
      const entry = await this.buckets.twins.get(key);
      const current: StoredTwin =
        entry?.operation === 'PUT'
          ? entry.json<StoredTwin>()
          : { module, version: 0, properties: {} };
      const next: StoredTwin = {
        module,
        version: current.version + 1,
        properties: mergePatch(current.properties, message.patch),
      };
      const data = JSON.stringify(next);
      if (data.length > MAX_TWIN_SECTION_BYTES) {
        this.metrics.denied.inc({ what: 'twin_too_large' });
        this.log.warn(
          { key, bytes: data.length },
          'reported twin over the size limit, patch dropped',
        );
        return;
      }
      try {
        if (entry) await this.buckets.twins.update(key, data, entry.revision);
        else await this.buckets.twins.create(key, data);
        return;
      } catch (err) {
        if (attempt >= TWIN_MERGE_ATTEMPTS) throw err;
      }
    }
  }
}

function parseBatch(payload: Buffer): TelemetryMessage {
  const batch = JSON.parse(payload.toString('utf8')) as TelemetryMessage;
  if (!batch || !Array.isArray(batch.messages)) throw new Error('no messages array');
  return batch;
}

function isPermanent(err: unknown): boolean {
  return (
    (err instanceof JetStreamApiError && err.code === JS_MESSAGE_TOO_LARGE) ||
    err instanceof InvalidArgumentError
  );
}
