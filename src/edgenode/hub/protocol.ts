/**
 * IoT Hub protocol handling on top of aedes. Every client PUBLISH passes through
 * {@link Protocol.authorizePublish}: it enforces limits and the identity's topic space, then
 * handles telemetry (routing; for `$upstream` the callback — and so the PUBACK — waits for the
 * durable commit), twin GET/PATCH and direct-method answers. See ADR 0004 and 0005.
 */
import type { Aedes, Client, PublishPacket } from 'aedes';
import { ErrorCode, KedgeError, errorMessage } from '../../common/errors.js';
import {
  desiredPatchTopic,
  inputTopic,
  parseInboundTopic,
  SYSTEM_PROPERTY_BY_WIRE_KEY,
  twinResponseTopic,
  type InboundTopic,
  type PropertyBag,
} from '../../common/iothub/index.js';
import type { Logger } from '../../common/logger.js';
import type { RoutableMessage } from '../../common/routes/index.js';
import type { Identity } from './identities.js';
import type { HubMetrics, DropReason } from './metrics.js';
import type { MethodCalls } from './methods.js';
import type { HubLimits } from './options.js';
import type { DurableQueue } from './queue/durable-queue.js';
import type { Router, RouteTarget } from './router.js';
import { StaleVersionError, type TwinStore } from './twins.js';
import type { QueueHeader } from './upstream/forwarder.js';

/** Everything the protocol handler needs; owned by the Hub. */
export interface ProtocolDeps {
  /** The edge device id (module input topics are under it). */
  deviceId: string;
  broker: Aedes;
  router: Router;
  queue: DurableQueue;
  twins: TwinStore;
  methods: MethodCalls;
  metrics: HubMetrics;
  log: Logger;
  limits: HubLimits;
  /** Store-and-forward default TTL (seconds). */
  defaultTtlSecs: () => number;
  identityOf: (client: Client) => Identity | undefined;
  /** Whether a client id (`d/m` for a module) has a live connection. */
  isConnected: (clientId: string) => boolean;
}

/**
 * The topic a handled client PUBLISH continues under when nothing is delivered in its place.
 * aedes forwards every authorized publish; `$` topics match no wildcard and no identity may
 * subscribe here, so the message goes nowhere.
 */
export const HANDLED_TOPIC = '$kedge/handled';

/** Client-supplied keys the hub sets itself on delivery. */
const HUB_OWNED_KEYS = new Set(['$.cdid', '$.cmid', '$.on']);

type Telemetry = Extract<InboundTopic, { kind: 'telemetry' }>;

/** What handling a publish gives: the topic to forward it under, now or once durable. */
type Dispatched = string | undefined | Promise<string | undefined>;

function refusal(reason: DropReason, message: string): KedgeError {
  const err = new KedgeError(ErrorCode.LimitExceeded, message);
  (err as KedgeError & { reason?: DropReason }).reason = reason;
  return err;
}

function toRoutable(identity: Identity, props: PropertyBag, body: Buffer): RoutableMessage {
  const app = new Map<string, string>();
  const sys = new Map<string, string>();
  for (const [k, v] of props) {
    const name = SYSTEM_PROPERTY_BY_WIRE_KEY.get(k);
    if (name !== undefined) sys.set(name, v);
    else if (!k.startsWith('$.')) app.set(k, v);
  }
  // The connection identity is authoritative; a client cannot claim another one.
  sys.set('connectionDeviceId', identity.deviceId);
  if (identity.moduleId !== undefined) sys.set('connectionModuleId', identity.moduleId);
  else sys.delete('connectionModuleId');
  return { body, appProperties: app, systemProperties: sys };
}

function messageSource(identity: Identity, props: PropertyBag): string {
  if (identity.moduleId === undefined) return '/messages';
  const output = props.get('$.on');
  return output
    ? `/messages/modules/${identity.moduleId}/outputs/${output}`
    : `/messages/modules/${identity.moduleId}`;
}

export class Protocol {
  readonly #d: ProtocolDeps;

  constructor(deps: ProtocolDeps) {
    this.#d = deps;
  }

