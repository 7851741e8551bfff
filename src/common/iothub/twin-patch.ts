/**
 * Twin documents and their patches (JSON merge patch, RFC 7396), as IoT Hub applies them: `null`
 * deletes, objects merge, anything else replaces. Keys starting with `$` are twin metadata
 * (`$version`, `$metadata`) and never properties.
 */
import { ErrorCode, KedgeError } from '../errors.js';

export type TwinProps = Record<string, unknown>;

/** IoT Hub's limit for each of a twin's desired and reported documents. */
export const MAX_TWIN_SECTION_BYTES = 32 * 1024;
/** Deepest nesting IoT Hub accepts in a twin document. */
export const MAX_TWIN_DEPTH = 10;

export function isJsonObject(v: unknown): v is TwinProps {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** How deeply objects nest in `v` (0 for a scalar). */
export function depthOf(v: unknown): number {
  if (!isJsonObject(v)) return 0;
  return 1 + Math.max(0, ...Object.values(v).map(depthOf));
}

/** Applies `patch` to `target`; neither is changed. */
export function mergePatch(target: TwinProps, patch: TwinProps): TwinProps {
  const out: TwinProps = { ...target };
  for (const [k, v] of Object.entries(patch)) {
    if (k.startsWith('$')) continue;
    if (v === null) delete out[k];
    else if (isJsonObject(v)) out[k] = mergePatch(isJsonObject(out[k]) ? out[k] : {}, v);
    else out[k] = v;
  }
  return out;
}

/** The merge patch that turns `from` into `to` (removed keys become `null`). */
export function diffPatch(from: TwinProps, to: TwinProps): TwinProps {
  const patch: TwinProps = {};
  for (const k of Object.keys(from)) if (!(k in to)) patch[k] = null;
  for (const [k, v] of Object.entries(to)) {
    const old = from[k];
    if (isJsonObject(v) && isJsonObject(old)) {
      const sub = diffPatch(old, v);
      if (Object.keys(sub).length > 0) patch[k] = sub;
    } else if (JSON.stringify(old) !== JSON.stringify(v)) patch[k] = v;
  }
  return patch;
}

/**
 * One patch with the effect of `first` then `second`, its `null`s kept: a layer of patches that is
 * merged into a document kept elsewhere must still delete what it deleted.
 */
export function composePatch(first: TwinProps, second: TwinProps): TwinProps {
  const out: TwinProps = { ...first };
  for (const [k, v] of Object.entries(second)) {
    if (k.startsWith('$')) continue;
    out[k] = isJsonObject(v) && isJsonObject(out[k]) ? composePatch(out[k], v) : v;
  }
  return out;
}

/**
 * `layer` with `patch` composed into it; throws `LimitExceeded` when the result is over
 * {@link MAX_TWIN_SECTION_BYTES} as JSON.
 */
export function composeWithin(layer: TwinProps, patch: TwinProps): TwinProps {
  const next = composePatch(layer, patch);
  const bytes = Buffer.byteLength(JSON.stringify(next));
  if (bytes > MAX_TWIN_SECTION_BYTES)
    throw new KedgeError(
      ErrorCode.LimitExceeded,
      `desired properties would be ${bytes} bytes, over the limit of ${MAX_TWIN_SECTION_BYTES}`,
    );
  return next;
}
