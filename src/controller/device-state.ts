import type { ReportedMessage } from '../common/cloudlink/protocol.js';
import type { UsageMessage } from '../common/cloudlink/usage.js';
import type { X509Credentials } from '../common/x509-identity.js';
import type { PressureConditions } from '../provider/pressure.js';
import type { KeyRefusal } from './device-keys.js';
import type { RecentWrite } from './recent-writes.js';

/** What the controller knows about one device beyond its EdgeDevice object. Not persisted. */
export interface DeviceState {
  connected: boolean;
  /** When the current connection (or disconnection) started. */
  since?: Date;
  lastSeen?: Date;
  report?: ReportedMessage;
  /** The latest usage sample, for the kubelet API's resource metrics. */
  usage?: UsageMessage;
  /** The sample before it, for rates (`metrics.k8s.io`). */
  previousUsage?: UsageMessage;
  /** The Node's pressure conditions as the device's readings decide them. */
  pressure?: PressureConditions;
  /** The desired version last pushed, and the hash of its content. */
  desiredVersion: number;
  desiredHash?: string;
  /** The device's primary and secondary keys, base64, for SAS verification. */
  keys?: string[];
  /** Modules the device's desired state holds, as last pushed (for the status summary). */
  desiredModules?: number;
  /** Per module, the pull start whose `Pulling` Event was recorded. */
  toldPulls?: Map<string, string>;
  /** The EdgeDevice status last written, so a stale cache does not cause the same write twice. */
  lastStatus?: RecentWrite;
  /** When the controller last wrote the EdgeDevice status (epoch ms). */
  statusWrittenAt?: number;
  /** The phase this controller last wrote: the cache may not show it yet. */
  writtenPhase?: string;
  /** The certificates an X.509 device may present (its EdgeDevice's `x509`). */
  x509?: X509Credentials;
  /** When the keys were last read from their Secret. */
  keysReadAt?: number;
  /** The resourceVersion of the key Secret last read: a watch event at it is the read itself. */
  keysSecretVersion?: string;
  /** Why the key Secret cannot be used, when it cannot (shown as Ready=False). */
  keyRefusal?: KeyRefusal;
  /** Why the Node of the device's name is not kedge's to manage, when it is not. */
  nodeRefusal?: { reason: string; message: string };
  /** For a leaf device: what the controller knows of it (see leaf-devices.ts). */
  leaf?: LeafState;
  /** Terminating pods (by UID) and the desired version that first left them out. */
  removals: Map<string, number>;
}

/**
 * A leaf's own state. It stays apart from `connected`/`lastSeen`, which drive a gateway's Node
 * Lease and heartbeat timeout: a leaf has neither.
 */
export interface LeafState {
  /** The parent and credentials its parent's desired state was last built for. */
  parent: string;
  signature: string;
  /** Whether its parent last reported it connected, and since when. */
  connected: boolean;
  since?: Date;
}

/** In-memory device states keyed by `namespace/name`. */
export class DeviceStates {
  readonly #states = new Map<string, DeviceState>();

  get(key: string): DeviceState {
    let state = this.#states.get(key);
    if (!state) {
      state = { connected: false, desiredVersion: 0, removals: new Map() };
      this.#states.set(key, state);
    }
    return state;
  }

  peek(key: string): DeviceState | undefined {
    return this.#states.get(key);
  }

  delete(key: string): void {
    this.#states.delete(key);
  }

  entries(): IterableIterator<[string, DeviceState]> {
    return this.#states.entries();
  }

  get connectedCount(): number {
    let n = 0;
    for (const s of this.#states.values()) if (s.connected) n++;
    return n;
  }
}
