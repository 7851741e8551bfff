import type { MqttClient } from 'mqtt';
import {
  Leaf,
  type C2dAck,
  type C2dMessage,
  type MethodRequest,
  type MethodResponse,
  type TwinDesiredMessage,
  type TwinReportedMessage,
  type UpstreamMessage as WireMessage,
} from '../../common/cloudlink/protocol.js';
import { ErrorCode, KedgeError, errorMessage, isKedgeError } from '../../common/errors.js';
import type { Logger } from '../../common/logger.js';
import { isJsonObject } from '../../common/iothub/twin-patch.js';
import {
  UpstreamBase,
  type DownstreamHandlers,
  type SendResult,
  type Target,
  type UpstreamMessage,
} from '../hub/upstream/upstream.js';

/** The hub's upstream over the cloud link: telemetry and reported properties go to the cloud hub. */
export class CloudUpstream extends UpstreamBase {
  readonly name = 'cloud';
  #client: MqttClient | undefined;
  #handlers: DownstreamHandlers | undefined;
  /** Desired layers that came before the hub started, by twin. */
  readonly #earlyLayers = new Map<string, { target: Target; layer: Record<string, unknown> }>();

  constructor(
    private readonly topic: (leaf: string) => string,
    private readonly log: Logger,
  ) {
    super();
  }

  bind(client: MqttClient): void {
    this.#client = client;
  }

  setLinkUp(up: boolean): void {
    this.setConnected(up);
  }

  start(handlers: DownstreamHandlers): Promise<void> {
    this.#handlers = handlers;
    for (const { target, layer } of this.#earlyLayers.values()) this.#applyLayer(target, layer);
    this.#earlyLayers.clear();
    return Promise.resolve();
  }

  /** Hands the hub a twin's desired layer from the service API (`kedge twin patch`). */
  serviceDesired(deviceId: string, message: TwinDesiredMessage): void {
    if (!isJsonObject(message.properties) || typeof message.module !== 'string')
      throw new KedgeError(
        ErrorCode.InvalidInput,
        'a desired twin layer needs module and properties',
      );
    const target: Target = message.leaf
      ? { deviceId: message.leaf }
      : { deviceId, moduleId: message.module };
    if (this.#handlers) this.#applyLayer(target, message.properties);
    else this.#earlyLayers.set(JSON.stringify(target), { target, layer: message.properties });
  }

  #applyLayer(target: Target, layer: Record<string, unknown>): void {
    try {
      this.#handlers!.serviceDesired(target, layer);
    } catch (err) {
      this.log.warn({ target, reason: errorMessage(err) }, 'could not apply desired properties');
    }
  }

  /**
   * Publishes the batch with QoS 1 in publishes of at most {@link MAX_PUBLISH_BYTES}, each
   * acknowledged by the gateway only once the cloud has stored it. Stops at the first failure
   * and reports what went over; a message that cannot fit any publish is rejected.
   */
  async send(batch: UpstreamMessage[]): Promise<SendResult> {
    const result: SendResult = { sent: [], rejected: [] };
    try {
      for (const chunk of telemetryChunks(batch, result)) {
        const body = `{"messages":[${chunk.map((c) => c.json).join(',')}]}`;
        await this.#publish(Leaf.telemetry, body);
        result.sent.push(...chunk.map((c) => c.seq));
      }
      for (const m of batch.filter((b) => b.kind === 'reportedProperties')) {
        const patch = JSON.parse(m.body.toString('utf8')) as Record<string, unknown>;
        await this.#publish(Leaf.twinReported, JSON.stringify(twinReport(m, patch)));
        result.sent.push(m.seq);
      }
    } catch (err) {
      if (result.sent.length === 0 && result.rejected.length === 0) throw err;
      this.log.info({ reason: errorMessage(err) }, 'cloud link failed part-way through a batch');
    }
    return result;
  }

  /**
   * One QoS 1 publish, only over a live link: MQTT.js would hold a publish made while the link is
   * down for a session the gateway does not keep, so the rest of a batch waits for the next send.
   */
  async #publish(leaf: string, body: string): Promise<void> {
    const client = this.#client;
    if (!client?.connected) throw new KedgeError(ErrorCode.Unavailable, 'cloud link is down');
    await client.publishAsync(this.topic(leaf), body, { qos: 1 });
  }

