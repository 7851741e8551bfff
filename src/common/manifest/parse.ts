import { createHash } from 'node:crypto';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { ErrorCode, KedgeError } from '../errors.js';
import { MODULES_CONTENT_SCHEMA } from './schema.js';
import {
  DEFAULT_ROUTE_PRIORITY,
  DEFAULT_STARTUP_ORDER,
  DEFAULT_STORE_TTL_SECS,
  type DesiredDeployment,
  type DesiredHub,
  type DesiredModule,
  type DesiredRoute,
  type RawEdgeAgentDesired,
  type RawEdgeHubDesired,
  type RawModule,
  type RawModulesContent,
  type RawRouteObject,
} from './types.js';

/** One problem in a manifest, named by its JSON path. */
export interface ManifestProblem {
  /** Path such as `modulesContent.$edgeAgent["properties.desired"].modules.sensor.status`. */
  path: string;
  message: string;
}

/** A manifest that was rejected as a whole; `problems` name every bad path. */
export class ManifestError extends KedgeError {
  readonly problems: ManifestProblem[];

  constructor(problems: ManifestProblem[]) {
    super(ErrorCode.InvalidInput, `invalid deployment manifest: ${summarize(problems)}`);
    this.name = 'ManifestError';
    this.problems = problems;
  }
}

/** How many problems go into the one-line message; all of them stay in `problems`. */
const MAX_PROBLEMS_IN_MESSAGE = 5;
/** Length of the content-hash version used when the manifest carries no `$version`. */
const HASH_VERSION_LENGTH = 12;

function summarize(problems: ManifestProblem[]): string {
  const shown = problems.slice(0, MAX_PROBLEMS_IN_MESSAGE).map((p) => `${p.path}: ${p.message}`);
  const more = problems.length - shown.length;
  return shown.join('; ') + (more > 0 ? `; and ${more} more` : '');
}

let validator: ValidateFunction | undefined;

function validate(doc: unknown): ErrorObject[] {
  validator ??= new Ajv({ allErrors: true, strict: false }).compile(MODULES_CONTENT_SCHEMA);
  return validator(doc) ? [] : (validator.errors ?? []);
}

/** Appends a key to a path: `a.b` for identifiers, `a["properties.desired"]` otherwise. */
export function joinPath(base: string, key: string | number): string {
  if (typeof key === 'number') return `${base}[${key}]`;
  if (/^[A-Za-z_$][\w$-]*$/.test(key)) return base === '' ? key : `${base}.${key}`;
  return `${base}[${JSON.stringify(key)}]`;
}

function pointerToPath(prefix: string, pointer: string): string {
  return pointer
    .split('/')
    .slice(1)
    .map((s) => s.replaceAll('~1', '/').replaceAll('~0', '~'))
    .reduce<string>((acc, key) => joinPath(acc, key), prefix);
}

function describe(prefix: string, error: ErrorObject): ManifestProblem {
  const base = pointerToPath(prefix, error.instancePath);
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'required':
      return { path: joinPath(base, String(params.missingProperty)), message: 'required' };
    case 'additionalProperties':
      return { path: joinPath(base, String(params.additionalProperty)), message: 'unknown field' };
    case 'propertyNames':
      return { path: base, message: `invalid name ${JSON.stringify(params.propertyName)}` };
    case 'enum':
      return {
        path: base,
        message: `must be one of ${(params.allowedValues as unknown[]).join(', ')}`,
      };
    default:
      return { path: base, message: error.message ?? error.keyword };
  }
}

/** Removes ajv's follow-on noise: `oneOf`/`if` summaries and per-name pattern errors. */
function relevant(errors: ErrorObject[]): ErrorObject[] {
  return errors.filter((e) => e.keyword !== 'oneOf' && !e.propertyName);
}

/**
 * Finds the `modulesContent` object in either accepted form: the full document
 * `{ modulesContent }` (also `{ content: { modulesContent } }`), or the inner form itself.
 */
function locate(doc: unknown): { content: unknown; prefix: string } {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    return { content: doc, prefix: '' };
  }
  const record = doc as Record<string, unknown>;
  if ('modulesContent' in record)
    return { content: record.modulesContent, prefix: 'modulesContent' };
  const inner = record.content as Record<string, unknown> | undefined;
  if (typeof inner === 'object' && inner !== null && 'modulesContent' in inner) {
    return { content: inner.modulesContent, prefix: 'content.modulesContent' };
  }
  return { content: doc, prefix: '' };
}

