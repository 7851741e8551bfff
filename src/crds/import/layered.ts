/**
 * IoT Edge layered deployments for `kedge manifest import`. A layered manifest sets paths instead
 * of whole twins: `$edgeAgent` `properties.desired.modules.<name>`, `$edgeHub`
 * `properties.desired.routes.<name>`, and `<module>` `properties.desired.<path>`. Modules and
 * routes become an ordinary EdgeDeployment (they are whole objects at their paths); module twin
 * paths become `spec.desiredProperties`, which the controller merges by priority over the twin of
 * whichever deployment on the device runs the module.
 */
import { joinPath, type RegistryCredential } from '../../common/manifest/index.js';
import type { DesiredPropertyPath, EdgeDeployment } from '../types.generated.js';
import { importManifest, type ImportOptions, type ImportResult } from './convert.js';
import { uniqueLabels } from './names.js';

const DESIRED = 'properties.desired';
const PATH_PREFIX = `${DESIRED}.`;
const MODULES_PREFIX = `${PATH_PREFIX}modules.`;
const ROUTES_PREFIX = `${PATH_PREFIX}routes.`;
const CREDENTIALS_PREFIX = `${PATH_PREFIX}runtime.settings.registryCredentials.`;
/** A twin property name: IoT Hub allows neither `.` (the path separator), `$` nor spaces. */
const TWIN_SEGMENT = /^[^.$\s]+$/;

/** Where the modulesContent sits in the document, and the document around it. */
interface Located {
  content: Record<string, unknown>;
  /** Rebuilds the document around a new modulesContent (keeps an at-scale envelope). */
  wrap: (content: Record<string, unknown>) => unknown;
  /** JSON path of the modulesContent, for messages. */
  prefix: string;
}

/** True when any twin in the manifest is set by path (`"properties.desired.<…>"` keys). */
export function isLayered(doc: unknown): boolean {
  const located = locate(doc);
  return (
    located !== undefined &&
    Object.values(located.content).some(
      (twin) => isRecord(twin) && Object.keys(twin).some((k) => k.startsWith(PATH_PREFIX)),
    )
  );
}

/** A layered manifest split into an ordinary one and the module twin paths it sets. */
interface Split {
  manifest: unknown;
  paths: { module: string; path: string; value: unknown }[];
  /** The modules the layered manifest defines itself, in order. */
  defined: string[];
  warnings: string[];
}

/**
 * Imports a layered deployment manifest into one EdgeDeployment with modules, routes and
 * `desiredProperties`.
 * @throws KedgeError `KEDGE_ERR_INVALID_INPUT` for modules or routes that do not validate.
 */
export function importLayered(doc: unknown, options: ImportOptions = {}): ImportResult {
  const split = splitLayered(doc);
  const result = importManifest(split.manifest, options);
  const deployment = result.objects[0]!;
  const names = moduleNames(split.defined, deployment);
  const mentioned = [...split.paths.map((p) => p.module), ...routeModules(deployment)];
  const converted = new Set(names.values());
  const foreign = [...new Set(mentioned)].filter((m) => !names.has(m) && !converted.has(m));
  for (const module of foreign) names.set(module, uniqueLabels([module], 'module').get(module)!);
  // Routes keep naming modules by their IoT Hub ids, which imported modules keep (`moduleId`).
  const entries: DesiredPropertyPath[] = split.paths.map((p) => ({
    module: names.get(p.module)!,
    path: p.path,
    value: p.value,
  }));
  if (entries.length > 0) deployment.spec.desiredProperties = entries;
  const warnings = [
    ...split.warnings,
    ...result.warnings,
    ...foreign.map((m) => foreignWarning(m, names.get(m)!)),
  ];
  return { objects: [deployment], warnings };
}

/**
 * The EdgeDeployment name of each module the manifest defines, as the import named it. Modules
 * defined elsewhere are named by the same conversion applied to the name alone, which is what
 * importing the deployment that defines them gives (unless two of its names clash).
 */
function moduleNames(defined: string[], deployment: EdgeDeployment): Map<string, string> {
  const names = new Map<string, string>();
  (deployment.spec.modules ?? []).forEach((m, i) => {
    if (defined[i] !== undefined) names.set(defined[i], m.name);
  });
  return names;
}

/** Module names in the routes' sources and sinks (`/modules/<name>`). */
function routeModules(deployment: EdgeDeployment): string[] {
  return (deployment.spec.routes ?? []).flatMap((r) =>
    [...(r.route ?? '').matchAll(/\/modules\/([A-Za-z0-9_-]+)/g)].map((m) => m[1]!),
  );
}

