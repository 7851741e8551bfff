/**
 * Module and leaf-device twins kept by the hub. Desired properties come from the deployment
 * (`<module>.properties.desired`) or from the upstream; reported properties are stored locally
 * (JSON file, atomic rename) and handed to the upstream through the durable queue.
 *
 * Two desired layers write one document, last writer per key: the deployment's
 * `desiredProperties` and the service API's patches (`kedge twin patch`). Each layer applies only
 * the keys it changed since its previous version, so a key one layer set stays until a layer
 * changes that key again (docs/adr/0019-live-desired-properties.md).
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ErrorCode, KedgeError } from '../../common/errors.js';
import {
  depthOf,
  diffPatch,
  isJsonObject,
  MAX_TWIN_DEPTH,
  MAX_TWIN_SECTION_BYTES,
  mergePatch,
  type TwinProps,
} from '../../common/iothub/twin-patch.js';

type Json = TwinProps;

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
  /** The desired patches the service API sent, composed into one (its `null`s kept). */
  service?: Json;
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
   * Sets the deployment's desired properties. Returns the patch to push (only what changed, `null`
   * for removed keys) with its new `$version`, or undefined when the document did not change.
   */
  setDesired(id: string, desired: Json): Json | undefined {
    return this.#setLayer(id, 'deployment', desired);
  }

  /**
   * Sets the service API's desired layer: every patch sent through the cloud for this twin,
   * composed. Returns the patch to push as {@link setDesired} does.
   */
  setServiceDesired(id: string, layer: Json): Json | undefined {
    return this.#setLayer(id, 'service', layer);
  }

  /**
   * What `layer` changed since its previous value is merged into the desired document; keys it
   * did not change keep their value, whichever layer set them.
   */
  #setLayer(id: string, layer: 'deployment' | 'service', value: Json): Json | undefined {
    const t = this.#twin(id);
    // A twin file from before layers existed: its whole desired document was the deployment's.
    const previous = t[layer] ?? (layer === 'deployment' ? t.desired.props : {});
    const change = diffPatch(previous, value);
    const layerChanged = t[layer] === undefined || Object.keys(change).length > 0;
    t[layer] = value;
    const patch = diffPatch(t.desired.props, mergePatch(t.desired.props, change));
    if (Object.keys(patch).length > 0) return this.#patchDesired(t, patch);
    if (layerChanged) this.#save();
    return undefined;
  }

  #patchDesired(t: Twin, patch: Json): Json {
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
    if (!isJsonObject(patch))
      throw new KedgeError(ErrorCode.InvalidInput, 'reported patch must be a JSON object');
    if (depthOf(patch) > MAX_TWIN_DEPTH)
      throw new KedgeError(ErrorCode.LimitExceeded, 'reported patch nests too deeply');
    const t = this.#twin(id);
    const props = mergePatch(t.reported.props, patch);
    const bytes = Buffer.byteLength(JSON.stringify(props));
    if (bytes > MAX_TWIN_SECTION_BYTES)
      throw new KedgeError(
        ErrorCode.LimitExceeded,
        `reported properties would be ${bytes} bytes, over the limit of ${MAX_TWIN_SECTION_BYTES}`,
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
