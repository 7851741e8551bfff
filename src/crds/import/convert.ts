import {
  parseManifest,
  type DesiredDeployment,
  type DesiredModule,
  type RawEdgeAgentDesired,
  type RawEdgeHubDesired,
  type RawModule,
  type RawModulesContent,
  type RegistryCredential,
} from '../../common/manifest/index.js';
import { parseRoute } from '../../common/routes/index.js';
import { ErrorCode, KedgeError } from '../../common/errors.js';
import { API_VERSION } from '../common.js';
import type {
  DeploymentRoute,
  EdgeDeployment,
  EdgeDeploymentSpec,
  EdgeModule,
  LabelSelector,
} from '../types.generated.js';
import { isDnsLabel, toDnsLabel, uniqueLabels } from './names.js';
import { runtimeSettingWarnings } from './settings.js';

/** Options of {@link importManifest}. */
export interface ImportOptions {
  /** metadata.name of the EdgeDeployment. Defaults to the at-scale `id`, else `sourceName`. */
  name?: string;
  /** metadata.namespace; left out when not given, so `kubectl apply -n` decides. */
  namespace?: string;
  /** matchLabels of spec.selector. Defaults to the at-scale targetCondition when it is simple. */
  selector?: Record<string, string>;
  /** Name of the dockerconfigjson Secret for registry credentials. Defaults to `<name>-registry`. */
  registrySecret?: string;
  /** The input's file name without extension, the last-resort default name. */
  sourceName?: string;
}

/** The converted objects and everything that was not carried over, one line each. */
export interface ImportResult {
  objects: EdgeDeployment[];
  warnings: string[];
}

/** What the `$edgeAgent` restart policy is when a module leaves it out (edgeAgent's default). */
const EDGE_AGENT_DEFAULT_RESTART = 'on-unhealthy';
/** The largest store-and-forward TTL the EdgeDeployment CRD accepts (one year, in seconds). */
const MAX_TTL_SECS = 31_536_000;
const PULL_POLICY = { 'on-create': 'IfNotPresent', never: 'Never', always: 'Always' } as const;

/** The fields of an at-scale deployment (`az iot edge deployment create --content …`) kedge uses. */
interface AtScaleEnvelope {
  id?: unknown;
  priority?: unknown;
  targetCondition?: unknown;
  labels?: unknown;
  metrics?: unknown;
}

/**
 * Converts an Azure IoT Edge deployment manifest (the full document, the inner `modulesContent`
 * form, or an at-scale deployment with `content.modulesContent`) into an EdgeDeployment.
 * Secrets are never copied: registry credentials become an `imagePullSecrets` reference.
 * @throws KedgeError `KEDGE_ERR_INVALID_INPUT` for a manifest that does not validate.
 */
export function importManifest(doc: unknown, options: ImportOptions = {}): ImportResult {
  const desired = parseManifest(doc);
  const envelope = envelopeOf(doc);
  const content = contentOf(doc);
  const warnings: string[] = [];
  const name = deploymentName(options, envelope, warnings);
  const agent = content.$edgeAgent['properties.desired'];
  const hub = content.$edgeHub?.['properties.desired'];
  const deployment: EdgeDeployment = {
    apiVersion: API_VERSION,
    kind: 'EdgeDeployment',
    metadata: { name, ...(options.namespace ? { namespace: options.namespace } : {}) },
    spec: { selector: selectorOf(options, envelope, warnings) },
  };
  const priority = priorityOf(envelope, warnings);
  if (priority !== undefined) deployment.spec.priority = priority;
  convertModules({ content, desired, spec: deployment.spec }, warnings);
  const routes = convertRoutes(hub, warnings);
  if (routes.length > 0) deployment.spec.routes = routes;
  const ttl = storeTtl(hub, warnings);
  if (ttl !== undefined) deployment.spec.hub = { storeAndForward: { timeToLiveSecs: ttl } };
  const credentials = desired.registryCredentials;
  if (credentials.length > 0) {
    const secret = options.registrySecret ?? `${name.slice(0, REGISTRY_PREFIX_MAX)}-registry`;
    deployment.spec.imagePullSecrets = [{ name: secret }];
    warnings.push(registryWarning(secret, credentials, options.namespace));
  }
  warnings.push(...agentWarnings(agent), ...hubWarnings(hub), ...envelopeWarnings(envelope));
  warnings.push(...runtimeSettingWarnings(content));
  return { objects: [deployment], warnings };
}

