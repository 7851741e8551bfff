/**
 * The upstream seam. The hub hands it telemetry and reported-property patches in queue order and
 * receives desired patches, direct-method calls and C2D messages from it. Standalone sinks (MQTT
 * broker, file, stdout) implement it now; the cloud link implements it later.
 */

/** Who a message or twin belongs to. */
export interface Target {
  deviceId: string;
  moduleId?: string;
}

/** One message going up. */
export interface UpstreamMessage {
  /** Queue sequence number (unique per hub; duplicates after a crash carry the same seq). */
  seq: number;
  kind: 'telemetry' | 'reportedProperties';
  priority: number;
  enqueuedAtMs: number;
  source: Target;
  /** Application and system properties (system ones with their wire keys, e.g. `$.ct`). */
  properties: [string, string][];
  /** Telemetry body, or the reported patch as JSON. */
  body: Buffer;
}

/** Calls coming down from the cloud, wired by the hub. */
export interface DownstreamHandlers {
  /**
   * The service API's desired layer of a module or leaf device twin: every patch sent through the
   * cloud, composed. Resent whole on every reconnect; the hub applies what changed.
   */
  serviceDesired(target: Target, layer: Record<string, unknown>): void;
  /** A direct method; resolves with the device's answer or rejects on timeout/offline. */
  invokeMethod(
    target: Target,
    request: { methodName: string; payload: unknown; timeoutMs: number },
  ): Promise<{ status: number; payload: unknown }>;
  /**
   * A cloud-to-device message for a leaf device; resolves once the leaf's session holds it and
   * rejects with `NotFound` for a device the hub does not know.
   */
  c2d(deviceId: string, body: Buffer, properties: [string, string][]): Promise<void>;
}

/**
 * What became of a batch. `sent` messages were handed over; `rejected` ones can never be sent
 * (they are dead-lettered and counted, never retried); every other message is retried later.
 */
export interface SendResult {
  sent: number[];
  rejected: { seq: number; reason: string }[];
}

/** The result of a batch that went over whole. */
export function allSent(batch: readonly UpstreamMessage[]): SendResult {
  return { sent: batch.map((m) => m.seq), rejected: [] };
}

/** An upstream link or sink. */
export interface Upstream {
  /** For logs and metrics. */
  readonly name: string;
  /** True while `send` can be expected to succeed. */
  readonly connected: boolean;
  /** Connects (in the background when the far side is down). */
  start(handlers: DownstreamHandlers): Promise<void>;
  /**
   * Delivers a batch in order (at-least-once) and says what became of each message; rejects only
   * when nothing was handed over.
   */
  send(batch: UpstreamMessage[]): Promise<SendResult>;
  /** Registers a listener for link up (`true`) and down (`false`). */
  onLinkChange(listener: (connected: boolean) => void): void;
  stop(): Promise<void>;
}

/** A base for sinks: listener bookkeeping. */
export abstract class UpstreamBase implements Upstream {
  abstract readonly name: string;
  #connected = false;
  #listeners: ((connected: boolean) => void)[] = [];

  get connected(): boolean {
    return this.#connected;
  }

  protected setConnected(connected: boolean): void {
    if (connected === this.#connected) return;
    this.#connected = connected;
    for (const l of this.#listeners) l(connected);
  }

  onLinkChange(listener: (connected: boolean) => void): void {
    this.#listeners.push(listener);
  }

  abstract start(handlers: DownstreamHandlers): Promise<void>;
  abstract send(batch: UpstreamMessage[]): Promise<SendResult>;
  abstract stop(): Promise<void>;
}
