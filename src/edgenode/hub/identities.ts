/**
 * Identities the hub authenticates: its modules (per-module keys and generation ids, persisted so
 * that modules keep working across hub restarts) and leaf devices (see {@link LeafIdentities}).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ErrorCode, KedgeError } from '../../common/errors.js';
import { resourceUri, verifySasToken } from '../../common/iothub/index.js';
import type { Logger } from '../../common/logger.js';
import { LeafIdentities } from './leaf-identities.js';
import type { LeafDeviceOptions } from './options.js';

/** An authenticated client. */
export interface Identity {
  deviceId: string;
  moduleId?: string;
  /** `d` or `d/m`: the MQTT client id and the twin key. */
  id: string;
  kind: 'module' | 'leaf';
}

/** A module's secret material. */
export interface ModuleCredentials {
  moduleId: string;
  generationId: string;
  /** Base64 HMAC key. Never logged. */
  key: string;
}

/** Module ids as IoT Edge allows them (and `$`-prefixed system modules are not ours to issue). */
const MODULE_ID = /^[A-Za-z0-9_-]{1,64}$/;
/** 32-byte keys, as IoT Hub generates. */
const KEY_BYTES = 32;

export class IdentityRegistry {
  readonly #deviceId: string;
  readonly #file: string;
  readonly #audienceHosts: string[];
  #modules = new Map<string, ModuleCredentials>();
  /** Leaf devices: the static list and the EdgeDevices synced from the cloud. */
  readonly leaves: LeafIdentities;

  /** `audienceHosts`: host names accepted in a token's `sr` (IoT Hub host, gateway host). */
  constructor(dataDir: string, deviceId: string, audienceHosts: string[], log?: Logger) {
    this.#deviceId = deviceId;
    this.leaves = new LeafIdentities(dataDir, log);
    this.#file = path.join(dataDir, 'module-identities.json');
    this.#audienceHosts = audienceHosts;
    if (existsSync(this.#file)) {
      const saved = JSON.parse(readFileSync(this.#file, 'utf8')) as ModuleCredentials[];
      for (const m of saved) this.#modules.set(m.moduleId, m);
    }
  }

  /** The edge device id. */
  get deviceId(): string {
    return this.#deviceId;
  }

  /** Replaces the static leaf-device list; returns the ids whose access was withdrawn or changed. */
  setLeafDevices(devices: LeafDeviceOptions[]): string[] {
    return this.leaves.setStatic(devices);
  }

  /** Registers a module (idempotent: an existing module keeps its key and generation id). */
  ensureModule(moduleId: string): ModuleCredentials {
    if (!MODULE_ID.test(moduleId))
      throw new KedgeError(ErrorCode.InvalidInput, `invalid module id '${moduleId}'`);
    let creds = this.#modules.get(moduleId);
    if (!creds) {
      creds = {
        moduleId,
        generationId: randomUUID(),
        key: randomBytes(KEY_BYTES).toString('base64'),
      };
      this.#modules.set(moduleId, creds);
      this.#save();
    }
    return creds;
  }

  /** Forgets a module; its key stops working immediately. */
  removeModule(moduleId: string): void {
    if (this.#modules.delete(moduleId)) this.#save();
  }

  /** The module's credentials, if registered. */
  module(moduleId: string): ModuleCredentials | undefined {
    return this.#modules.get(moduleId);
  }

  /** Registered module ids. */
  moduleIds(): string[] {
    return [...this.#modules.keys()];
  }

  #save(): void {
    const tmp = `${this.#file}.tmp`;
    writeFileSync(tmp, JSON.stringify([...this.#modules.values()]), { mode: 0o600 });
    renameSync(tmp, this.#file);
  }

  /** True for a leaf device allowed to connect through this hub. */
  hasLeaf(deviceId: string): boolean {
    return this.leaves.has(deviceId);
  }

  #keysFor(deviceId: string, moduleId: string | undefined): string[] {
    if (moduleId !== undefined) {
      if (deviceId !== this.#deviceId) return [];
      const m = this.#modules.get(moduleId);
      return m ? [m.key] : [];
    }
    return this.leaves.get(deviceId)?.keys ?? [];
  }

  /**
   * Authenticates an MQTT CONNECT. Throws `KEDGE_ERR_UNAUTHORIZED` with a loggable reason
   * (`unknown identity`, `bad username`, `SAS token expired`, …).
   */
  authenticate(clientId: string, username: string, password: string): Identity {
    const { deviceId, moduleId } = parseClientId(clientId);
    if (this.#keysFor(deviceId, moduleId).length === 0)
      throw new KedgeError(ErrorCode.Unauthorized, 'unknown identity');
    this.#checkUsername(clientId, username);
    return this.authenticateToken(deviceId, moduleId, password);
  }

  /**
   * Authenticates an MQTT CONNECT of a leaf device by its TLS client certificate chain (DER, its
   * own first), as IoT
   * Hub's X.509 devices connect: a username naming the device and no password. Throws
   * `KEDGE_ERR_UNAUTHORIZED` with a loggable reason.
   */
  authenticateCertificate(clientId: string, username: string, chain: readonly Buffer[]): Identity {
    const { deviceId, moduleId } = parseClientId(clientId);
    if (moduleId !== undefined || !this.leaves.has(deviceId))
      throw new KedgeError(ErrorCode.Unauthorized, 'unknown identity');
    this.#checkUsername(clientId, username);
    this.leaves.verifyCertificate(deviceId, chain);
    return { deviceId, id: deviceId, kind: 'leaf' };
  }

  /** Throws unless the username names the client id's identity on a known host. */
  #checkUsername(clientId: string, username: string): void {
    const hostOk = this.#audienceHosts.some((h) =>
      username.toLowerCase().startsWith(`${h}/${clientId}/`.toLowerCase()),
    );
    if (!hostOk || !username.includes('api-version='))
      throw new KedgeError(ErrorCode.Unauthorized, 'bad username');
  }

  /**
   * Checks a SAS token presented by `deviceId[/moduleId]` (an MQTT password or an HTTP
   * `Authorization` header). Throws `KEDGE_ERR_UNAUTHORIZED` with a loggable reason.
   */
  authenticateToken(deviceId: string, moduleId: string | undefined, token: string): Identity {
    const keys = this.#keysFor(deviceId, moduleId);
    if (keys.length === 0) throw new KedgeError(ErrorCode.Unauthorized, 'unknown identity');
    verifySasToken(token, {
      audiences: this.#audienceHosts.map((h) => resourceUri(h, deviceId, moduleId)),
      keysBase64: keys,
    });
    const id = moduleId === undefined ? deviceId : `${deviceId}/${moduleId}`;
    return moduleId === undefined
      ? { deviceId, id, kind: 'leaf' }
      : { deviceId, moduleId, id, kind: 'module' };
  }
}

/** `device` or `device/module`; throws `KEDGE_ERR_UNAUTHORIZED` for anything else. */
function parseClientId(clientId: string): { deviceId: string; moduleId: string | undefined } {
  const parts = clientId.split('/');
  const [deviceId, moduleId] = parts;
  if (!deviceId || parts.length > 2 || (parts.length === 2 && !moduleId))
    throw new KedgeError(ErrorCode.Unauthorized, 'malformed client id');
  return { deviceId, moduleId };
}