/** Room left in a 63-character name for the `-registry` suffix. */
const REGISTRY_PREFIX_MAX = 54;

/**
 * Converts the modules and their twins into `spec.modules`. A module
 * whose IoT Edge name is not a DNS label gets a label as `name` and keeps its IoT Edge name as
 * `moduleId`, so its IoT Hub identity, and every route and method call naming it, stays the same.
 */
function convertModules(
  input: { content: RawModulesContent; desired: DesiredDeployment; spec: EdgeDeploymentSpec },
  warnings: string[],
): void {
  const raws = input.content.$edgeAgent['properties.desired'].modules ?? {};
  const renames = uniqueLabels(Object.keys(raws), 'module');
  for (const [from, to] of renames) {
    if (from !== to)
      warnings.push(
        `module "${from}" runs in container "${to}" (container names are DNS-1123 labels); its module id stays "${from}"`,
      );
  }
  const normalized = new Map(input.desired.modules.map((m) => [m.name, m]));
  const modules = Object.entries(raws).map(([name, raw]) =>
    convertModule({ name, raw, normalized: normalized.get(name)!, renames }, warnings),
  );
  attachTwins(input.content, modules, renames, warnings);
  if (modules.length > 0) input.spec.modules = modules;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function envelopeOf(doc: unknown): AtScaleEnvelope {
  return isRecord(doc) && isRecord(doc.content) ? doc : {};
}

/** The `modulesContent` object; parseManifest has already checked it is there and valid. */
function contentOf(doc: unknown): RawModulesContent {
  const record = doc as Record<string, unknown>;
  if (isRecord(record.modulesContent)) return record.modulesContent as RawModulesContent;
  if (isRecord(record.content) && isRecord(record.content.modulesContent)) {
    return record.content.modulesContent as RawModulesContent;
  }
  return doc as RawModulesContent;
}

function deploymentName(
  options: ImportOptions,
  envelope: AtScaleEnvelope,
  warnings: string[],
): string {
  if (options.name !== undefined) {
    if (!isDnsLabel(options.name)) {
      throw new KedgeError(
        ErrorCode.InvalidInput,
        `--name ${JSON.stringify(options.name)} is not a DNS-1123 label (lower-case letters, digits and -)`,
      );
    }
    return options.name;
  }
  const source = typeof envelope.id === 'string' ? envelope.id : (options.sourceName ?? '');
  const name = toDnsLabel(source, 'imported');
  if (name !== source)
    warnings.push(`deployment named "${name}" (from "${source}"); pass --name to choose`);
  return name;
}

interface ModuleInput {
  name: string;
  raw: RawModule;
  normalized: DesiredModule;
  renames: ReadonlyMap<string, string>;
}

function convertModule(input: ModuleInput, warnings: string[]): EdgeModule {
  const { raw, normalized } = input;
  const image = raw.settings.digest
    ? `${raw.settings.image}@${raw.settings.digest}`
    : raw.settings.image;
  const module: EdgeModule = { name: input.renames.get(input.name)!, image };
  if (module.name !== input.name) module.moduleId = input.name;
  if (raw.imagePullPolicy) module.imagePullPolicy = PULL_POLICY[raw.imagePullPolicy];
  const env = Object.entries(normalized.env).map(([envName, value]) => ({ name: envName, value }));
  if (env.length > 0) module.env = env;
  if (Object.keys(normalized.createOptions).length > 0)
    module.createOptions = normalized.createOptions;
  // kedge's default is `always`, edgeAgent's is `on-unhealthy`: always write it, so behaviour holds.
  module.restartPolicy = raw.restartPolicy ?? EDGE_AGENT_DEFAULT_RESTART;
  if (raw.status) module.desiredStatus = raw.status;
  if (raw.startupOrder !== undefined) module.startupOrder = raw.startupOrder;
  if (raw.version !== undefined) {
    warnings.push(
      `module "${input.name}": version "${raw.version}" not carried over (kedge recreates a module whenever its spec changes)`,
    );
  }
  return module;
}

/** Puts `<module>.properties.desired` into each module's desiredProperties. */
function attachTwins(
  content: RawModulesContent,
  modules: EdgeModule[],
  renames: ReadonlyMap<string, string>,
  warnings: string[],
): void {
  for (const [key, twin] of Object.entries(content)) {
    if (key === '$edgeAgent' || key === '$edgeHub' || twin === undefined) continue;
    const target = modules.find((m) => m.name === renames.get(key));
    if (!target) {
      warnings.push(`twin of "${key}" not carried over: there is no module "${key}"`);
      continue;
    }
    const desired = twin['properties.desired'] as Record<string, unknown>;
    const dropped = Object.keys(desired).filter((k) => k.startsWith('$'));
    if (dropped.length > 0) {
      warnings.push(
        `twin of "${key}": ${dropped.join(', ')} not carried over (the hub sets twin metadata)`,
      );
    }
    const kept = Object.fromEntries(Object.entries(desired).filter(([k]) => !k.startsWith('$')));
    if (Object.keys(kept).length > 0) target.desiredProperties = kept;
  }
}

/** Routes are kept as written: they name modules by module id, which import never changes. */
function convertRoutes(hub: RawEdgeHubDesired | undefined, warnings: string[]): DeploymentRoute[] {
  const entries = Object.entries(hub?.routes ?? {});
  const names = uniqueLabels(
    entries.map(([n]) => n),
    'route',
  );
  return entries.map(([routeName, value]) => {
    const object = typeof value === 'string' ? { route: value } : value;
    const route: DeploymentRoute = {
      name: names.get(routeName)!,
      route: object.route,
    };
    if (object.priority !== undefined) route.priority = object.priority;
    if (object.timeToLiveSecs !== undefined) route.timeToLiveSecs = object.timeToLiveSecs;
    routeWarnings(routeName, route, warnings);
    return route;
  });
}

function routeWarnings(original: string, route: DeploymentRoute, warnings: string[]): void {
  if (route.name !== original) {
    warnings.push(
      `route "${original}" renamed to "${route.name}": route names are DNS-1123 labels`,
    );
  }
  if (route.timeToLiveSecs !== undefined && route.timeToLiveSecs > MAX_TTL_SECS) {
    warnings.push(`route "${original}": timeToLiveSecs capped at ${MAX_TTL_SECS} (one year)`);
    route.timeToLiveSecs = MAX_TTL_SECS;
  }
  try {
    parseRoute(route.route!);
  } catch (err) {
    warnings.push(
      `route "${original}" does not parse (${(err as Error).message}); the EdgeDeployment will report it`,
    );
  }
}

function storeTtl(hub: RawEdgeHubDesired | undefined, warnings: string[]): number | undefined {
  const ttl = hub?.storeAndForwardConfiguration?.timeToLiveSecs;
  if (ttl === undefined) return undefined;
  if (ttl < 0 || ttl > MAX_TTL_SECS) {
    warnings.push(
      `storeAndForwardConfiguration.timeToLiveSecs ${ttl} is outside 0…${MAX_TTL_SECS}; set to ${MAX_TTL_SECS}`,
    );
    return MAX_TTL_SECS;
  }
  return ttl;
}

function registryWarning(
  secret: string,
  credentials: readonly RegistryCredential[],
  namespace: string | undefined,
): string {
  const ns = namespace ? ` -n ${namespace}` : '';
  const registries = credentials.map((c) => c.address).join(', ');
  const first = credentials[0]!;
  const create =
    credentials.length === 1
      ? `kubectl create secret docker-registry ${secret}${ns} --docker-server=${first.address} --docker-username=${first.username} --docker-password=<password>`
      : `kubectl create secret generic ${secret}${ns} --type=kubernetes.io/dockerconfigjson --from-file=.dockerconfigjson=<docker config.json with ${registries}>`;
  return `registry credentials for ${registries} were not copied (kedge never inlines secrets); create a kubernetes.io/dockerconfigjson Secret: ${create}`;
}

function agentWarnings(agent: RawEdgeAgentDesired): string[] {
  const out: string[] = [];
  const settings = agent.runtime.settings ?? {};
  if (settings.minDockerVersion !== undefined) {
    out.push(
      `$edgeAgent runtime.settings.minDockerVersion "${settings.minDockerVersion}" not carried over`,
    );
  }
  if (settings.loggingOptions !== undefined && settings.loggingOptions !== '') {
    out.push(
      "$edgeAgent runtime.settings.loggingOptions not carried over; put a LogConfig in each module's createOptions.HostConfig",
    );
  }
  for (const key of ['edgeAgent', 'edgeHub'] as const) {
    if (agent.systemModules?.[key]) {
      out.push(
        `systemModules.${key} (image, env, createOptions) not carried over: kedge node is itself the agent and the hub`,
      );
    }
  }
  if (agent.schemaVersion.startsWith('1.0')) {
    out.push(
      '$edgeAgent schemaVersion 1.0 converted with 1.1 semantics (startupOrder, env and route objects are 1.1 features)',
    );
  }
  return out;
}

function hubWarnings(hub: RawEdgeHubDesired | undefined): string[] {
  const max = hub?.storeAndForwardConfiguration?.storeLimits?.maxSizeBytes;
  return max === undefined
    ? []
    : [
        `storeAndForwardConfiguration.storeLimits.maxSizeBytes ${max} not carried over; set the store size in the kedge node config`,
      ];
}

function envelopeWarnings(envelope: AtScaleEnvelope): string[] {
  const out: string[] = [];
  if (envelope.labels !== undefined) out.push('deployment labels not carried over');
  if (envelope.metrics !== undefined) {
    out.push('deployment metrics queries not carried over; EdgeDeployment status counts devices');
  }
  return out;
}

function priorityOf(envelope: AtScaleEnvelope, warnings: string[]): number | undefined {
  if (envelope.priority === undefined) return undefined;
  if (
    typeof envelope.priority === 'number' &&
    Number.isInteger(envelope.priority) &&
    envelope.priority >= 0
  ) {
    return envelope.priority;
  }
  warnings.push(`deployment priority ${JSON.stringify(envelope.priority)} not carried over`);
  return undefined;
}

const TAG_CLAUSE = /^tags\.([A-Za-z0-9_.-]+)\s*=\s*'([^']*)'$/;

