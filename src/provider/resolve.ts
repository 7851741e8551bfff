import type { RegistryCredential } from '../common/manifest/index.js';
import type { Container, EnvFromSource, EnvVarSource } from './pod-types.js';

/**
 * Reads ConfigMap and Secret data from the pod's own namespace (never the device's, which may
 * belong to another tenant); undefined when missing.
 */
export interface ObjectLookup {
  configMap(name: string): Promise<Record<string, string> | undefined>;
  /** Secret data, already base64-decoded. */
  secret(name: string): Promise<Record<string, string> | undefined>;
}

/** Pod fields a `fieldRef` may name. */
export interface PodFields {
  name: string;
  namespace: string;
  uid?: string;
  nodeName?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

/** Resolved environment of one container, and what could not be resolved. */
export interface ResolvedEnv {
  env: Record<string, string>;
  problems: string[];
}

/** Resolves env and envFrom the way the kubelet does, with later entries winning. */
export async function resolveContainerEnv(
  container: Container,
  fields: PodFields,
  lookup: ObjectLookup,
): Promise<ResolvedEnv> {
  const problems: string[] = [];
  const env = await resolveEnvFrom(container.envFrom ?? [], lookup, problems);
  for (const variable of container.env ?? []) {
    if (!variable.valueFrom) {
      env[variable.name] = expand(variable.value ?? '', env);
      continue;
    }
    const value = await resolveSource(variable.valueFrom, fields, lookup);
    if (value.problem) problems.push(`env ${variable.name}: ${value.problem}`);
    if (value.value !== undefined) env[variable.name] = value.value;
  }
  return { env, problems };
}

async function resolveEnvFrom(
  sources: EnvFromSource[],
  lookup: ObjectLookup,
  problems: string[],
): Promise<Record<string, string>> {
  const env: Record<string, string> = {};
  for (const from of sources) {
    const [kind, ref] = from.configMapRef
      ? (['ConfigMap', from.configMapRef] as const)
      : (['Secret', from.secretRef] as const);
    if (!ref) continue;
    const data =
      kind === 'ConfigMap' ? await lookup.configMap(ref.name) : await lookup.secret(ref.name);
    if (!data && !ref.optional) problems.push(`envFrom ${kind} ${ref.name} not found`);
    for (const [k, v] of Object.entries(data ?? {})) env[`${from.prefix ?? ''}${k}`] = v;
  }
  return env;
}

async function resolveSource(
  source: EnvVarSource,
  fields: PodFields,
  lookup: ObjectLookup,
): Promise<{ value?: string; problem?: string }> {
  if (source.configMapKeyRef)
    return keyRef(
      'ConfigMap',
      source.configMapKeyRef,
      await lookup.configMap(source.configMapKeyRef.name),
    );
  if (source.secretKeyRef)
    return keyRef('Secret', source.secretKeyRef, await lookup.secret(source.secretKeyRef.name));
  if (source.fieldRef) return fieldRef(source.fieldRef.fieldPath, fields);
  return { problem: 'resourceFieldRef is not supported on edge devices' };
}

function keyRef(
  kind: string,
  ref: { name: string; key: string; optional?: boolean },
  data: Record<string, string> | undefined,
): { value?: string; problem?: string } {
  const value = data?.[ref.key];
  if (value !== undefined) return { value };
  if (ref.optional) return {};
  return {
    problem: data
      ? `key ${ref.key} not found in ${kind} ${ref.name}`
      : `${kind} ${ref.name} not found`,
  };
}

function fieldRef(path: string, fields: PodFields): { value?: string; problem?: string } {
  const simple: Record<string, string | undefined> = {
    'metadata.name': fields.name,
    'metadata.namespace': fields.namespace,
    'metadata.uid': fields.uid,
    'spec.nodeName': fields.nodeName,
  };
  if (path in simple) return { value: simple[path] ?? '' };
  const label = /^metadata\.labels\['(.+)'\]$/.exec(path)?.[1];
  if (label !== undefined) return { value: fields.labels?.[label] ?? '' };
  const note = /^metadata\.annotations\['(.+)'\]$/.exec(path)?.[1];
  if (note !== undefined) return { value: fields.annotations?.[note] ?? '' };
  return { problem: `fieldRef ${path} is not supported on edge devices` };
}

/** `$(VAR)` references to earlier variables, as the kubelet expands them; `$$` escapes. */
function expand(value: string, env: Record<string, string>): string {
  return value.replace(
    /\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g,
    (match, name: string | undefined) => {
      if (match === '$$') return '$';
      return name !== undefined && name in env ? env[name]! : match;
    },
  );
}

/** Registry credentials from `kubernetes.io/dockerconfigjson` Secrets (`.dockerconfigjson`). */
export function registryCredentialsFrom(dockerConfigJson: string): RegistryCredential[] {
  const parsed = JSON.parse(dockerConfigJson) as {
    auths?: Record<string, { username?: string; password?: string; auth?: string }>;
  };
  return Object.entries(parsed.auths ?? {}).map(([address, entry]) => {
    const [user, ...pass] = entry.auth
      ? Buffer.from(entry.auth, 'base64').toString('utf8').split(':')
      : [];
    return {
      address,
      username: entry.username ?? user ?? '',
      password: entry.password ?? pass.join(':'),
    };
  });
}
