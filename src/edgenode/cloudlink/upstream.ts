import type { MqttClient } from 'mqtt';
import {
  Leaf,
  type MethodRequest,
  type MethodResponse,
  type UpstreamMessage as WireMessage,
} from '../../common/cloudlink/protocol.js';
import { ErrorCode, KedgeError, errorMessage } from '../../common/errors.js';
import type { Logger } from '../../common/logger.js';
import {
  UpstreamBase,
  type DownstreamHandlers,
  type UpstreamMessage,
} from '../hub/upstream/upstream.js';

/** The hub's upstream over the cloud link: telemetry and reported properties go to the cloud hub. */
export class CloudUpstream extends UpstreamBase {
  readonly name = 'cloud';
  #client: MqttClient | undefined;
  #handlers: DownstreamHandlers | undefined;

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
    return Promise.resolve();
  }

  /** Publishes the batch with QoS 1 and resolves once the cloud hub has acknowledged it. */
  async send(batch: UpstreamMessage[]): Promise<void> {
    const client = this.#client;
    if (!client?.connected) throw new KedgeError(ErrorCode.Unavailable, 'cloud link is down');
    const telemetry = batch.filter((m) => m.kind === 'telemetry').map(toWire);
    if (telemetry.length > 0)
      await client.publishAsync(
        this.topic(Leaf.telemetry),
        JSON.stringify({ messages: telemetry }),
        { qos: 1 },
      );
    for (const m of batch.filter((b) => b.kind === 'reportedProperties')) {
      const patch = JSON.parse(m.body.toString('utf8')) as Record<string, unknown>;
      await client.publishAsync(
        this.topic(Leaf.twinReported),
        JSON.stringify({ module: m.source.moduleId ?? '', patch, version: m.seq }),
        { qos: 1 },
      );
    }
  }

  /** Runs a direct method from the cloud on a local module through the hub. */
  async invokeMethod(deviceId: string, request: MethodRequest): Promise<MethodResponse> {
    if (!this.#handlers) return { status: 503, payload: { message: 'the hub is not running' } };
    try {
      return await this.#handlers.invokeMethod(
        { deviceId, moduleId: request.module },
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

  async stop(): Promise<void> {
    this.setConnected(false);
    return Promise.resolve();
  }
}

function toWire(m: UpstreamMessage): WireMessage {
  const properties: Record<string, string> = {};
  const systemProperties: Record<string, string> = {};
  for (const [k, v] of m.properties) (k.startsWith('$') ? systemProperties : properties)[k] = v;
  systemProperties['$.cdid'] ??= m.source.deviceId;
  if (m.source.moduleId) systemProperties['$.cmid'] ??= m.source.moduleId;
  return {
    body: m.body.toString('base64'),
    properties,
    systemProperties,
    enqueuedAt: new Date(m.enqueuedAtMs).toISOString(),
    priority: m.priority,
  };
}