  /** aedes `authorizePublish`: the single entry for everything clients send. */
  authorizePublish(
    client: Client | null,
    packet: PublishPacket,
    done: (err?: Error | null) => void,
  ): void {
    const identity = client ? this.#d.identityOf(client) : undefined;
    if (!client || !identity) {
      done(new KedgeError(ErrorCode.Unauthorized, 'not authenticated'));
      return;
    }
    const payload = packet.payload as Buffer;
    const limitError = this.#checkLimits(packet.topic, payload);
    if (limitError) {
      this.#refuse(identity, limitError.reason, limitError.message);
      done(limitError);
      return;
    }
    const accept = (forward: string | undefined): void => {
      // aedes publishes the authorized packet itself: it carries the first module-input
      // delivery, so a routed message costs one broker publish, not two. Inputs are QoS1,
      // so a QoS0 publish is delivered as a new message instead.
      if (forward !== undefined && packet.qos === 0) {
        this.#publishToInput(forward, payload);
        forward = undefined;
      }
      packet.topic = forward ?? HANDLED_TOPIC;
      packet.retain = false;
      done(null);
    };
    const refuse = (err: unknown): void => {
      const e = err as KedgeError & { reason?: DropReason };
      this.#refuse(identity, e.reason ?? 'acl', e.message);
      done(e);
    };
    let outcome: Dispatched;
    try {
      outcome = this.#dispatch(client, identity, parseInboundTopic(packet.topic), payload);
    } catch (err) {
      refuse(err);
      return;
    }
    // Module-to-module messages complete synchronously; only durable writes wait.
    if (outcome instanceof Promise) outcome.then(accept, refuse);
    else accept(outcome);
  }

