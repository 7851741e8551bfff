/**
 * The production {@link DeviceBackend}: the controller reaches devices through NATS. Desired
 * state and credentials go into KV buckets that every gateway watches; reports come from a
 * bucket the gateways write; presence comes from the gateways' presence subjects; methods and
 * logs are NATS requests answered by whichever gateway holds the device. Nothing here is state a
 * restart would lose: a new leader reads the buckets again.
 */
import { EventEmitter } from 'node:events';
import { PassThrough, type Readable } from 'node:stream';
import { randomUUID } from 'node:crypto';
import {
  DeliverPolicy,
  jetstream,
  jetstreamManager,
  JetStreamApiError,
  type JetStreamClient,
  type JetStreamManager,
} from '@nats-io/jetstream';
import { KvWatchInclude, type KV } from '@nats-io/kv';
import {
  createInbox,
  NoRespondersError,
  TimeoutError,
  RequestError,
  type NatsConnection,
  type Subscription,
} from '@nats-io/transport-node';
import type {
  DesiredMessage,
  LogRequest,
  MethodResponse,
} from '../../common/cloudlink/protocol.js';
import {
  decodeStreamFrame,
  encodeStreamFrame,
  STREAM_KEEPALIVE_MS,
  StreamEndpoint,
  StreamKind,
  type StreamOpen,
} from '../../common/cloudlink/streams.js';
import {
  Buckets,
  deviceKey,
  deviceOfSubject,
  Headers,
  parseDeviceKey,
  Streams,
  Subjects,
  twinKey,
  type CredentialsRecord,
  type PresenceEvent,
  type StoredC2d,
  type StoredTwin,
} from '../../common/cloudplane/layout.js';
import { C2D_MAX_QUEUED, deviceTwinKeys, openBuckets } from '../../common/cloudplane/nats.js';
import { watchBucket, type BucketWatch } from '../../common/cloudplane/watch.js';
import { ErrorCode, KedgeError, errorMessage } from '../../common/errors.js';
import { composeWithin } from '../../common/iothub/twin-patch.js';
import type { Logger } from '../../common/logger.js';
import type {
  C2dSend,
  DeviceBackend,
  DeviceBackendEvents,
  MethodCall,
  StoredTelemetry,
  TelemetryQuery,
} from './device-backend.js';

/** A log request must be accepted by the device's gateway within this. */
const LOG_ACCEPT_TIMEOUT_MS = 5_000;
/** A method's own timeout plus this for the hops between controller, gateway and device. */
const METHOD_TRANSPORT_MS = 5_000;
/**
 * A telemetry read stops waiting for more after this. The read knows the last stored sequence
 * before it starts, so it normally ends on that message long before; this only bounds a read
 * whose last message expired from the stream meanwhile.
 */
const TELEMETRY_FETCH_EXPIRES_MS = 2_000;
/** Messages a telemetry read scans at most; a chattier device's window shows only its newest. */
const TELEMETRY_MAX_SCAN = 5_000;
/** Optimistic-concurrency retries when two desired patches for one twin race. */
const TWIN_PATCH_ATTEMPTS = 5;

export class NatsDeviceBackend extends EventEmitter<DeviceBackendEvents> implements DeviceBackend {
  readonly #nc: NatsConnection;
  readonly #buckets: Record<keyof typeof Buckets, KV>;
  readonly #js: JetStreamClient;
  readonly #jsm: JetStreamManager;
  readonly #log: Logger;
  /** Device key → the session id the latest `connected` or heartbeat named. */
  readonly #sessions = new Map<string, string>();
  /** What was last written per device, so a repeated reconcile writes nothing. */
  readonly #written = new Map<string, string>();
  readonly #subs: Subscription[] = [];
  readonly #watchers: BucketWatch[] = [];

  private constructor(
    nc: NatsConnection,
    buckets: Record<keyof typeof Buckets, KV>,
    jsm: JetStreamManager,
    log: Logger,
  ) {
    super();
    this.#nc = nc;
    this.#buckets = buckets;
    this.#js = jetstream(nc);
    this.#jsm = jsm;
    this.#log = log;
  }

  static async start(nc: NatsConnection, log: Logger): Promise<NatsDeviceBackend> {
    const [buckets, jsm] = await Promise.all([openBuckets(nc), jetstreamManager(nc)]);
    const backend = new NatsDeviceBackend(nc, buckets, jsm, log);
    backend.#listen();
    return backend;
  }