  /** Runs a direct method from the cloud on a local module through the hub. */
  async invokeMethod(deviceId: string, request: MethodRequest): Promise<MethodResponse> {
    if (!this.#handlers) return { status: 503, payload: { message: 'the hub is not running' } };
    try {
      return await this.#handlers.invokeMethod(
        request.leaf ? { deviceId } : { deviceId, moduleId: request.module },
        {
          methodName: request.method,
          payload: request.payload,
          timeoutMs: request.timeoutSecs * 1000,
        },
      );
    } catch (err) {
      this.log.info(
        { module: request.module, method: request.method, reason: errorMessage(err) },
        'direct method failed',
      );
      const timeout = err instanceof KedgeError && err.code === ErrorCode.Timeout;
      return { status: timeout ? 504 : 404, payload: { message: errorMessage(err) } };
    }
  }

  /** Gives a C2D message to the hub; an unknown leaf is final, anything else is retried. */
  async deliverC2D(message: C2dMessage): Promise<C2dAck> {
    if (!this.#handlers) return { error: 'the hub is not running', retry: true };
    try {
      await this.#handlers.c2d(
        message.deviceId,
        Buffer.from(message.body, 'base64'),
        Object.entries(message.properties),
      );
      return {};
    } catch (err) {
      this.log.info({ leaf: message.deviceId, reason: errorMessage(err) }, 'C2D message refused');
      return { error: errorMessage(err), retry: !isKedgeError(err, ErrorCode.NotFound) };
    }
  }

  async stop(): Promise<void> {
    this.setConnected(false);
    return Promise.resolve();
  }
}

/**
 * Telemetry publishes are bounded in bytes, so a backlog of large messages never builds a
 * publish the gateway refuses (it takes up to 2 MiB); 1 MiB still carries thousands of small ones.
 */
export const MAX_PUBLISH_BYTES = 1024 * 1024;

/** Splits the batch's telemetry into publishes of at most {@link MAX_PUBLISH_BYTES}. */
function telemetryChunks(
  batch: UpstreamMessage[],
  result: SendResult,
): { seq: number; json: string }[][] {
  const chunks: { seq: number; json: string }[][] = [];
  let current: { seq: number; json: string }[] = [];
  let bytes = 0;
  for (const m of batch) {
    if (m.kind !== 'telemetry') continue;
    const json = JSON.stringify(toWire(m));
    if (json.length > MAX_PUBLISH_BYTES) {
      result.rejected.push({
        seq: m.seq,
        reason: `${json.length} bytes encoded, over ${MAX_PUBLISH_BYTES}`,
      });
      continue;
    }
    if (bytes + json.length > MAX_PUBLISH_BYTES && current.length) {
      chunks.push(current);
      current = [];
      bytes = 0;
    }
    current.push({ seq: m.seq, json });
    bytes += json.length + 1;
  }
  if (current.length) chunks.push(current);
  return chunks;
}

/** A reported patch of a module, or of a leaf device (no module id). */
function twinReport(m: UpstreamMessage, patch: Record<string, unknown>): TwinReportedMessage {
  return m.source.moduleId === undefined
    ? { module: '', leaf: m.source.deviceId, patch, version: m.seq }
    : { module: m.source.moduleId, patch, version: m.seq };
}

function toWire(m: UpstreamMessage): WireMessage {
  const properties: Record<string, string> = {};
  const systemProperties: Record<string, string> = {};
  for (const [k, v] of m.properties) (k.startsWith('$') ? systemProperties : properties)[k] = v;
  systemProperties['$.cdid'] ??= m.source.deviceId;
  if (m.source.moduleId) systemProperties['$.cmid'] ??= m.source.moduleId;
  return {
    seq: m.seq,
    body: m.body.toString('base64'),
    properties,
    systemProperties,
    enqueuedAt: new Date(m.enqueuedAtMs).toISOString(),
    priority: m.priority,
  };
}
