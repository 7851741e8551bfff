/**
 * The whole of `kedge manifest import` for one parsed JSON document: placeholders filled, then a
 * layered or an ordinary deployment manifest converted.
 */
import { ErrorCode, KedgeError } from '../../common/errors.js';
import { importManifest, type ImportOptions, type ImportResult } from './convert.js';
import { importLayered, isLayered } from './layered.js';
import { fillTemplate } from './template.js';

/** {@link importManifest}'s options, and what the CLI adds around it. */
export interface DocumentImportOptions extends ImportOptions {
  /** `--set NAME=VALUE` values for `deployment.template.json` placeholders. */
  set?: ReadonlyMap<string, string>;
  /** Where placeholders not in `set` are looked up; the CLI passes `process.env`. */
  env?: Readonly<Record<string, string | undefined>>;
  /** spec.priority, over the at-scale deployment's own `priority`. */
  priority?: number;
}

/** The largest priority the EdgeDeployment CRD accepts (a 32-bit signed integer). */
const MAX_PRIORITY = 2_147_483_647;

/**
 * Converts a deployment manifest, a layered deployment manifest or a `deployment.template.json`
 * (see {@link isTemplate}) into an EdgeDeployment.
 * @throws KedgeError `KEDGE_ERR_INVALID_INPUT` naming every unresolved placeholder, or every bad
 * path of a manifest that does not validate; nothing is converted then.
 */
export function importDocument(doc: unknown, options: DocumentImportOptions = {}): ImportResult {
  const set = options.set ?? new Map<string, string>();
  const filled = isTemplate(doc, options)
    ? fillTemplate(doc, { set, env: options.env ?? {} })
    : doc;
  const layered = isLayered(filled);
  const result = layered ? importLayered(filled, options) : importManifest(filled, options);
  const spec = result.objects[0]!.spec;
  if (options.priority !== undefined) spec.priority = options.priority;
  if (layered && spec.priority === undefined)
    result.warnings.push(
      'layered deployment without a priority: it gets 0, and at equal priority the deployment whose name sorts first wins modules and twin paths; pass --priority',
    );
  return result;
}

/**
 * Whether placeholders are filled: for a `deployment.template.json` (the dev tools' `*.template.json`
 * names, or the `$schema-template` key they write), or when `--set` gives values. An ordinary
 * manifest is taken as it is, so `$PORT` in a module's shell command stays for the container.
 */
function isTemplate(doc: unknown, options: DocumentImportOptions): boolean {
  if ((options.set?.size ?? 0) > 0) return true;
  if (/\.template$/i.test(options.sourceName ?? '')) return true;
  return typeof doc === 'object' && doc !== null && '$schema-template' in doc;
}

/**
 * Parses `--priority`.
 * @throws KedgeError `KEDGE_ERR_INVALID_INPUT` for anything but an integer 0…2147483647.
 */
export function parsePriority(text: string): number {
  const value = Number(text);
  if (!/^\d+$/.test(text.trim()) || value > MAX_PRIORITY) {
    throw new KedgeError(
      ErrorCode.InvalidInput,
      `--priority ${JSON.stringify(text)} is not an integer from 0 to ${MAX_PRIORITY}`,
    );
  }
  return value;
}
