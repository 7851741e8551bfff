import type { RawModule, RegistryCredential, RestartPolicy } from '../common/manifest/index.js';
import type { Container, PodSpec, Probe } from './pod-types.js';

/** Annotations that carry IoT Edge module settings a pod spec has no field for. */
export const ModuleAnnotations = {
  /** `always` | `on-failure` | `on-unhealthy` | `never`; overrides the pod restartPolicy. */
  restartPolicy: 'kedge.io/restart-policy',
  /** `running` | `stopped`. */
  desiredStatus: 'kedge.io/desired-status',
  /** Integer; lower starts first. */
  startupOrder: 'kedge.io/startup-order',
  /** JSON Docker create options, merged over what kedge derives from the pod. */
  createOptions: 'kedge.io/create-options',
  /** JSON desired properties of the module twin. */
  desiredProperties: 'kedge.io/desired-properties',
  /**
   * The module's IoT Hub module id when it is not the container name (an IoT Edge name such as
   * `SimulatedTemperatureSensor`, which a DNS-label container name cannot hold).
   */
  moduleId: 'kedge.io/module-id',
  /**
   * The hash of the EdgeDeployment module spec a pod was built from. It reaches the device as the
   * module's `specHash`, which the agent echoes in its reports (safe rollouts, docs/adr/0028).
   */
  specHash: 'kedge.io/spec-hash',
} as const;

/** Each annotation may be narrowed to one container with a `.<container>` suffix. */
function annotation(
  annotations: Record<string, string>,
  key: string,
  container: string,
): string | undefined {
  return annotations[`${key}.${container}`] ?? annotations[key];
}

/** The modules and twins one pod becomes, and what it asks for that kedge cannot honour. */
export interface PodTranslation {
  modules: Record<string, RawModule>;
  twins: Record<string, Record<string, unknown>>;
  unsupported: string[];
}

/** Inputs the controller resolved from the API: env per container and pull credentials. */
export interface ResolvedInputs {
  env: Record<string, Record<string, string>>;
  registryCredentials: RegistryCredential[];
}

const POD_RESTART_POLICIES: Record<string, RestartPolicy> = {
  Always: 'always',
  OnFailure: 'on-failure',
  Never: 'never',
};
const NANO_CPUS_PER_CORE = 1e9;
/** The projected service-account volume every pod gets; it means nothing on a device. */
const SERVICE_ACCOUNT_VOLUME = /^kube-api-access-/;

/**
 * The hub identity of a pod's container: its `kedge.io/module-id` annotation, else the container
 * name. Every place that names a module to the hub (routes, twins, methods) uses this id.
 */
/** A pod's pull policy as the device's manifest says it. */
const PULL_POLICIES = {
  Always: 'always',
  IfNotPresent: 'on-create',
  Never: 'never',
} as const;

export function moduleIdOf(
  pod: { metadata: { annotations?: Record<string, string> } },
  container: string,
): string {
  return (
    annotation(pod.metadata.annotations ?? {}, ModuleAnnotations.moduleId, container) ?? container
  );
}

/** IoT Edge module names, which the device's manifest accepts as module ids. */
const MODULE_ID = /^[A-Za-z0-9_-]{1,128}$/;

/**
 * Translates a pod into IoT Edge modules: one container, one module keyed by the container name,
 * with `moduleId` when the module's hub identity differs from it.
 */
export function podToModules(
  pod: { metadata: { annotations?: Record<string, string> }; spec: PodSpec },
  resolved: ResolvedInputs,
): PodTranslation {
  const annotations = pod.metadata.annotations ?? {};
  const unsupported = podLevelUnsupported(pod.spec);
  const modules: Record<string, RawModule> = {};
  const twins: Record<string, Record<string, unknown>> = {};
  for (const container of pod.spec.containers) {
    const { module, problems } = containerToModule(
      container,
      pod.spec,
      annotations,
      resolved.env[container.name] ?? {},
    );
    const moduleId = moduleIdOf(pod, container.name);
    if (!MODULE_ID.test(moduleId))
      problems.push(
        `${ModuleAnnotations.moduleId} ${JSON.stringify(moduleId)} is not a module id (up to 128 letters, digits, - and _); the container name is used`,
      );
    else if (moduleId !== container.name) module.moduleId = moduleId;
    modules[container.name] = module;
    unsupported.push(...problems.map((p) => `container ${container.name}: ${p}`));
    const twin = parseJsonAnnotation(
      annotation(annotations, ModuleAnnotations.desiredProperties, container.name),
    );
    if (twin.value) twins[container.name] = twin.value;
    if (twin.error)
      unsupported.push(
        `container ${container.name}: ${ModuleAnnotations.desiredProperties}: ${twin.error}`,
      );
  }
  return { modules, twins, unsupported };
}