/** The selector: --selector, else the at-scale targetCondition when it is `tags.a='x' AND …`. */
function selectorOf(
  options: ImportOptions,
  envelope: AtScaleEnvelope,
  warnings: string[],
): LabelSelector {
  if (options.selector) return { matchLabels: options.selector };
  const condition = envelope.targetCondition;
  if (typeof condition === 'string' && condition.trim() !== '') {
    const labels = tagLabels(condition);
    if (labels) return { matchLabels: labels };
    warnings.push(
      `targetCondition ${JSON.stringify(condition)} not carried over (only tags.<key>='<value>' AND … converts); pass --selector`,
    );
  } else {
    warnings.push('no --selector given: the deployment targets every EdgeDevice in its namespace');
  }
  return {};
}

function tagLabels(condition: string): Record<string, string> | undefined {
  const labels: Record<string, string> = {};
  for (const clause of condition.split(/\s+AND\s+/i)) {
    const match = TAG_CLAUSE.exec(clause.trim());
    if (!match || !isLabelValue(match[2]!)) return undefined;
    labels[match[1]!] = match[2]!;
  }
  return labels;
}

/** A Kubernetes label value: at most 63 characters, alphanumeric at both ends. */
export function isLabelValue(value: string): boolean {
  return /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/.test(value) && value.length <= 63;
}

/** A Kubernetes label key: an optional DNS prefix and `/`, then a name of at most 63 characters. */
export function isLabelKey(key: string): boolean {
  const slash = key.lastIndexOf('/');
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = key.slice(slash + 1);
  const prefixOk =
    prefix === undefined ||
    (prefix.length <= 253 &&
      /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/.test(prefix));
  return prefixOk && name.length > 0 && isLabelValue(name);
}

/**
 * Parses `--selector k=v,k2=v2` into matchLabels.
 * @throws KedgeError `KEDGE_ERR_INVALID_INPUT` naming the bad pair.
 */
export function parseSelector(text: string): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const pair of text
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '')) {
    const eq = pair.indexOf('=');
    const key = eq > 0 ? pair.slice(0, eq) : '';
    const value = eq > 0 ? pair.slice(eq + 1) : '';
    if (!isLabelKey(key) || !isLabelValue(value)) {
      throw new KedgeError(
        ErrorCode.InvalidInput,
        `--selector ${JSON.stringify(pair)} is not key=value with a valid label key and value`,
      );
    }
    labels[key] = value;
  }
  return labels;
}