/**
 * Validates an IoT Edge deployment manifest (schema 1.1) and normalizes it.
 * Accepts the full document (`{ "modulesContent": … }`) or the inner form.
 * @throws ManifestError (code `KEDGE_ERR_INVALID_INPUT`) naming every bad path.
 */
export function parseManifest(doc: unknown): DesiredDeployment {
  const { content, prefix } = locate(doc);
  if (typeof content !== 'object' || content === null || Array.isArray(content)) {
    throw new ManifestError([{ path: prefix || '(document)', message: 'must be an object' }]);
  }
  const schemaErrors = relevant(validate(content));
  if (schemaErrors.length > 0) {
    throw new ManifestError(schemaErrors.map((e) => describe(prefix, e)));
  }
  const problems: ManifestProblem[] = [];
  const result = normalize(content as RawModulesContent, prefix, problems);
  if (problems.length > 0) throw new ManifestError(problems);
  return result;
}

/**
 * Ties in startupOrder start in name order: case-insensitive, then by UTF-16 code units.
 * `localeCompare` would page in 2–3 MB of ICU collation data on every device for this sort.
 */
function byName(a: string, b: string): number {
  const [x, y] = [a.toLowerCase(), b.toLowerCase()];
  if (x !== y) return x < y ? -1 : 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

function normalize(
  content: RawModulesContent,
  prefix: string,
  problems: ManifestProblem[],
): DesiredDeployment {
  const agentPath = joinPath(joinPath(prefix, '$edgeAgent'), 'properties.desired');
  const agent: RawEdgeAgentDesired = content.$edgeAgent['properties.desired'];
  const modules = Object.entries(agent.modules ?? {})
    .map(([name, raw]) =>
      normalizeModule(name, raw, joinPath(joinPath(agentPath, 'modules'), name), problems),
    )
    .sort((a, b) => a.startupOrder - b.startupOrder || byName(a.name, b.name));
  checkModuleIds(modules, joinPath(agentPath, 'modules'), problems);
  const systemModules: DesiredDeployment['systemModules'] = {};
  for (const key of ['edgeAgent', 'edgeHub'] as const) {
    const raw = agent.systemModules?.[key];
    const at = joinPath(joinPath(agentPath, 'systemModules'), key);
    if (raw) systemModules[key] = normalizeModule(key, raw, at, problems);
  }
  const hubPath = joinPath(joinPath(prefix, '$edgeHub'), 'properties.desired');
  return {
    schemaVersion: agent.schemaVersion,
    version: agent.$version !== undefined ? String(agent.$version) : contentHash(content),
    registryCredentials: Object.values(agent.runtime.settings?.registryCredentials ?? {}),
    modules,
    systemModules,
    hub: normalizeHub(content.$edgeHub?.['properties.desired'], hubPath, problems),
    twins: twinsOf(content),
  };
}

/** Two modules may not share a hub identity: each moduleId names one module. */
function checkModuleIds(
  modules: readonly DesiredModule[],
  at: string,
  problems: ManifestProblem[],
): void {
  const seen = new Map<string, string>();
  for (const m of modules) {
    const other = seen.get(m.moduleId);
    if (other !== undefined)
      problems.push({
        path: joinPath(joinPath(at, m.name), 'moduleId'),
        message: `module id ${JSON.stringify(m.moduleId)} is already the id of module ${JSON.stringify(other)}`,
      });
    else seen.set(m.moduleId, m.name);
  }
}

function contentHash(content: unknown): string {
  return createHash('sha256')
    .update(JSON.stringify(content))
    .digest('hex')
    .slice(0, HASH_VERSION_LENGTH);
}

function twinsOf(content: RawModulesContent): Record<string, Record<string, unknown>> {
  const twins: Record<string, Record<string, unknown>> = {};
  for (const [name, value] of Object.entries(content)) {
    if (name === '$edgeAgent' || name === '$edgeHub' || value === undefined) continue;
    twins[name] = value['properties.desired'] as Record<string, unknown>;
  }
  return twins;
}

function normalizeModule(
  name: string,
  raw: RawModule,
  at: string,
  problems: ManifestProblem[],
): DesiredModule {
  const settingsPath = joinPath(at, 'settings');
  const module: DesiredModule = {
    name,
    moduleId: raw.moduleId ?? name,
    image: withDefaultTag(raw.settings.image),
    createOptions: parseCreateOptions(raw.settings, settingsPath, problems),
    env: Object.fromEntries(Object.entries(raw.env ?? {}).map(([k, v]) => [k, String(v.value)])),
    status: raw.status ?? 'running',
    restartPolicy: raw.restartPolicy ?? 'on-unhealthy',
    imagePullPolicy: raw.imagePullPolicy ?? 'on-create',
    startupOrder: raw.startupOrder ?? DEFAULT_STARTUP_ORDER,
  };
  if (raw.version !== undefined) module.version = raw.version;
  if (raw.specHash !== undefined) module.specHash = raw.specHash;
  if (raw.settings.digest !== undefined) module.digest = raw.settings.digest;
  return module;
}

/** Adds `:latest` when an image reference has neither a tag nor a digest (edgeAgent does). */
export function withDefaultTag(image: string): string {
  if (image.includes('@')) return image;
  const lastSegment = image.slice(image.lastIndexOf('/') + 1);
  return lastSegment.includes(':') ? image : `${image}:latest`;
}

/**
 * Reads `createOptions` in any of its three forms: an object, a JSON string, or a JSON string
 * split into `createOptions`, `createOptions01`…`createOptions99` (twin values are limited to
 * 512 bytes, so IoT Edge tooling splits long options).
 */
export function parseCreateOptions(
  settings: Record<string, unknown>,
  at: string,
  problems: ManifestProblem[],
): Record<string, unknown> {
  const keys = Object.keys(settings)
    .filter((k) => /^create[oO]ptions(\d{2})?$/.test(k))
    .sort((a, b) => chunkIndex(a) - chunkIndex(b));
  if (keys.length === 0) return {};
  const first = settings[keys[0]!];
  if (keys.length === 1 && typeof first === 'object' && first !== null) {
    return first as Record<string, unknown>;
  }
  const nonString = keys.find((k) => typeof settings[k] !== 'string');
  if (nonString !== undefined) {
    problems.push({
      path: joinPath(at, nonString),
      message: 'chunked createOptions must be strings',
    });
    return {};
  }
  const text = keys.map((k) => settings[k] as string).join('');
  if (text.trim() === '') return {};
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) {
      return parsed as Record<string, unknown>;
    }
    problems.push({ path: joinPath(at, keys[0]!), message: 'must be a JSON object' });
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    problems.push({ path: joinPath(at, keys[0]!), message: `invalid JSON: ${message}` });
  }
  return {};
}

