/**
 * `kedge manifest import`: Azure IoT Edge deployment manifests to EdgeDeployment YAML.
 */
import { stringify } from 'yaml';
export { importManifest, parseSelector, type ImportOptions, type ImportResult } from './convert.js';
export { importDocument, parsePriority, type DocumentImportOptions } from './document.js';
export { importLayered, isLayered } from './layered.js';
export { fillTemplate, parseSetPairs, type TemplateValues } from './template.js';
export { toDnsLabel, uniqueLabels } from './names.js';

/** Multi-document YAML of `objects`, with no line folding so routes stay on one line. */
export function toYaml(objects: readonly object[]): string {
  return objects.map((o) => stringify(o, { lineWidth: 0 })).join('---\n');
}