function foreignWarning(module: string, name: string): string {
  const as =
    name === module ? '' : ` (as "${name}", the name the import of its deployment gives it)`;
  return `module "${module}"${as} is not defined here: its twin paths and routes apply to that module in whichever EdgeDeployment on the device runs it`;
}

/** Splits a layered manifest; path keys kedge cannot represent become warnings. */
function splitLayered(doc: unknown): Split {
  const located = locate(doc)!;
  const split: Split = { manifest: undefined, paths: [], defined: [], warnings: [] };
  const modules: Record<string, unknown> = {};
  const routes: Record<string, unknown> = {};
  const credentials: Record<string, RegistryCredential> = {};
  const twins: Record<string, unknown> = {};
  for (const [key, twin] of Object.entries(located.content)) {
    const at = joinPath(located.prefix, key);
    if (!isRecord(twin)) continue; // the schema check of the rebuilt manifest names it
    if (key === '$edgeAgent') agentPaths(twin, { modules, credentials }, at, split.warnings);
    else if (key === '$edgeHub') hubPaths(twin, routes, at, split.warnings);
    else twinPaths(key, twin, { split, twins }, at);
  }
  split.defined = Object.keys(modules);
  split.manifest = located.wrap({
    $edgeAgent: {
      [DESIRED]: {
        schemaVersion: '1.1',
        runtime: { type: 'docker', settings: { registryCredentials: credentials } },
        modules,
      },
    },
    ...(Object.keys(routes).length > 0
      ? { $edgeHub: { [DESIRED]: { schemaVersion: '1.1', routes } } }
      : {}),
    ...twins,
  });
  return split;
}

function agentPaths(
  twin: Record<string, unknown>,
  out: { modules: Record<string, unknown>; credentials: Record<string, RegistryCredential> },
  at: string,
  warnings: string[],
): void {
  for (const [key, value] of Object.entries(twin)) {
    if (key.startsWith(MODULES_PREFIX) && !key.slice(MODULES_PREFIX.length).includes('.'))
      out.modules[key.slice(MODULES_PREFIX.length)] = value;
    else if (key.startsWith(CREDENTIALS_PREFIX))
      out.credentials[key.slice(CREDENTIALS_PREFIX.length)] = value as RegistryCredential;
    else warnings.push(unsupportedPath(joinPath(at, key), 'properties.desired.modules.<name>'));
  }
}

function hubPaths(
  twin: Record<string, unknown>,
  routes: Record<string, unknown>,
  at: string,
  warnings: string[],
): void {
  for (const [key, value] of Object.entries(twin)) {
    if (key.startsWith(ROUTES_PREFIX) && !key.slice(ROUTES_PREFIX.length).includes('.'))
      routes[key.slice(ROUTES_PREFIX.length)] = value;
    else warnings.push(unsupportedPath(joinPath(at, key), 'properties.desired.routes.<name>'));
  }
}

function twinPaths(
  module: string,
  twin: Record<string, unknown>,
  out: { split: Split; twins: Record<string, unknown> },
  at: string,
): void {
  for (const [key, value] of Object.entries(twin)) {
    const path = key.startsWith(PATH_PREFIX) ? key.slice(PATH_PREFIX.length) : undefined;
    if (key === DESIRED) out.twins[module] = { [DESIRED]: value };
    else if (path !== undefined && path.split('.').every((s) => TWIN_SEGMENT.test(s)))
      out.split.paths.push({ module, path, value });
    else
      out.split.warnings.push(
        unsupportedPath(joinPath(at, key), 'properties.desired.<path>, no $ or spaces'),
      );
  }
}

function unsupportedPath(path: string, supported: string): string {
  return `${path} not carried over: a layered deployment imports ${supported} here`;
}

function locate(doc: unknown): Located | undefined {
  if (!isRecord(doc)) return undefined;
  if (isRecord(doc.modulesContent)) {
    return {
      content: doc.modulesContent,
      wrap: (content) => ({ ...doc, modulesContent: content }),
      prefix: 'modulesContent',
    };
  }
  if (isRecord(doc.content) && isRecord(doc.content.modulesContent)) {
    const envelope = doc.content;
    return {
      content: envelope.modulesContent as Record<string, unknown>,
      wrap: (content) => ({ ...doc, content: { ...envelope, modulesContent: content } }),
      prefix: 'content.modulesContent',
    };
  }
  return { content: doc, wrap: (content) => content, prefix: '' };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