function chunkIndex(key: string): number {
  const digits = key.slice('createOptions'.length);
  return digits === '' ? 0 : Number(digits);
}

function normalizeHub(
  raw: RawEdgeHubDesired | undefined,
  at: string,
  problems: ManifestProblem[],
): DesiredHub {
  const hub = hubSettings(raw);
  const objectRoutesAllowed = !/^1\.0(\.0)?$/.test(hub.schemaVersion);
  for (const [name, route] of Object.entries(raw?.routes ?? {})) {
    if (typeof route !== 'string' && !objectRoutesAllowed) {
      const path = joinPath(joinPath(at, 'routes'), name);
      problems.push({ path, message: 'route objects need $edgeHub schemaVersion 1.1 or later' });
    }
    hub.routes[name] = normalizeRoute(route);
  }
  return hub;
}

function hubSettings(raw: RawEdgeHubDesired | undefined): DesiredHub {
  const store = raw?.storeAndForwardConfiguration;
  const hub: DesiredHub = {
    schemaVersion: raw?.schemaVersion ?? '1.1',
    routes: {},
    storeAndForwardTimeToLiveSecs: store?.timeToLiveSecs ?? DEFAULT_STORE_TTL_SECS,
  };
  const maxSize = store?.storeLimits?.maxSizeBytes;
  if (maxSize !== undefined) hub.storeMaxSizeBytes = maxSize;
  return hub;
}

function normalizeRoute(route: string | RawRouteObject): DesiredRoute {
  if (typeof route === 'string') {
    return { route, priority: DEFAULT_ROUTE_PRIORITY, timeToLiveSecs: 0 };
  }
  return {
    route: route.route,
    priority: route.priority ?? DEFAULT_ROUTE_PRIORITY,
    timeToLiveSecs: route.timeToLiveSecs ?? 0,
  };
}
