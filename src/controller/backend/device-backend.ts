/**
 * The one seam between the controller and its devices: everything the controller asks of a device
 * and everything it hears from one. The NATS JetStream backend is the production implementation;
 * {@link FakeDeviceBackend} serves fast reconciler tests.
 */
import type { StreamEndpoint, StreamOpen } from '../../common/cloudlink/streams.js';
import type { EventEmitter } from 'node:events';
import type { Readable } from 'node:stream';
import type { CredentialsRecord, StoredTwin } from '../../common/cloudplane/layout.js';
import type {
  DesiredMessage,
  LogRequest,
  MethodResponse,
} from '../../common/cloudlink/protocol.js';

/** A direct-method call on one module of a device, or on a leaf device behind its hub. */
export interface MethodCall {
  /** The module; empty for a leaf device. */
  module: string;
  /** The leaf device behind the device's hub, instead of a module. */
  leaf?: string;
  method: string;
  payload: unknown;
  timeoutSecs: number;
}

/** A cloud-to-device message for a leaf device behind an edge device. */
export interface C2dSend {
  /** The leaf device's id, as its hub knows it. */
  leaf: string;
  body: Buffer;
  /** Application properties plus IoT Hub's system ones (`$.mid`, `$.cid`, `$.ct`, `$.ce`). */
  properties: Record<string, string>;
  /** The message is dropped, undelivered, this long after it was queued. */
  ttlSecs: number;
}

/** What a backend tells the controller, with the device it concerns. */
export interface DeviceBackendEvents {
  connected: [namespace: string, device: string];
  disconnected: [namespace: string, device: string];
  heartbeat: [namespace: string, device: string];
  /** A device's report as it came; the controller validates it before use. */
  reported: [namespace: string, device: string, report: unknown];
  /** A device's usage sample as it came; the controller validates it before use. */
  usage: [namespace: string, device: string, usage: unknown];
}

/** What the controller asks of devices. Every call names the device by namespace and name. */
export interface DeviceBackend extends EventEmitter<DeviceBackendEvents> {
  /** Devices the backend currently knows to be connected. */
  readonly connectedDevices: number;
  isConnected(namespace: string, device: string): boolean;
  /** Stores the device's desired state; the device gets it now or when it next connects. */
  publishDesired(namespace: string, device: string, desired: DesiredMessage): Promise<void>;
  /** Sets what a device may authenticate with (SAS keys or X.509); nothing revokes it. */
  setCredentials(namespace: string, device: string, credentials: CredentialsRecord): Promise<void>;
  /** Forgets a deleted device: desired state, credentials and its connection. */
  forgetDevice(namespace: string, device: string): Promise<void>;
  /** Drops the device's live connection, wherever it is held. */
  disconnect(namespace: string, device: string): Promise<void>;
  /** Streams a module's log from the device; destroying the stream cancels the request. */
  streamLogs(namespace: string, device: string, request: Omit<LogRequest, 'id'>): Readable;
  /**
   * Opens an exec, attach or port-forward session with a module. The endpoint ends with an error
   * when the device is not reachable or refuses; ending it ends the session on the device.
   */
  openSession(namespace: string, device: string, open: StreamOpen): StreamEndpoint;
  /** Calls a direct method; rejects with a Timeout error after `call.timeoutSecs`. */
  invokeMethod(namespace: string, device: string, call: MethodCall): Promise<MethodResponse>;
  /** A module's reported twin, or undefined when it never reported. */
  reportedTwin(namespace: string, device: string, module: string): Promise<StoredTwin | undefined>;
  /** Forgets a twin, reported and desired: a deleted leaf's, kept under its parent. */
  forgetTwin(namespace: string, device: string, module: string): Promise<void>;
  /** A twin's desired patches from the service API, composed; undefined when none was sent. */
  desiredTwin(namespace: string, device: string, module: string): Promise<StoredTwin | undefined>;
  /**
   * Composes a desired patch into the twin's service layer; the device gets the layer now or when
   * it next connects. Rejects with `LimitExceeded` when the layer would grow over IoT Hub's size.
   */
  patchDesiredTwin(
    namespace: string,
    device: string,
    module: string,
    patch: Record<string, unknown>,
  ): Promise<StoredTwin>;
  /**
   * Queues a C2D message durably until the device takes it or its TTL ends; rejects with
   * `LimitExceeded` when the leaf's queue is full.
   */
  sendC2D(namespace: string, device: string, message: C2dSend): Promise<void>;
  close(): Promise<void>;
  /** The device's recent telemetry as the cloud plane stored it, oldest first. */
  recentTelemetry(
    namespace: string,
    device: string,
    query: TelemetryQuery,
  ): Promise<StoredTelemetry[]>;
}

/** Which stored telemetry {@link DeviceBackend.recentTelemetry} returns. */
export interface TelemetryQuery {
  /** Only messages stored after this sequence; without it, those of the last `windowSecs`. */
  afterSeq?: number;
  /** How far back to look when `afterSeq` is not given, in seconds. */
  windowSecs: number;
  /** At most this many messages, the newest ones. */
  limit: number;
}

/** One telemetry message as the cloud plane stored it. */
export interface StoredTelemetry {
  /** Its sequence number in the telemetry stream, increasing. */
  seq: number;
  /** When the cloud plane stored it, ISO 8601. */
  storedAt: string;
  /** The message as the device's hub sent it (an `UpstreamMessage`). */
  message: unknown;
}
