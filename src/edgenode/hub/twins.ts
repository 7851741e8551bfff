/**
 * Module and leaf-device twins kept by the hub. Desired properties come from the deployment
 * (`<module>.properties.desired`) or from the upstream; reported properties are stored locally
 * (JSON file, atomic rename) and handed to the upstream through the durable queue.
 *
 * The two desired sources write one document, last writer per key: a deployment change applies
 * only the keys the deployment itself changed since its previous version, so a key an upstream
 * patch set stays until the deployment changes that key (docs/adr/0019-live-desired-properties.md).
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ErrorCode, KedgeError } from '../../common/errors.js';

type Json = Record<string, unknown>;

/** One twin section with its version. */
interface Section {
  props: Json;
  version: number;
}

interface Twin {
  desired: Section;
  reported: Section;
  /**
   * The desired properties the deployment last set. Absent in twin files written before it
   * existed: then the current desired document stands for it.
   */
  deployment?: Json;
}

/**
 * Largest reported-properties document (JSON bytes), as IoT Hub's 32 KB: the whole document is
 * rewritten on every patch, so its size bounds that cost and the twin file.
 */
export const MAX_REPORTED_BYTES = 32 * 1024;
/** Deepest patch nesting accepted (IoT Hub allows 10 levels in twins). */
const MAX_PATCH_DEPTH = 10;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function depthOf(v: unknown): number {
  if (!isObject(v)) return 0;
  return 1 + Math.max(0, ...Object.values(v).map(depthOf));
}

/** JSON merge patch (RFC 7386): `null` deletes, objects merge, everything else replaces. */
export function mergePatch(target: Json, patch: Json): Json {
  const out: Json = { ...target };
  for (const [k, v] of Object.entries(patch)) {
    if (k.startsWith('$')) continue;
    if (v === null) delete out[k];
    else if (isObject(v)) out[k] = mergePatch(isObject(out[k]) ? out[k] : {}, v);
    else out[k] = v;
  }
  return out;
}

/** The merge patch that turns `from` into `to` (removed keys become `null`). */
export function diffPatch(from: Json, to: Json): Json {
  const patch: Json = {};
  for (const k of Object.keys(from)) if (!(k in to)) patch[k] = null;
  for (const [k, v] of Object.entries(to)) {
    const old = from[k];
    if (isObject(v) && isObject(old)) {
      const sub = diffPatch(old, v);
      if (Object.keys(sub).length > 0) patch[k] = sub;
    } else if (JSON.stringify(old) !== JSON.stringify(v)) patch[k] = v;
  }
  return patch;
}

export class TwinStore {
  readonly #file: string;
  #twins = new Map<string, Twin>();

  constructor(dataDir: string) {
    this.#file = path.join(dataDir, 'twins.json');
    if (existsSync(this.#file)) {
      const saved = JSON.parse(readFileSync(this.#file, 'utf8')) as Record<string, Twin>;
      this.#twins = new Map(Object.entries(saved));
    }
  }

  #twin(id: string): Twin {
    let twin = this.#twins.get(id);
    if (!twin) {
      twin = { desired: { props: {}, version: 1 }, reported: { props: {}, version: 1 } };
      this.#twins.set(id, twin);
    }
    return twin;
  }

  #save(): void {
    const tmp = `${this.#file}.tmp`;
    writeFileSync(tmp, JSON.stringify(Object.fromEntries(this.#twins)));
    renameSync(tmp, this.#file);
  }

  /** The twin document as the SDK's GET expects it. */
  document(id: string): { desired: Json; reported: Json } {
    const t = this.#twin(id);
    return {
      desired: { ...t.desired.props, $version: t.desired.version },
      reported: { ...t.reported.props, $version: t.reported.version },
    };
  }

  /**
   * Sets the deployment's desired properties. What the deployment changed since its previous
   * version is merged into the desired document; keys it did not change keep their value, an
   * upstream patch's included. Returns the patch to push (only what changed, `null` for removed
   * keys) with its new `$version`, or undefined when the document did not change.
   */
  setDesired(id: string, desired: Json): Json | undefined {
    const t = this.#twin(id);
    const deploymentChange = diffPatch(t.deployment ?? t.desired.props, desired);
    const layerChanged = t.deployment === undefined || Object.keys(deploymentChange).length > 0;
    t.deployment = desired;
    const patch = diffPatch(t.desired.props, mergePatch(t.desired.props, deploymentChange));
    if (Object.keys(patch).length > 0) return this.patchDesired(id, patch);
    if (layerChanged) this.#save();
    return undefined;
  }

  /** Applies a desired patch (from the upstream). Returns the patch with its new `$version`. */
  patchDesired(id: string, patch: Json): Json {
    const t = this.#twin(id);
    t.desired = { props: mergePatch(t.desired.props, patch), version: t.desired.version + 1 };
    this.#save();
    return { ...patch, $version: t.desired.version };
  }

  /**
   * Applies a reported patch from the device; returns the new reported `$version`. With
   * `ifVersion` (the `$version` the client named) the patch applies only to that version, as IoT
   * Hub's optimistic concurrency: a stale one throws {@link StaleVersionError}.
   */
  patchReported(id: string, patch: unknown, ifVersion?: number): number {
    if (ifVersion !== undefined && ifVersion !== this.#twin(id).reported.version)
      throw new StaleVersionError(ifVersion, this.#twin(id).reported.version);
    if (!isObject(patch))
      throw new KedgeError(ErrorCode.InvalidInput, 'reported patch must be a JSON object');
    if (depthOf(patch) > MAX_PATCH_DEPTH)
      throw new KedgeError(ErrorCode.LimitExceeded, 'reported patch nests too deeply');
    const t = this.#twin(id);
    const props = mergePatch(t.reported.props, patch);
    const bytes = Buffer.byteLength(JSON.stringify(props));
    if (bytes > MAX_REPORTED_BYTES)
      throw new KedgeError(
        ErrorCode.LimitExceeded,
        `reported properties would be ${bytes} bytes, over the limit of ${MAX_REPORTED_BYTES}`,
      );
    t.reported = { props, version: t.reported.version + 1 };
    this.#save();
    return t.reported.version;
  }
}

/** A reported patch named a `$version` that is no longer current (IoT Hub answers 412). */
export class StaleVersionError extends KedgeError {
  constructor(given: number, current: number) {
    super(
      ErrorCode.InvalidInput,
      `the patch applies to reported $version ${given}, but the twin is at ${current}`,
    );
  }
}
