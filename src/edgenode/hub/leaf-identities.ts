/**
 * The leaf devices a hub lets in, from two sources: the static `hub.leafDevices` list of the
 * node's own configuration, and the EdgeDevices whose `spec.parent` names this device, which
 * arrive with the desired state over the cloud link. The cloud list is cached on disk, so leaves
 * keep authenticating while the device is offline or restarts without a network.
 *
 * On a conflict (one device id in both lists) the EdgeDevice wins: the cluster is where keys are
 * rotated and devices revoked. The clash is logged as a warning.
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { LeafIdentity } from '../../common/cloudlink/protocol.js';
import { ErrorCode, KedgeError } from '../../common/errors.js';
import {
  usableCaCertificates,
  validThumbprints,
  verifyClientChain,
} from '../../common/x509-identity.js';
import type { Logger } from '../../common/logger.js';
import type { LeafDeviceOptions } from './options.js';

/** A leaf as the hub checks it. */
export interface LeafCredentials {
  deviceId: string;
  /** Base64 symmetric keys; empty when the leaf uses X.509. */
  keys: string[];
  /** SHA-256 thumbprints, lowercase hex without separators. */
  thumbprints: string[];
  /** PEM CA certificates that sign its certificates (CA-signed X.509). */
  caCertificates?: string[];
  source: 'config' | 'cloud';
}

/** The cache file of the cloud leaves, in the hub's data directory (owner-only: it holds keys). */
export const LEAF_CACHE_FILE = 'leaf-devices.json';
const FILE_MODE = 0o600;

export class LeafIdentities {
  readonly #file: string;
  readonly #log: Logger | undefined;
  #static: LeafCredentials[] = [];
  #cloud: LeafCredentials[] = [];
  #merged = new Map<string, LeafCredentials>();

  /** Loads the cached cloud list from `dataDir`, if any. */
  constructor(dataDir: string, log?: Logger) {
    this.#file = path.join(dataDir, LEAF_CACHE_FILE);
    this.#log = log;
    this.#cloud = this.#readCache();
    this.#merge();
  }

  /** Replaces the static list; returns the ids whose access was withdrawn or changed. */
  setStatic(devices: readonly LeafDeviceOptions[]): string[] {
    this.#static = devices.map((d) => ({
      deviceId: d.deviceId,
      keys: d.secondaryKey ? [d.primaryKey, d.secondaryKey] : [d.primaryKey],
      thumbprints: [],
      source: 'config',
    }));
    return this.#merge();
  }

  /**
   * Replaces the cloud list (and its cache file); returns the ids whose access was withdrawn or
   * changed, whose live sessions must end.
   */
  setCloud(leaves: readonly LeafIdentity[]): string[] {
    const next = leaves.map(fromCloud);
    const text = JSON.stringify(next);
    if (text !== JSON.stringify(this.#cloud)) {
      const tmp = `${this.#file}.tmp`;
      writeFileSync(tmp, text, { mode: FILE_MODE });
      renameSync(tmp, this.#file);
    }
    this.#cloud = next;
    return this.#merge();
  }

  get(deviceId: string): LeafCredentials | undefined {
    return this.#merged.get(deviceId);
  }

  has(deviceId: string): boolean {
    return this.#merged.has(deviceId);
  }

  /** Every leaf the hub lets in. */
  list(): LeafCredentials[] {
    return [...this.#merged.values()];
  }

  /**
   * Checks the client certificate chain (DER, the device's own first, then any intermediates it
   * sent) that `deviceId` presented. Its certificate must be within its validity period and
   * either have a SHA-256 thumbprint its EdgeDevice names, or be signed (through the
   * intermediates) by one of its EdgeDevice's CA certificates with subject CN = `deviceId`, as
   * IoT Hub's CA-signed devices. Throws `KEDGE_ERR_UNAUTHORIZED` with a loggable reason.
   */
  verifyCertificate(deviceId: string, chain: readonly Buffer[], nowMs = Date.now()): void {
    const leaf = this.#merged.get(deviceId);
    if (!leaf) throw new KedgeError(ErrorCode.Unauthorized, 'unknown identity');
    verifyClientChain(
      deviceId,
      chain,
      { thumbprints: leaf.thumbprints, caCertificates: leaf.caCertificates ?? [] },
      nowMs,
    );
  }

  #merge(): string[] {
    const next = new Map<string, LeafCredentials>();
    for (const leaf of this.#static) next.set(leaf.deviceId, leaf);
    for (const leaf of this.#cloud) {
      if (next.has(leaf.deviceId))
        this.#log?.warn(
          { leaf: leaf.deviceId },
          'leaf device is both in hub.leafDevices and an EdgeDevice; the EdgeDevice wins',
        );
      next.set(leaf.deviceId, leaf);
    }
    const changed: string[] = [];
    for (const [id, before] of this.#merged) {
      const after = next.get(id);
      if (!after || !sameCredentials(before, after)) changed.push(id);
    }
    this.#merged = next;
    return changed;
  }

  #readCache(): LeafCredentials[] {
    if (!existsSync(this.#file)) return [];
    try {
      const saved = JSON.parse(readFileSync(this.#file, 'utf8')) as LeafCredentials[];
      return Array.isArray(saved) ? saved.map((l) => fromCloud(l)) : [];
    } catch (err) {
      this.#log?.error(
        { file: this.#file, reason: (err as Error).message },
        'the leaf device cache is unreadable; ignoring it until the cloud sends the list again',
      );
      return [];
    }
  }
}

function fromCloud(leaf: LeafIdentity): LeafCredentials {
  const cas = usableCaCertificates(leaf.caCertificates ?? []);
  return {
    deviceId: leaf.deviceId,
    keys: [...(leaf.keys ?? [])],
    thumbprints: validThumbprints(leaf.thumbprints ?? []),
    ...(cas.length ? { caCertificates: cas } : {}),
    source: 'cloud',
  };
}

function sameCredentials(a: LeafCredentials, b: LeafCredentials): boolean {
  const of = (c: LeafCredentials): string =>
    JSON.stringify([c.keys, c.thumbprints, c.caCertificates]);
  return of(a) === of(b);
}