function podLevelUnsupported(spec: PodSpec): string[] {
  const out: string[] = [];
  if (spec.initContainers?.length) out.push('initContainers are not supported on edge devices');
  if (spec.ephemeralContainers?.length) out.push('ephemeralContainers are not supported');
  if (spec.hostPID) out.push('hostPID is not supported');
  if (spec.hostIPC) out.push('hostIPC is not supported');
  for (const volume of spec.volumes ?? []) {
    if (!SERVICE_ACCOUNT_VOLUME.test(volume.name))
      out.push(`volume ${volume.name} is not supported (use createOptions binds)`);
  }
  return out;
}

function containerToModule(
  container: Container,
  spec: PodSpec,
  annotations: Record<string, string>,
  env: Record<string, string>,
): { module: RawModule; problems: string[] } {
  const problems: string[] = [];
  const createOptions = deriveCreateOptions(container, spec, problems);
  const override = parseJsonAnnotation(
    annotation(annotations, ModuleAnnotations.createOptions, container.name),
  );
  if (override.error) problems.push(`${ModuleAnnotations.createOptions}: ${override.error}`);
  const merged = deepMerge(createOptions, override.value ?? {});
  const status = annotation(annotations, ModuleAnnotations.desiredStatus, container.name);
  const order = annotation(annotations, ModuleAnnotations.startupOrder, container.name);
  const restart = annotation(annotations, ModuleAnnotations.restartPolicy, container.name);
  const module: RawModule = {
    version: '1.0',
    type: 'docker',
    status: status === 'stopped' ? 'stopped' : 'running',
    restartPolicy:
      (restart as RestartPolicy | undefined) ??
      POD_RESTART_POLICIES[spec.restartPolicy ?? 'Always'] ??
      'always',
    imagePullPolicy: PULL_POLICIES[container.imagePullPolicy ?? 'IfNotPresent'],
    settings: {
      image: container.image,
      ...(Object.keys(merged).length > 0 ? { createOptions: merged } : {}),
    },
    env: Object.fromEntries(Object.entries(env).map(([k, v]) => [k, { value: v }])),
  };
  if (order !== undefined && /^\d+$/.test(order)) module.startupOrder = Number(order);
  const specHash = annotations[ModuleAnnotations.specHash];
  if (specHash) module.specHash = specHash;
  return { module, problems };
}

function deriveCreateOptions(
  container: Container,
  spec: PodSpec,
  problems: string[],
): Record<string, unknown> {
  const options = basicOptions(container, spec);
  const host: Record<string, unknown> = spec.hostNetwork ? { NetworkMode: 'host' } : {};
  applyResources(container, host, problems);
  applyPorts(container, options, host);
  applySecurity(container, options, host, problems);
  const health = healthcheck(container.livenessProbe, problems);
  if (health) options.Healthcheck = health;
  problems.push(...unsupportedContainerFeatures(container));
  if (Object.keys(host).length > 0) options.HostConfig = host;
  return options;
}

/** Docker create fields that map one to one from the container spec. */
function basicOptions(container: Container, spec: PodSpec): Record<string, unknown> {
  const fields: [string, unknown][] = [
    ['Entrypoint', container.command?.length ? container.command : undefined],
    ['Cmd', container.args?.length ? container.args : undefined],
    ['WorkingDir', container.workingDir || undefined],
    ['Tty', container.tty || undefined],
    ['OpenStdin', container.stdin || undefined],
    ['StopTimeout', spec.terminationGracePeriodSeconds],
  ];
  return Object.fromEntries(fields.filter(([, v]) => v !== undefined));
}