  get connectedDevices(): number {
    return this.#sessions.size;
  }

  isConnected(namespace: string, device: string): boolean {
    return this.#sessions.has(deviceKey(namespace, device));
  }

  async publishDesired(namespace: string, device: string, desired: DesiredMessage): Promise<void> {
    const key = deviceKey(namespace, device);
    const tag = `desired:${desired.version}`;
    if (this.#written.get(`d/${key}`) === tag) return;
    await this.#buckets.desired.put(key, JSON.stringify(desired));
    this.#written.set(`d/${key}`, tag);
  }

  async setCredentials(
    namespace: string,
    device: string,
    record: CredentialsRecord,
  ): Promise<void> {
    const key = deviceKey(namespace, device);
    const tag = JSON.stringify(record);
    if (this.#written.get(`c/${key}`) === tag) return;
    await this.#buckets.credentials.put(key, tag);
    this.#written.set(`c/${key}`, tag);
  }

  async forgetDevice(namespace: string, device: string): Promise<void> {
    const key = deviceKey(namespace, device);
    this.#written.delete(`d/${key}`);
    this.#written.delete(`c/${key}`);
    await Promise.all([
      this.#buckets.credentials.delete(key),
      this.#buckets.desired.delete(key),
      this.#buckets.reported.delete(key),
      this.#jsm.streams.purge(Streams.c2d, { filter: Subjects.c2dOf(namespace, device) }),
      purgeTwins(this.#buckets.twins, namespace, device),
      purgeTwins(this.#buckets.desiredTwins, namespace, device),
    ]);
    await this.disconnect(namespace, device);
  }

  disconnect(namespace: string, device: string): Promise<void> {
    this.#nc.publish(Subjects.disconnect(namespace, device));
    return Promise.resolve();
  }

  streamLogs(namespace: string, device: string, request: Omit<LogRequest, 'id'>): Readable {
    if (!this.isConnected(namespace, device)) throw notConnected(namespace, device);
    const id = randomUUID();
    const inbox = createInbox();
    const stream = new PassThrough();
    const sub = this.#nc.subscribe(inbox, {
      callback: (err, msg) => {
        if (err) return void stream.destroy(err);
        if (msg.headers?.get(Headers.frame) !== 'end') return void stream.write(msg.data);
        sub.unsubscribe();
        const error = msg.headers.get(Headers.error);
        if (error) stream.destroy(new KedgeError(ErrorCode.NotFound, error));
        else stream.end();
      },
    });
    stream.on('close', () => {
      if (sub.isClosed()) return;
      sub.unsubscribe();
      this.#nc.publish(Subjects.request(namespace, device, 'logs-cancel'), JSON.stringify({ id }));
    });
    this.#nc
      .request(
        Subjects.request(namespace, device, 'logs'),
        JSON.stringify({ ...request, id, inbox }),
        { timeout: LOG_ACCEPT_TIMEOUT_MS },
      )
      .catch((err: unknown) => stream.destroy(requestError(err, namespace, device)));
    return stream;
  }

  openSession(namespace: string, device: string, open: StreamOpen): StreamEndpoint {
    if (!this.isConnected(namespace, device)) throw notConnected(namespace, device);
    const id = randomUUID();
    const inbox = createInbox();
    const subject = Subjects.request(namespace, device, 'stream');
    // Frames wait here until the gateway has the session; the window bounds them.
    let queued: Buffer[] | undefined = [];
    const endpoint = new StreamEndpoint(id, (frame) => {
      if (queued) queued.push(frame);
      else this.#nc.publish(subject, frame);
    });
    const sub = this.#nc.subscribe(inbox, {
      callback: (err, msg) => {
        if (err) return endpoint.end({ error: errorMessage(err) }, false);
        const frame = decodeStreamFrame(Buffer.from(msg.data));
        if (frame?.id === id) endpoint.receive(frame);
      },
    });
    const keepalive = setInterval(
      () => endpoint.control(StreamKind.ack, { bytes: 0 }),
      STREAM_KEEPALIVE_MS,
    );
    keepalive.unref();
    endpoint.once('end', () => {
      clearInterval(keepalive);
      setImmediate(() => sub.unsubscribe());
    });
    const frame = encodeStreamFrame(StreamKind.open, id, open).toString('base64');
    this.#nc
      .request(
        Subjects.request(namespace, device, 'stream-open'),
        JSON.stringify({ inbox, frame }),
        {
          timeout: LOG_ACCEPT_TIMEOUT_MS,
        },
      )
      .then((reply) => {
        const answer = reply.json<{ error?: string }>();
        if (answer.error) return endpoint.end({ error: answer.error }, false);
        for (const f of queued ?? []) this.#nc.publish(subject, f);
        queued = undefined;
      })
      .catch((err: unknown) =>
        endpoint.end({ error: requestError(err, namespace, device).message }, false),
      );
    return endpoint;
  }