  #checkLimits(topic: string, payload: Buffer): (KedgeError & { reason: DropReason }) | undefined {
    const { maxMessageBytes, maxTopicLength } = this.#d.limits;
    if (payload.length > maxMessageBytes)
      return refusal(
        'too_large',
        `message of ${payload.length} bytes exceeds ${maxMessageBytes}`,
      ) as KedgeError & { reason: DropReason };
    if (topic.length > maxTopicLength)
      return refusal('topic_too_long', `topic longer than ${maxTopicLength}`) as KedgeError & {
        reason: DropReason;
      };
    return undefined;
  }

  #refuse(identity: Identity, reason: DropReason, message: string): void {
    if (reason === 'acl') this.#d.metrics.aclDenials.inc({ action: 'publish' });
    else this.#d.metrics.dropped.inc({ reason });
    this.#d.log.warn({ client: identity.id, reason }, `publish refused: ${message}`);
  }

  /** Handles one client publish; gives the topic aedes should forward it under, if any. */
  #dispatch(client: Client, identity: Identity, topic: InboundTopic, payload: Buffer): Dispatched {
    switch (topic.kind) {
      case 'telemetry':
        return this.#telemetry(identity, topic, payload);
      case 'twinGet':
        this.#reply(
          client,
          twinResponseTopic(200, topic.requestId),
          JSON.stringify(this.#d.twins.document(identity.id)),
        );
        return undefined;
      case 'twinPatchReported':
        return this.#reported(client, identity, topic, payload).then(() => undefined);
      case 'methodResponse':
        this.#d.methods.complete(client.id, topic.requestId, topic.status, payload);
        return undefined;
      default:
        throw new KedgeError(ErrorCode.Unauthorized, 'topic outside the identity topic space');
    }
  }

  #telemetry(identity: Identity, topic: Telemetry, body: Buffer): Dispatched {
    if (topic.deviceId !== identity.deviceId || topic.moduleId !== identity.moduleId)
      throw new KedgeError(ErrorCode.Unauthorized, 'telemetry for another identity');
    if (topic.properties.size > this.#d.limits.maxProperties)
      throw refusal('too_many_properties', `more than ${this.#d.limits.maxProperties} properties`);
    this.#d.metrics.messagesIn.inc({ kind: identity.kind });
    const source = messageSource(identity, topic.properties);
    const targets = this.#d.router.route(source, toRoutable(identity, topic.properties, body));
    if (targets.length === 0) {
      this.#d.metrics.dropped.inc({ reason: 'no_route' });
      return undefined;
    }
    const durable: Promise<void>[] = [];
    let forward: string | undefined;
    for (const t of targets) {
      this.#d.metrics.messagesRouted.inc({ route: t.route, endpoint: t.endpoint });
      if (t.sink.type !== 'brokered') {
        durable.push(this.#enqueueUpstream(identity, topic.properties, body, t));
        continue;
      }
      const input = this.#inputTopic(identity, topic.properties, t.sink);
      if (!this.#d.isConnected(`${this.#d.deviceId}/${t.sink.moduleId}`)) {
        // A stopped module's session journals it; the sender's PUBACK waits for that commit.
        durable.push(this.#publishToStoppedInput(input, body));
      } else if (forward === undefined) forward = input;
      else this.#publishToInput(input, body);
    }
    if (durable.length === 0) return forward;
    return Promise.all(durable).then(() => forward);
  }

  #inputTopic(
    identity: Identity,
    props: PropertyBag,
    sink: Extract<RouteTarget['sink'], { type: 'brokered' }>,
  ): string {
    const bag: [string, string][] = [['$.cdid', identity.deviceId]];
    if (identity.moduleId !== undefined) bag.push(['$.cmid', identity.moduleId]);
    for (const [k, v] of props) if (!HUB_OWNED_KEYS.has(k)) bag.push([k, v]);
    return inputTopic(this.#d.deviceId, sink.moduleId, sink.inputName, bag);
  }

  #publishToInput(topic: string, body: Buffer): void {
    this.#d.broker.publish(
      { cmd: 'publish', topic, payload: body, qos: 1, retain: false, dup: false },
      (err) => {
        if (err) this.#d.log.warn({ err: err.message, topic }, 'input delivery failed');
      },
    );
  }

  #publishToStoppedInput(topic: string, body: Buffer): Promise<void> {
    return new Promise((resolve, reject) =>
      this.#d.broker.publish(
        { cmd: 'publish', topic, payload: body, qos: 1, retain: false, dup: false },
        (err) => (err ? reject(err) : resolve()),
      ),
    );
  }

  #enqueueUpstream(
    identity: Identity,
    props: PropertyBag,
    body: Buffer,
    t: RouteTarget,
  ): Promise<void> {
    const ttlSecs = t.timeToLiveSecs > 0 ? t.timeToLiveSecs : this.#d.defaultTtlSecs();
    const properties: [string, string][] = [['$.cdid', identity.deviceId]];
    if (identity.moduleId !== undefined) properties.push(['$.cmid', identity.moduleId]);
    for (const [k, v] of props) if (!HUB_OWNED_KEYS.has(k) || k === '$.on') properties.push([k, v]);
    const header: QueueHeader = { kind: 'telemetry', deviceId: identity.deviceId, properties };
    if (identity.moduleId !== undefined) header.moduleId = identity.moduleId;
    return this.#d.queue
      .enqueue([
        {
          priority: t.priority,
          expiresAtMs: Date.now() + ttlSecs * 1000,
          header: JSON.stringify(header),
          body,
        },
      ])
      .catch((err: unknown) => {
        if (err instanceof KedgeError && err.code === ErrorCode.LimitExceeded)
          throw refusal('queue_full', 'upstream queue is full');
        throw err;
      });
  }

  async #reported(
    client: Client,
    identity: Identity,
    topic: { requestId: string; version?: string },
    payload: Buffer,
  ): Promise<void> {
    const requestId = topic.requestId;
    let version: number;
    try {
      const ifVersion = topic.version === undefined ? undefined : Number(topic.version);
      if (ifVersion !== undefined && !Number.isSafeInteger(ifVersion))
        throw new KedgeError(ErrorCode.InvalidInput, `$version ${topic.version} is not a number`);
      const patch = JSON.parse(payload.toString('utf8')) as unknown;
      version = this.#d.twins.patchReported(identity.id, patch, ifVersion);
    } catch (err) {
      const status = err instanceof StaleVersionError ? 412 : 400;
      const body = { errorCode: status, message: errorMessage(err) };
      this.#reply(client, twinResponseTopic(status, requestId), JSON.stringify(body));
      return;
    }
    const header: QueueHeader = {
      kind: 'reportedProperties',
      deviceId: identity.deviceId,
      properties: [['$version', String(version)]],
    };
    if (identity.moduleId !== undefined) header.moduleId = identity.moduleId;
    const expiresAtMs = Date.now() + this.#d.defaultTtlSecs() * 1000;
    // Reported properties have the top priority upstream; answered once durable.
    await this.#d.queue.enqueue([
      { priority: 0, expiresAtMs, header: JSON.stringify(header), body: payload },
    ]);
    this.#reply(client, twinResponseTopic(204, requestId, version), '');
  }

  /** Sends a desired patch (with `$version`) to a connected client. */
  sendDesiredPatch(client: Client, patch: Record<string, unknown>): void {
    this.#reply(client, desiredPatchTopic(patch.$version as number), JSON.stringify(patch));
  }

  #reply(client: Client, topic: string, payload: string): void {
    client.publish(
      { cmd: 'publish', topic, payload: Buffer.from(payload), qos: 0, retain: false, dup: false },
      () => undefined,
    );
  }
}
