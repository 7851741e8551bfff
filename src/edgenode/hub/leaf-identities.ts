/**
 * The leaf devices a hub lets in, from two sources: the static `hub.leafDevices` list of the
 * node's own configuration, and the EdgeDevices whose `spec.parent` names this device, which
 * arrive with the desired state over the cloud link. The cloud list is cached on disk, so leaves
 * keep authenticating while the device is offline or restarts without a network.
 *
 * On a conflict (one device id in both lists) the EdgeDevice wins: the cluster is where keys are
 * rotated and devices revoked. The clash is logged as a warning.
 */
import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { LeafIdentity } from '../../common/cloudlink/protocol.js';
import { ErrorCode, KedgeError } from '../../common/errors.js';
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
const THUMBPRINT = /^[0-9a-f]{64}$/;

/** A thumbprint in the form the hub compares: lowercase hex, no colons. */
export function normalizeThumbprint(text: string): string {
  return text.replaceAll(':', '').toLowerCase();
}

/** The SHA-256 thumbprint of a DER certificate, as {@link normalizeThumbprint} writes it. */
export function certificateThumbprint(der: Buffer): string {
  return normalizeThumbprint(new X509Certificate(der).fingerprint256);
}

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
    const cas = leaf.caCertificates ?? [];
    if (leaf.thumbprints.length === 0 && cas.length === 0)
      throw new KedgeError(ErrorCode.Unauthorized, 'the device has no X.509 credentials');
    const [cert, ...intermediates] = chain.map((der) => new X509Certificate(der));
    if (!cert) throw new KedgeError(ErrorCode.Unauthorized, 'no client certificate');
    if (!validAt(cert, nowMs))
      throw new KedgeError(ErrorCode.Unauthorized, 'certificate is not valid now');
    if (leaf.thumbprints.includes(normalizeThumbprint(cert.fingerprint256))) return;
    if (cas.length === 0)
      throw new KedgeError(ErrorCode.Unauthorized, 'certificate thumbprint does not match');
    if (commonName(cert) !== deviceId)
      throw new KedgeError(ErrorCode.Unauthorized, 'certificate subject CN is not the device id');
    const anchors = cas.map((pem) => new X509Certificate(pem));
    if (!chainsTo(cert, intermediates, anchors, nowMs))
      throw new KedgeError(
        ErrorCode.Unauthorized,
        "certificate is not signed by the device's CA certificates",
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

/** Intermediates followed at most between a device certificate and its CA. */
const MAX_CHAIN_DEPTH = 4;

function validAt(cert: X509Certificate, nowMs: number): boolean {
  return Date.parse(cert.validFrom) <= nowMs && Date.parse(cert.validTo) >= nowMs;
}

function issuedBy(cert: X509Certificate, issuer: X509Certificate): boolean {
  return cert.checkIssued(issuer) && cert.verify(issuer.publicKey);
}

/** True when `cert` leads to one of `anchors` through CA `intermediates`, all valid now. */
function chainsTo(
  cert: X509Certificate,
  intermediates: readonly X509Certificate[],
  anchors: readonly X509Certificate[],
  nowMs: number,
): boolean {
  let current = cert;
  for (let depth = 0; depth <= MAX_CHAIN_DEPTH; depth++) {
    const anchor = anchors.find((a) => issuedBy(current, a));
    if (anchor) return validAt(anchor, nowMs);
    const next = intermediates.find((i) => i.ca && validAt(i, nowMs) && issuedBy(current, i));
    if (!next) return false;
    current = next;
  }
  return false;
}

/** The subject's common name, or undefined. */
export function commonName(cert: X509Certificate): string | undefined {
  const line = cert.subject.split('\n').find((l) => l.startsWith('CN='));
  return line?.slice('CN='.length);
}

/** The CA certificates of a leaf that parse as certificates; the controller checks them first. */
function usableCas(pems: readonly string[]): string[] {
  return pems.filter((pem) => {
    try {
      return new X509Certificate(pem).ca;
    } catch {
      return false;
    }
  });
}

function fromCloud(leaf: LeafIdentity): LeafCredentials {
  const cas = usableCas(leaf.caCertificates ?? []);
  return {
    deviceId: leaf.deviceId,
    keys: [...(leaf.keys ?? [])],
    thumbprints: (leaf.thumbprints ?? [])
      .map(normalizeThumbprint)
      .filter((t) => THUMBPRINT.test(t)),
    ...(cas.length ? { caCertificates: cas } : {}),
    source: 'cloud',
  };
}

function sameCredentials(a: LeafCredentials, b: LeafCredentials): boolean {
  const of = (c: LeafCredentials): string =>
    JSON.stringify([c.keys, c.thumbprints, c.caCertificates]);
  return of(a) === of(b);
}
