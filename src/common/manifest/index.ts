/**
 * The Azure IoT Edge deployment manifest, shared by the agent, the hub and the controller:
 * raw types, the ajv schema, and {@link parseManifest}, which validates and normalizes.
 */
export * from './types.js';
export { MODULES_CONTENT_SCHEMA } from './schema.js';
export {
  ManifestError,
  parseManifest,
  parseCreateOptions,
  withDefaultTag,
  joinPath,
  type ManifestProblem,
} from './parse.js';