function unsupportedContainerFeatures(container: Container): string[] {
  const out: string[] = [];
  if (container.readinessProbe)
    out.push('readinessProbe is not supported; Ready follows the module state');
  if (container.startupProbe) out.push('startupProbe is not supported');
  if (container.lifecycle) out.push('lifecycle hooks are not supported');
  for (const mount of container.volumeMounts ?? []) {
    if (!SERVICE_ACCOUNT_VOLUME.test(mount.name))
      out.push(`volumeMount ${mount.mountPath} is not supported`);
  }
  return out;
}

function applyResources(
  container: Container,
  host: Record<string, unknown>,
  problems: string[],
): void {
  const limits = container.resources?.limits ?? {};
  for (const [resource, value] of Object.entries(limits)) {
    const amount = parseQuantity(value);
    if (resource === 'memory' && amount !== undefined) host.Memory = Math.round(amount);
    else if (resource === 'cpu' && amount !== undefined)
      host.NanoCpus = Math.round(amount * NANO_CPUS_PER_CORE);
    else problems.push(`resource limit ${resource}=${value} is not supported`);
  }
}

function applyPorts(
  container: Container,
  options: Record<string, unknown>,
  host: Record<string, unknown>,
): void {
  const exposed: Record<string, object> = {};
  const bindings: Record<string, { HostPort: string }[]> = {};
  for (const port of container.ports ?? []) {
    const key = `${port.containerPort}/${(port.protocol ?? 'TCP').toLowerCase()}`;
    exposed[key] = {};
    if (port.hostPort) bindings[key] = [{ HostPort: String(port.hostPort) }];
  }
  if (Object.keys(exposed).length > 0) options.ExposedPorts = exposed;
  if (Object.keys(bindings).length > 0) host.PortBindings = bindings;
}

function applySecurity(
  container: Container,
  options: Record<string, unknown>,
  host: Record<string, unknown>,
  problems: string[],
): void {
  const { privileged, runAsUser, ...rest } = container.securityContext ?? {};
  if (privileged) host.Privileged = true;
  if (runAsUser !== undefined) options.User = String(runAsUser);
  for (const key of Object.keys(rest)) problems.push(`securityContext.${key} is not supported`);
}

function healthcheck(
  probe: Probe | undefined,
  problems: string[],
): Record<string, unknown> | undefined {
  if (!probe) return undefined;
  if (!probe.exec) {
    problems.push('livenessProbe supports exec only');
    return undefined;
  }
  const ns = (secs: number | undefined, fallback: number): number => (secs ?? fallback) * 1e9;
  return {
    Test: ['CMD', ...probe.exec.command],
    Interval: ns(probe.periodSeconds, 10),
    Timeout: ns(probe.timeoutSeconds, 1),
    Retries: probe.failureThreshold ?? 3,
    StartPeriod: ns(probe.initialDelaySeconds, 0),
  };
}

const QUANTITY = /^([0-9.]+)([a-zA-Z]*)$/;
const SUFFIX: Record<string, number> = {
  '': 1,
  m: 1e-3,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  Ki: 1024,
  Mi: 1024 ** 2,
  Gi: 1024 ** 3,
  Ti: 1024 ** 4,
};

/** A Kubernetes quantity as a number (`500m` → 0.5, `128Mi` → 134217728). */
export function parseQuantity(value: string | number): number | undefined {
  if (typeof value === 'number') return value;
  const match = QUANTITY.exec(value.trim());
  const factor = match ? SUFFIX[match[2]!] : undefined;
  return match && factor !== undefined ? Number(match[1]) * factor : undefined;
}

function parseJsonAnnotation(text: string | undefined): {
  value?: Record<string, unknown>;
  error?: string;
} {
  if (text === undefined) return {};
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value === 'object' && value !== null && !Array.isArray(value))
      return { value: value as Record<string, unknown> };
    return { error: 'must be a JSON object' };
  } catch (err) {
    return { error: `invalid JSON (${(err as Error).message})` };
  }
}

function deepMerge(
  base: Record<string, unknown>,
  over: Record<string, unknown>,
): Record<string, unknown> {
  const out = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const current = out[k];
    const bothObjects = isPlainObject(current) && isPlainObject(v);
    out[k] = bothObjects ? deepMerge(current, v) : v;
  }
  return out;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
