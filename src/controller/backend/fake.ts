import { EventEmitter } from 'node:events';
import { PassThrough, type Readable } from 'node:stream';
import type { DesiredMessage, MethodResponse } from '../../common/cloudlink/protocol.js';
import type { CredentialsRecord, StoredTwin } from '../../common/cloudplane/layout.js';
import { ErrorCode, KedgeError } from '../../common/errors.js';
import { StreamEndpoint, type StreamOpen } from '../../common/cloudlink/streams.js';
import { composeWithin } from '../../common/iothub/twin-patch.js';
import type {
  C2dSend,
  DeviceBackend,
  DeviceBackendEvents,
  MethodCall,
  StoredTelemetry,
  TelemetryQuery,
} from './device-backend.js';

/**
 * An in-memory {@link DeviceBackend} for reconciler tests: it records what the controller asks
 * and lets a test play the device's side (connect, report, answer methods).
 */
export class FakeDeviceBackend extends EventEmitter<DeviceBackendEvents> implements DeviceBackend {
  readonly desired = new Map<string, DesiredMessage>();
  readonly credentials = new Map<string, CredentialsRecord>();
  readonly twins = new Map<string, StoredTwin>();
  /** Desired layers per `namespace/device/module`. */
  readonly desiredTwins = new Map<string, StoredTwin>();
  /** Stored telemetry per `namespace/device`, oldest first; a test appends to it. */
  readonly telemetry = new Map<string, StoredTelemetry[]>();
  readonly calls: { namespace: string; device: string; call: MethodCall }[] = [];
  readonly c2d: { namespace: string; device: string; message: C2dSend }[] = [];
  readonly #connected = new Set<string>();
  /** Answers direct methods; a test replaces it. */
  answer: (call: MethodCall) => MethodResponse = () => ({ status: 200, payload: null });

  get connectedDevices(): number {
    return this.#connected.size;
  }

  isConnected(namespace: string, device: string): boolean {
    return this.#connected.has(`${namespace}/${device}`);
  }

  /** Plays a device connecting. */
  connect(namespace: string, device: string): void {
    this.#connected.add(`${namespace}/${device}`);
    this.emit('connected', namespace, device);
  }

  publishDesired(namespace: string, device: string, desired: DesiredMessage): Promise<void> {
    this.desired.set(`${namespace}/${device}`, desired);
    return Promise.resolve();
  }

  setCredentials(namespace: string, device: string, record: CredentialsRecord): Promise<void> {
    this.credentials.set(`${namespace}/${device}`, record);
    return Promise.resolve();
  }

  async forgetDevice(namespace: string, device: string): Promise<void> {
    this.desired.delete(`${namespace}/${device}`);
    this.credentials.delete(`${namespace}/${device}`);
    await this.disconnect(namespace, device);
  }

  disconnect(namespace: string, device: string): Promise<void> {
    if (this.#connected.delete(`${namespace}/${device}`))
      this.emit('disconnected', namespace, device);
    return Promise.resolve();
  }

  streamLogs(namespace: string, device: string): Readable {
    if (!this.isConnected(namespace, device))
      throw new KedgeError(ErrorCode.Unavailable, `device ${namespace}/${device} is not connected`);
    const stream = new PassThrough();
    stream.end(`logs of ${namespace}/${device}\n`);
    return stream;
  }

  /** Sessions the controller opened, for a test to play the device's end. */
  readonly sessions: {
    namespace: string;
    device: string;
    open: StreamOpen;
    endpoint: StreamEndpoint;
  }[] = [];

  openSession(namespace: string, device: string, open: StreamOpen): StreamEndpoint {
    if (!this.isConnected(namespace, device))
      throw new KedgeError(ErrorCode.Unavailable, `device ${namespace}/${device} is not connected`);
    const endpoint = new StreamEndpoint(`fake-${this.sessions.length}`, () => undefined);
    this.sessions.push({ namespace, device, open, endpoint });
    return endpoint;
  }

  invokeMethod(namespace: string, device: string, call: MethodCall): Promise<MethodResponse> {
    this.calls.push({ namespace, device, call });
    return Promise.resolve(this.answer(call));
  }

  reportedTwin(namespace: string, device: string, module: string): Promise<StoredTwin | undefined> {
    return Promise.resolve(this.twins.get(`${namespace}/${device}/${module}`));
  }

  forgetTwin(namespace: string, device: string, module: string): Promise<void> {
    this.twins.delete(`${namespace}/${device}/${module}`);
    this.desiredTwins.delete(`${namespace}/${device}/${module}`);
    return Promise.resolve();
  }

  desiredTwin(namespace: string, device: string, module: string): Promise<StoredTwin | undefined> {
    return Promise.resolve(this.desiredTwins.get(`${namespace}/${device}/${module}`));
  }

  patchDesiredTwin(
    namespace: string,
    device: string,
    module: string,
    patch: Record<string, unknown>,
  ): Promise<StoredTwin> {
    const key = `${namespace}/${device}/${module}`;
    const current = this.desiredTwins.get(key);
    const next = {
      module,
      version: (current?.version ?? 0) + 1,
      properties: composeWithin(current?.properties ?? {}, patch),
    };
    this.desiredTwins.set(key, next);
    return Promise.resolve(next);
  }

  sendC2D(namespace: string, device: string, message: C2dSend): Promise<void> {
    this.c2d.push({ namespace, device, message });
    return Promise.resolve();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  recentTelemetry(
    namespace: string,
    device: string,
    { afterSeq, limit }: TelemetryQuery,
  ): Promise<StoredTelemetry[]> {
    const stored = this.telemetry.get(`${namespace}/${device}`) ?? [];
    return Promise.resolve(stored.filter((t) => t.seq > (afterSeq ?? 0)).slice(-limit));
  }
}