  async invokeMethod(namespace: string, device: string, call: MethodCall): Promise<MethodResponse> {
    try {
      const reply = await this.#nc.request(
        Subjects.request(namespace, device, 'method'),
        JSON.stringify(call),
        { timeout: call.timeoutSecs * 1000 + METHOD_TRANSPORT_MS },
      );
      const response = reply.json<MethodResponse>();
      if (response.status === 504)
        throw new KedgeError(
          ErrorCode.Timeout,
          `method ${call.method} on ${namespace}/${device}/${call.leaf ?? call.module} timed out after ${call.timeoutSecs} s`,
        );
      return response;
    } catch (err) {
      if (err instanceof KedgeError) throw err;
      throw requestError(err, namespace, device);
    }
  }

  reportedTwin(namespace: string, device: string, module: string): Promise<StoredTwin | undefined> {
    return readTwin(this.#buckets.twins, twinKey(namespace, device, module));
  }

  async forgetTwin(namespace: string, device: string, module: string): Promise<void> {
    const key = twinKey(namespace, device, module);
    await Promise.all([this.#buckets.twins.purge(key), this.#buckets.desiredTwins.purge(key)]);
  }

  desiredTwin(namespace: string, device: string, module: string): Promise<StoredTwin | undefined> {
    return readTwin(this.#buckets.desiredTwins, twinKey(namespace, device, module));
  }

  async patchDesiredTwin(
    namespace: string,
    device: string,
    module: string,
    patch: Record<string, unknown>,
  ): Promise<StoredTwin> {
    const bucket = this.#buckets.desiredTwins;
    const key = twinKey(namespace, device, module);
    for (let attempt = 1; ; attempt++) {
      const entry = await bucket.get(key);
      const current = entry?.operation === 'PUT' ? entry.json<StoredTwin>() : undefined;
      const next: StoredTwin = {
        module,
        version: (current?.version ?? 0) + 1,
        properties: composeWithin(current?.properties ?? {}, patch),
      };
      try {
        if (current && entry) await bucket.update(key, JSON.stringify(next), entry.revision);
        else await bucket.create(key, JSON.stringify(next));
        return next;
      } catch (err) {
        if (attempt >= TWIN_PATCH_ATTEMPTS)
          throw new KedgeError(
            ErrorCode.Unavailable,
            `could not store the desired patch: ${errorMessage(err)}`,
            { cause: err },
          );
      }
    }
  }

  async sendC2D(namespace: string, device: string, message: C2dSend): Promise<void> {
    const stored: StoredC2d = {
      body: message.body.toString('base64'),
      properties: message.properties,
    };
    try {
      await this.#js.publish(
        Subjects.c2d(namespace, device, message.leaf),
        JSON.stringify(stored),
        { ttl: `${message.ttlSecs}s` },
      );
    } catch (err) {
      if (err instanceof JetStreamApiError && /maximum messages per subject/i.test(err.message))
        throw new KedgeError(
          ErrorCode.LimitExceeded,
          `the C2D queue of ${message.leaf} behind ${namespace}/${device} is full (${C2D_MAX_QUEUED} messages)`,
        );
      throw new KedgeError(
        ErrorCode.Unavailable,
        `could not queue the C2D message: ${errorMessage(err)}`,
        { cause: err },
      );
    }
  }

  async close(): Promise<void> {
    this.#subs.forEach((s) => s.unsubscribe());
    this.#watchers.forEach((w) => w.stop());
    return Promise.resolve();
  }

  async recentTelemetry(
    namespace: string,
    device: string,
    query: TelemetryQuery,
  ): Promise<StoredTelemetry[]> {
    const subject = Subjects.telemetry(namespace, device);
    const last = await this.#jsm.streams
      .getMessage(Streams.telemetry, { last_by_subj: subject })
      .catch((err: unknown) => {
        if (/not found/i.test(errorMessage(err))) return null;
        throw err;
      });
    if (!last || last.seq <= (query.afterSeq ?? 0)) return [];
    const windowStartMs = Date.now() - query.windowSecs * 1000;
    // A device silent for longer than the window: nothing to read, and no consumer to wait on.
    if (!query.afterSeq && last.time.getTime() < windowStartMs) return [];
    const consumer = await this.#js.consumers.get(Streams.telemetry, {
      filter_subjects: [subject],
      ...(query.afterSeq
        ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: query.afterSeq + 1 }
        : {
            deliver_policy: DeliverPolicy.StartTime,
            opt_start_time: new Date(windowStartMs).toISOString(),
          }),
    });
    const batch = await consumer.fetch({
      max_messages: TELEMETRY_MAX_SCAN,
      expires: TELEMETRY_FETCH_EXPIRES_MS,
    });
    const found: StoredTelemetry[] = [];
    for await (const m of batch) {
      found.push({ seq: m.seq, storedAt: m.time.toISOString(), message: parseReport(m.string()) });
      if (found.length > query.limit) found.shift();
      if (m.seq >= last.seq || m.info.pending === 0) break;
    }
    return found;
  }

  #listen(): void {
    this.#subs.push(
      this.#nc.subscribe(Subjects.presenceAll, {
        callback: (err, msg) => {
          const target = err ? undefined : deviceOfSubject(msg.subject, 2);
          if (target) this.#presence(target.namespace, target.device, msg.json<PresenceEvent>());
        },
      }),
    );
    this.#subs.push(
      this.#nc.subscribe(Subjects.usageAll, {
        callback: (err, msg) => {
          const target = err ? undefined : deviceOfSubject(msg.subject, 2);
          if (target)
            this.emit('usage', target.namespace, target.device, parseReport(msg.string()));
        },
      }),
    );
    this.#watchers.push(
      watchBucket(this.#nc, this.#buckets.reported, {
        include: KvWatchInclude.LastValue,
        onEntry: (e) => {
          const target = parseDeviceKey(e.key);
          if (!target || e.operation !== 'PUT') return;
          this.emit('reported', target.namespace, target.device, parseReport(e.string()));
        },
        log: this.#log,
      }),
    );
  }

  #presence(namespace: string, device: string, event: PresenceEvent): void {
    const key = deviceKey(namespace, device);
    const known = this.#sessions.get(key);
    if (event.event === 'disconnected') {
      // A late goodbye from a session the device has already replaced means nothing.
      if (known !== event.session) return;
      this.#sessions.delete(key);
      this.emit('disconnected', namespace, device);
      return;
    }
    this.#sessions.set(key, event.session);
    if (event.event === 'connected' || known === undefined)
      this.emit('connected', namespace, device);
    else this.emit('heartbeat', namespace, device);
  }
}

