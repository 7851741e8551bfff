/**
 * `$upstream` to an external MQTT broker (e.g. Mosquitto), QoS1. Telemetry goes to
 * `{prefix}/devices/{d}[/modules/{m}]/messages/events/{bag}`, reported patches to
 * `{prefix}/devices/{d}[/modules/{m}]/twin/reported`. A batch resolves when every PUBACK is in.
 */
import type { MqttClient } from 'mqtt';
import { encodePropertyBag } from '../../../common/iothub/index.js';
import type { Logger } from '../../../common/logger.js';
import {
  allSent,
  UpstreamBase,
  type SendResult,
  type Target,
  type UpstreamMessage,
} from './upstream.js';

/** Reconnect quickly: the forwarder's backoff is interrupted as soon as the link returns. */
const RECONNECT_PERIOD_MS = 500;
const CONNECT_TIMEOUT_MS = 5_000;

function identityPath(t: Target): string {
  return `devices/${t.deviceId}${t.moduleId === undefined ? '' : `/modules/${t.moduleId}`}`;
}

/** Options for {@link MqttUpstream}. */
export interface MqttUpstreamOptions {
  url: string;
  /** Topic prefix. Default `kedge/{edgeDeviceId}`. */
  topicPrefix: string;
  username?: string;
  password?: string;
  clientId: string;
}

export class MqttUpstream extends UpstreamBase {
  readonly name = 'mqtt';
  readonly #options: MqttUpstreamOptions;
  readonly #log: Logger;
  #client: MqttClient | undefined;

  constructor(options: MqttUpstreamOptions, log: Logger) {
    super();
    this.#options = options;
    this.#log = log;
  }

  async start(): Promise<void> {
    // MQTT.js is loaded only by hubs that use this upstream: most devices never do.
    const { default: mqtt } = await import('mqtt');
    const client = mqtt.connect(this.#options.url, {
      clientId: this.#options.clientId,
      clean: false,
      protocolVersion: 4,
      reconnectPeriod: RECONNECT_PERIOD_MS,
      connectTimeout: CONNECT_TIMEOUT_MS,
      ...(this.#options.username === undefined ? {} : { username: this.#options.username }),
      ...(this.#options.password === undefined ? {} : { password: this.#options.password }),
    });
    client.on('connect', () => {
      // Nagle would hold PUBLISHes behind unacked segments (about 40 ms per round trip).
      (client.stream as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);
      this.#log.info({ url: this.#options.url }, 'upstream broker connected');
      this.setConnected(true);
    });
    client.on('close', () => this.setConnected(false));
    client.on('error', (err) => this.#log.debug({ err: err.message }, 'upstream broker error'));
    this.#client = client;
  }

  #topic(m: UpstreamMessage): string {
    const base = `${this.#options.topicPrefix}/${identityPath(m.source)}`;
    if (m.kind === 'reportedProperties') return `${base}/twin/reported`;
    return `${base}/messages/events/${encodePropertyBag(m.properties)}`;
  }

  send(batch: UpstreamMessage[]): Promise<SendResult> {
    const client = this.#client;
    if (!client?.connected) return Promise.reject(new Error('upstream broker not connected'));
    return Promise.all(
      batch.map(
        (m) =>
          new Promise<void>((resolve, reject) =>
            client.publish(this.#topic(m), m.body, { qos: 1 }, (err) =>
              err ? reject(err) : resolve(),
            ),
          ),
      ),
    ).then(() => allSent(batch));
  }

  async stop(): Promise<void> {
    await this.#client?.endAsync(true);
    this.setConnected(false);
  }
}
