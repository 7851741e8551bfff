import { createHash } from 'node:crypto';
import type { DesiredModule } from '../../common/manifest/index.js';
import type { ModuleSpec } from './types.js';

/** JSON with object keys sorted, so equal configurations hash equally. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** Hex characters of the config hash label: 64 bits, plenty to tell configurations apart. */
const HASH_LENGTH = 16;

/**
 * The runtime spec of a desired module. The hash covers what needs a new instance when it
 * changes (image, digest, version, createOptions, env incl. identity env, runtime settings), and
 * not what the agent can change in place (desired status, restart and pull policy, startupOrder).
 */
export function moduleSpec(
  module: DesiredModule,
  identityEnv: Record<string, string>,
  salt: string,
): ModuleSpec {
  const env = { ...module.env, ...identityEnv };
  // moduleId is not hashed itself: it is IOTEDGE_MODULEID in `env`, so a new id recreates anyway,
  // and hashes from before moduleId existed stay equal (adoption restarts nothing).
  const hashed = {
    name: module.name,
    image: module.image,
    digest: module.digest,
    version: module.version,
    createOptions: module.createOptions,
    env,
    salt,
  };
  const configHash = createHash('sha256')
    .update(canonicalJson(hashed))
    .digest('hex')
    .slice(0, HASH_LENGTH);
  return {
    name: module.name,
    moduleId: module.moduleId,
    image: module.image,
    createOptions: module.createOptions,
    env,
    configHash,
    restartPolicy: module.restartPolicy,
    desiredStatus: module.status,
    ...(module.specHash !== undefined ? { specHash: module.specHash } : {}),
  };
}