/** Purges every twin of one device from a twin bucket. */
async function purgeTwins(bucket: KV, namespace: string, device: string): Promise<void> {
  const keys = await deviceTwinKeys(bucket, namespace, device);
  await Promise.all(keys.map((k) => bucket.purge(k)));
}

/** One stored twin of a bucket, undefined when there is none. */
async function readTwin(bucket: KV, key: string): Promise<StoredTwin | undefined> {
  const entry = await bucket.get(key);
  return entry?.operation === 'PUT' ? entry.json<StoredTwin>() : undefined;
}

function notConnected(namespace: string, device: string): KedgeError {
  return new KedgeError(ErrorCode.Unavailable, `device ${namespace}/${device} is not connected`);
}

function requestError(err: unknown, namespace: string, device: string): KedgeError {
  const cause = err instanceof RequestError ? (err.cause ?? err) : err;
  if (cause instanceof NoRespondersError || /no responders/i.test(errorMessage(cause)))
    return notConnected(namespace, device);
  if (cause instanceof TimeoutError)
    return new KedgeError(
      ErrorCode.Timeout,
      `device ${namespace}/${device} did not answer in time`,
      { cause },
    );
  return new KedgeError(ErrorCode.Unavailable, errorMessage(cause), { cause });
}

/**
 * A report's or usage sample's JSON, or its text when it is not JSON (the controller's schema
 * check refuses it).
 */
function parseReport(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}
